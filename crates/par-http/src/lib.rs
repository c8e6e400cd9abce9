//! PAR's HTTP surface: the contract's routes, error bodies, request ids and the serve
//! loop with graceful shutdown. Handlers are thin; the work happens in `par-core`.

mod a2a;
mod accounting;
mod auth;
mod body_limit;
mod caller_headers;
mod conn;
mod console;
mod error;
mod guard;
mod jsonrpc;
mod mcp;
mod multipart;
mod openapi;
mod protocol_routes;
mod request_id;
mod route_table;
mod routes;
mod runs;
mod server;
mod state;
mod tls;
mod upload;

pub use auth::AccessControl;
pub use conn::ConnectionLimits;
pub use error::{status_of, ApiError};
pub use guard::{SiteRules, UPLOAD_HEADER};
pub use server::{app, interrupt_runs, serve};
pub use state::{AppState, HttpConfig, HttpLimits, LogControl};
pub use tls::{serve_tls, TlsFiles};
