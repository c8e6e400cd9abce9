//! The egress proxy of jailed packages. A package whose network policy is `egress` runs
//! in a network namespace with loopback only; its `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`
//! point at a listener inside that namespace whose descriptor the runtime holds, and
//! [`serve`] answers on it. This crate owns everything from that accepted connection
//! on: HTTP/1.1 `CONNECT` tunnels and plain `http://` forwarding (one request per
//! connection), resolving names itself and vetting every address it resolved before
//! connecting to exactly those addresses (no second lookup a rebinding attack could
//! steer), the refusal rules (loopback, private, link-local and other non-global
//! ranges, IPv4 inside IPv6, the runtime's own addresses, unless `--egress-allow`
//! matches; a package's own `egress` list narrows), the limits ([`EgressConfig`]), and
//! the record of every connection (one log line, [`EgressObserver`] counts, which
//! [`par_telemetry::Metrics`] turns into `par_egress_*` metrics). It also holds the
//! operator's per-package network settings ([`EgressSettings`]). It does not create
//! namespaces or listeners: the jail launcher does.

mod config;
mod conn;
mod forward;
mod head;
mod meter;
mod observer;
mod pattern;
mod policy;
mod ranges;
mod relay;
mod reply;
mod server;
mod settings;
mod target;

pub use config::EgressConfig;
pub use observer::{Direction, EgressObserver, NoObserver, Outcome};
pub use pattern::{parse_list, EgressPattern, PatternError};
pub use policy::{EgressPolicy, Refusal};
pub use server::serve;
pub use settings::{EgressSettings, NetworkMode, PackageNetwork};
pub use target::{Host, Target};
