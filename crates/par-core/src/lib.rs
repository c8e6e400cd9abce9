//! par-core
