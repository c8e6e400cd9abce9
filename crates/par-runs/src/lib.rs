//! Durable runs: work that outlives the request that started it.
//!
//! A run is one call of an agent whose progress is written down as it happens: its
//! record (status, times, result or error) and every event its handler produced, in a
//! SQLite file ([`store`]). [`Runs`] adds what lives only in memory while the runtime
//! serves: a wake-up for readers following a run's events, and the cancel signal of each
//! run in flight. Driving the call itself is the HTTP layer's job (it owns admission,
//! accounting and the worker call); this crate only records and decides transitions.
//!
//! Every transition to a terminal status happens at most once and writes the run's last
//! event (`done` or `error`) in the same transaction, so a reader that has seen the last
//! event has seen everything, and a cancel racing with the end of the handler leaves
//! exactly one outcome.

mod hub;
mod model;
pub mod store;

pub use hub::{RunHandle, Runs};
pub use model::{rfc3339, EventKind, NewRun, RunError, RunEvent, RunFilter, RunRecord, RunStatus};
pub use store::{RunEnd, RunStore, StoreError};
