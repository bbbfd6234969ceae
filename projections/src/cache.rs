//! Asking for memory before it is needed.
//!
//! A rebuild's reads of the large tables (lookups, records) are random, and each misses the
//! cache. A plain read that misses holds up the reads behind it once the processor's window
//! of instructions in flight is full, so a pass of plain reads has only a few misses under
//! way at once. A prefetch is done as soon as it is issued: a pass of them puts a whole
//! batch's misses under way together, and the reads that follow find the lines in the cache.
//! A prefetch changes nothing but timing.

/// Starts bringing the cache line that holds the start of `value` into the cache.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    safe_arch::prefetch_t0(value);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = value;
}
