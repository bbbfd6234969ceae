//! End-to-end and property tests of csp-ledger live in `tests/`; this library is empty.
