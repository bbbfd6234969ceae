//! The CSP indirect model (placeholder until the domain lands).
