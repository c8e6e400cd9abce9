//! Exporter settings, from the standard `OTEL_*` variables or set in code.
//!
//! Export is off unless an endpoint variable is set (or `OTEL_TRACES_EXPORTER=otlp` asks
//! for it explicitly, which means the specification's default `http://localhost:4318`):
//! a runtime that nobody pointed at a collector must not spend anything on tracing.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::parse;

pub(super) const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
pub(super) const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
pub(super) const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
pub(super) const TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
pub(super) const TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
pub(super) const TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
pub(super) const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
pub(super) const TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
pub(super) const COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
pub(super) const TRACES_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION";
pub(super) const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
pub(super) const RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
pub(super) const SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
pub(super) const TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
pub(super) const BSP_SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
pub(super) const BSP_MAX_QUEUE_SIZE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
pub(super) const BSP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";

/// The specification's default OTLP/HTTP traces URL.
const DEFAULT_ENDPOINT: &str = "http://localhost:4318/v1/traces";

/// How the request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf` (the default): `application/x-protobuf`.
    HttpProtobuf,
    /// `http/json`: OTLP's JSON mapping, `application/json`.
    HttpJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

/// Everything the exporter needs. `from_env` reads the standard variables; code can also
/// build one with [`OtlpConfig::new`] and change fields.
#[derive(Clone)]
pub struct OtlpConfig {
    /// The full traces URL (already with `/v1/traces` when built from a base endpoint).
    pub endpoint: String,
    pub protocol: Protocol,
    pub compression: Compression,
    /// Sent with every request; values are never logged.
    pub headers: Vec<(String, String)>,
    /// For one HTTP request (the retry gets its own).
    pub timeout: Duration,
    /// Resource attributes; `service.name` always among them.
    pub resource: Vec<(String, String)>,
    /// Spans waiting to be sent; more are dropped and counted.
    pub max_queue_size: usize,
    /// Spans per request.
    pub max_batch_size: usize,
    /// How long the first span of a batch waits for others before the batch is sent.
    pub schedule_delay: Duration,
    /// Counted as spans are exported or dropped; register them to expose them.
    pub counters: OtlpCounters,
}

/// Prometheus counters the exporter bumps (unregistered by default; see
/// `Metrics::otlp_counters`).
#[derive(Debug, Clone, Default)]
pub struct OtlpCounters {
    /// Spans the collector accepted.
    pub exported: prometheus_client::metrics::counter::Counter,
    /// Spans that will never reach the collector.
    pub dropped: prometheus_client::metrics::counter::Counter,
}

impl fmt::Debug for OtlpConfig {
    // Header values are credentials more often than not: names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("compression", &self.compression)
            .field("headers", &header_names)
            .field("timeout", &self.timeout)
            .field("resource", &self.resource)
            .field("max_queue_size", &self.max_queue_size)
            .field("max_batch_size", &self.max_batch_size)
            .field("schedule_delay", &self.schedule_delay)
            .finish()
    }
}

impl OtlpConfig {
    /// The specification's defaults for everything but the endpoint: http/protobuf, no
    /// compression, 10 s timeout, queue 2048, batch 512, 5 s delay, `service.name=par`.
    pub fn new(endpoint: impl Into<String>) -> OtlpConfig {
        OtlpConfig {
            endpoint: endpoint.into(),
            protocol: Protocol::HttpProtobuf,
            compression: Compression::None,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            resource: resource(None, Vec::new()),
            max_queue_size: 2048,
            max_batch_size: 512,
            schedule_delay: Duration::from_secs(5),
            counters: OtlpCounters::default(),
        }
    }

    /// `None` when export is off (no endpoint, `OTEL_SDK_DISABLED=true`,
    /// `OTEL_TRACES_EXPORTER=none`); `Err` names the first bad variable.
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Option<OtlpConfig>, String> {
        if parse::boolean(vars, SDK_DISABLED) {
            return Ok(None);
        }
        let Some(explicit_otlp) = exporter_choice(vars)? else {
            return Ok(None);
        };
        let endpoint = match (endpoint(vars)?, explicit_otlp) {
            (Some(url), _) => url,
            (None, true) => DEFAULT_ENDPOINT.to_string(),
            (None, false) => return Ok(None),
        };
        let mut config = OtlpConfig::new(endpoint);
        config.protocol = protocol(vars)?;
        config.compression = compression(vars)?;
        if let Some((name, value)) = parse::get_either(vars, TRACES_HEADERS, HEADERS) {
            config.headers = parse::key_values(name, value)?;
            header_map(name, &config.headers)?;
        }
        if let Some((name, value)) = parse::get_either(vars, TRACES_TIMEOUT, TIMEOUT) {
            config.timeout = parse::millis(name, value)?;
            if config.timeout.is_zero() {
                return Err(format!("{name}: must be at least 1 millisecond"));
            }
        }
        config.resource = resource_from_env(vars)?;
        batching(vars, &mut config)?;
        Ok(Some(config))
    }
}

/// `Some(explicit)` when OTLP is (or may be) chosen, `None` for `none`. Other exporters
/// are an error rather than silently nothing.
fn exporter_choice(vars: &HashMap<String, String>) -> Result<Option<bool>, String> {
    let Some(value) = parse::get(vars, TRACES_EXPORTER) else {
        return Ok(Some(false));
    };
    let names: Vec<String> = value
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    if names.iter().any(|n| n == "none") {
        return Ok(None);
    }
    match names.iter().find(|n| *n != "otlp") {
        Some(other) => Err(format!(
            "{TRACES_EXPORTER}: {other:?} is not supported; use otlp or none"
        )),
        None => Ok(Some(true)),
    }
}

/// The traces URL: the signal-specific variable as is, else the base with `/v1/traces`.
fn endpoint(vars: &HashMap<String, String>) -> Result<Option<String>, String> {
    if let Some(value) = parse::get(vars, TRACES_ENDPOINT) {
        return Ok(Some(parse::url(TRACES_ENDPOINT, value)?.to_string()));
    }
    match parse::get(vars, ENDPOINT) {
        Some(value) => {
            let base = parse::url(ENDPOINT, value)?;
            Ok(Some(parse::append_traces_path(base).to_string()))
        }
        None => Ok(None),
    }
}

fn protocol(vars: &HashMap<String, String>) -> Result<Protocol, String> {
    let Some((name, value)) = parse::get_either(vars, TRACES_PROTOCOL, PROTOCOL) else {
        return Ok(Protocol::HttpProtobuf);
    };
    match value {
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Ok(Protocol::HttpJson),
        "grpc" => Err(format!(
            "{name}: grpc is not supported by PAR; use http/protobuf (OTLP/HTTP, the \
             collector's port 4318) or http/json"
        )),
        other => Err(format!(
            "{name}: {other:?} is not a protocol; use http/protobuf or http/json"
        )),
    }
}

fn compression(vars: &HashMap<String, String>) -> Result<Compression, String> {
    match parse::get_either(vars, TRACES_COMPRESSION, COMPRESSION) {
        None => Ok(Compression::None),
        Some((_, "none")) => Ok(Compression::None),
        Some((_, "gzip")) => Ok(Compression::Gzip),
        Some((name, other)) => Err(format!("{name}: {other:?} is not gzip or none")),
    }
}

fn batching(vars: &HashMap<String, String>, config: &mut OtlpConfig) -> Result<(), String> {
    if let Some(value) = parse::get(vars, BSP_SCHEDULE_DELAY) {
        config.schedule_delay = parse::millis(BSP_SCHEDULE_DELAY, value)?;
    }
    if let Some(value) = parse::get(vars, BSP_MAX_QUEUE_SIZE) {
        config.max_queue_size = parse::count(BSP_MAX_QUEUE_SIZE, value)?;
    }
    if let Some(value) = parse::get(vars, BSP_MAX_EXPORT_BATCH_SIZE) {
        config.max_batch_size = parse::count(BSP_MAX_EXPORT_BATCH_SIZE, value)?;
    }
    // A batch can never be larger than the queue that feeds it (the specification's rule).
    config.max_batch_size = config.max_batch_size.min(config.max_queue_size);
    Ok(())
}

fn resource_from_env(vars: &HashMap<String, String>) -> Result<Vec<(String, String)>, String> {
    let attributes = match parse::get(vars, RESOURCE_ATTRIBUTES) {
        Some(value) => parse::key_values(RESOURCE_ATTRIBUTES, value)?,
        None => Vec::new(),
    };
    Ok(resource(parse::get(vars, SERVICE_NAME), attributes))
}

/// `service.name` from `OTEL_SERVICE_NAME`, else from the attributes, else `par`;
/// `service.version` is PAR's unless the operator set one. A key given twice keeps its
/// last value.
fn resource(
    service_name: Option<&str>,
    attributes: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (key, value) in attributes {
        merged.retain(|(k, _)| *k != key);
        merged.push((key, value));
    }
    let named = merged.iter().position(|(k, _)| k == "service.name");
    let name = match (service_name, named) {
        (Some(name), _) => name.to_string(),
        (None, Some(i)) => merged[i].1.clone(),
        (None, None) => "par".to_string(),
    };
    merged.retain(|(k, _)| k != "service.name");
    merged.insert(0, ("service.name".to_string(), name));
    if !merged.iter().any(|(k, _)| k == "service.version") {
        merged.push(("service.version".into(), env!("CARGO_PKG_VERSION").into()));
    }
    merged
}

/// Validated request headers. Names are echoed in errors, values never.
pub(crate) fn header_map(name: &str, headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (key, value) in headers {
        let header = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| format!("{name}: {key:?} is not a valid HTTP header name"))?;
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            format!("{name}: the value of {key:?} is not a valid HTTP header value")
        })?;
        value.set_sensitive(true);
        map.append(header, value);
    }
    Ok(map)
}
