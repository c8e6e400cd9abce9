//! par-manifest
