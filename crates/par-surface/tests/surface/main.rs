//! par-surface against real processes: the kit-rest and sdk-http fixture packages built by
//! the real kits, small test apps from `tests/apps/`, and a uv-built environment.

mod failures;
mod harness;
mod pool;
mod rest;
mod sdk;
mod served;
mod sse;
mod ui;
