//! par-http
