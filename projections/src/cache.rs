//! Asking for memory before it is needed.
//!
//! A rebuild's reads of the large tables (lookups, records) are random, and each misses the
//! cache. A plain read that misses holds up the instructions behind it once the processor's
//! window of instructions in flight is full; a prefetch is done as soon as it is issued. It
//! pays only where the address is known without reading (a record's field): measured here,
//! prefetching the partner and user histories a batch writes made the rebuild faster, while
//! prefetches in place of the reads of name slots and customer records did not. A prefetch
//! changes nothing but timing.

/// Starts bringing the cache line that holds the start of `value` into the cache.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    safe_arch::prefetch_t0(value);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = value;
}
