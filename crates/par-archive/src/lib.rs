//! par-archive
