//! par-worker
