//! A package's HTTP surfaces.
//!
//! * **HTTP app** (`rest.entry` mounted on a FastAPI app, or a pixell-sdk `http_server`
//!   ASGI app): served by uvicorn in a Python process of its own, listening on a Unix
//!   socket in a private directory ([`SurfaceProcess`], driven by `python/par_asgi.py`,
//!   compiled into this crate and written out by [`script::materialize`]). The host
//!   reverse-proxies requests to it over pooled keep-alive connections, streaming bodies
//!   both ways ([`SurfaceProcess::proxy`]); WebSocket upgrades are relayed byte for byte
//!   once the app accepts them ([`SurfaceProcess::proxy_upgrade`]).
//! * **UI surface**: static files served by the host itself, never by Python
//!   ([`UiSite`]).
//!
//! Restarting a dead app process is the caller's job: [`SurfaceProcess::is_alive`] says
//! when, and [`ProxyError`] says what to answer meanwhile.

mod connector;
mod error;
mod output;
mod process;
mod proxy;
pub mod script;
mod ui;
mod upgrade;

pub use error::{ProxyError, SurfaceError};
pub use process::{
    SurfaceProcess, SurfaceSpec, DEFAULT_RESPONSE_TIMEOUT, DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
};
pub use script::{missing_packages, required_packages, SurfaceMode};
pub use ui::UiSite;
pub use upgrade::is_upgrade_request;
