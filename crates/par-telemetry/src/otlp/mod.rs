//! OpenTelemetry trace export over OTLP/HTTP, off unless the operator points it at a
//! collector with the standard `OTEL_*` variables.
//!
//! The runtime already carries W3C trace context per call; this module turns each
//! finished call into one OTLP span ([`CallSpan`]) and ships it:
//!
//! * [`OtlpExporter::export`] only puts the span on a bounded queue (`try_send`): a full
//!   queue drops the span and counts it, so a slow or dead collector can never slow a call.
//! * A batcher on its own thread (own current-thread runtime) sends a batch when it holds
//!   `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` spans or its oldest span has waited
//!   `OTEL_BSP_SCHEDULE_DELAY`; one request at a time, so at most one batch is in flight.
//! * A failed request is retried once for 429/502/503/504 or a refused connection, then
//!   the batch is dropped and counted; failures are logged at most once a minute.
//! * [`OtlpExporter::shutdown`] sends whatever is queued, bounded by its timeout.
//!
//! Wire types come from `opentelemetry-proto` (prost messages only, no tonic); the body is
//! `http/protobuf` (default) or `http/json`, optionally gzipped. gRPC is refused with a
//! clear message: it would need an HTTP/2 gRPC stack for no gain over OTLP/HTTP, which
//! every collector also serves.

mod batcher;
mod config;
mod encode;
mod exporter;
mod parse;
mod span;
mod transport;
mod warn;

#[cfg(test)]
mod tests;

pub use config::{Compression, OtlpConfig, OtlpCounters, Protocol};
pub use exporter::OtlpExporter;
pub use span::{AttrValue, CallSpan, SpanKind};
