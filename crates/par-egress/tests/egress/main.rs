//! The egress proxy with real traffic on loopback: real upstream servers, real clients
//! (raw sockets here, Python's urllib and httpx in `python.rs`), no mocks.

mod harness;
mod isolation;
mod limits;
mod python;
mod refusals;
mod relaying;
