//! Embedded file log (placeholder).
