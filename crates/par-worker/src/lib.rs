//! Python worker processes: starting them with an explicit environment, the framed
//! protocol over a private Unix socket, and calls in flight (results, streamed items,
//! cancellation on drop, and immediate failure when a worker dies).
//!
//! The worker program itself is Python (`python/par_worker.py` in the repository),
//! compiled into this crate and written out by [`script::materialize`].

mod call;
pub mod child;
mod error;
mod health;
mod jail;
pub mod log_budget;
mod outcall;
pub mod output;
pub mod protocol;
mod reply;
pub mod script;
pub mod socket_dir;
mod worker;
mod zygote;

pub use error::WorkerError;
pub use outcall::{Outcall, Responder};
pub use worker::{AgentFailure, Call, Reply, Worker, WorkerInfo, WorkerSpec};
pub use zygote::Zygote;
