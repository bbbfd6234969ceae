//! Criterion benchmarks of csp-ledger live in `benches/`; this library is empty.
