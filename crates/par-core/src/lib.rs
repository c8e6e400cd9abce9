//! The runtime core: turning sources into mounted packages (verify, extract, parse,
//! environment, workers), the table that routes agent ids to packages and versions, and
//! invocation with the contract's error codes. No HTTP here: `par-http` maps these types
//! onto routes and status codes.

mod config;
mod envvars;
mod error;
mod fetching;
mod gate;
mod invoke;
mod lifecycle;
mod loader;
mod memory;
mod metering;
mod outcall;
mod package;
mod pool;
pub mod redact;
mod registry;
mod reports;
mod runtime;
mod schema;
mod source;
mod surface;
mod table;
pub mod trace;
mod version;
mod webhook;

pub use config::RuntimeConfig;
pub use error::{ErrorCode, InvokeError, LoadError, LoadPhase};
pub use invoke::{dispatched_action, ActiveCall, CallMeta, InvokeOutput, StreamEvent};
pub use lifecycle::{JobState, LoadJob, LoadRequest};
pub use metering::{CallRecord, CallerIdentity};
pub use package::{Package, PackageReport, PackageState};
pub use pool::PoolSettings;
pub use registry::RegistrySettings;
pub use runtime::Runtime;
pub use table::{AgentInfo, Target};
pub use webhook::WebhookConfig;
