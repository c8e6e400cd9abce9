//! Telemetry for the runtime: Prometheus metrics whose label values stay bounded no matter
//! what clients send ([`metrics`]), and the usage ledger that records one row per call into
//! an embedded SQLite database for billing and audit ([`usage`]); and OpenTelemetry trace
//! export over OTLP/HTTP, off unless the standard `OTEL_*` variables configure it ([`otlp`]).
//!
//! No HTTP serving here: `par-http` serves [`Metrics::encode`] on `/metrics` with
//! [`metrics::CONTENT_TYPE`] and answers `GET /runtime/usage` from [`UsageLedger::query`];
//! the runtime core calls the small recording methods on both.

pub mod metrics;
pub mod otlp;
pub mod usage;

pub use metrics::{AgentLabel, Metrics, MetricsConfig};
pub use usage::{UsageLedger, UsageQuery, UsageRecord, UsageReport, UsageShipper};
