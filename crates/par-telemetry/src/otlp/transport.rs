//! One OTLP/HTTP POST, retried once when the collector says "later" (429, 502, 503, 504)
//! or cannot be reached. One retry, not the specification's open-ended backoff: the
//! queue behind this request is bounded, and a collector that stays down should cost
//! dropped spans, not a growing backlog.

use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, StatusCode, Url};

use super::config::{header_map, Compression, OtlpConfig, Protocol};
use super::parse;

/// The longest `Retry-After` honoured; a longer one is a collector asking for more than a
/// bounded exporter can give, and the batch is dropped instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Wait before the retry when the collector gave no `Retry-After` (±50 % jitter).
const BACKOFF: Duration = Duration::from_secs(1);

pub(crate) struct Transport {
    client: Client,
    url: Url,
    headers: HeaderMap,
    timeout: Duration,
    protocol: Protocol,
}

/// Why a batch was not delivered; the message never contains header values.
#[derive(Debug)]
pub(crate) struct SendError(pub(crate) String);

/// What the collector said about a delivered batch.
#[derive(Debug, Default)]
pub(crate) struct Accepted {
    /// Spans the collector refused (OTLP partial success), with its reason.
    pub(crate) rejected: u64,
    pub(crate) message: String,
}

enum Attempt {
    Done(Accepted),
    Retry {
        error: String,
        after: Option<Duration>,
    },
    Fail(String),
}

impl Transport {
    pub(crate) fn new(config: &OtlpConfig) -> Result<Transport, String> {
        let url = parse::url("OTLP endpoint", &config.endpoint)?;
        let mut headers = header_map("OTLP headers", &config.headers)?;
        let content_type = match config.protocol {
            Protocol::HttpProtobuf => "application/x-protobuf",
            Protocol::HttpJson => "application/json",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if config.compression == Compression::Gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let client = Client::builder()
            // The specification asks exporters to identify themselves.
            .user_agent(concat!("par-otlp-exporter/", env!("CARGO_PKG_VERSION")))
            // A collector does not redirect; following one would resend the headers
            // (credentials) somewhere the operator did not name.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("OTLP exporter: cannot build the HTTP client: {e}"))?;
        Ok(Transport {
            client,
            url,
            headers,
            timeout: config.timeout,
            protocol: config.protocol,
        })
    }

    /// Posts `body`, retrying once when that may help. Nothing is sent or retried past
    /// `deadline` (set during shutdown).
    pub(crate) async fn send(
        &self,
        body: Vec<u8>,
        deadline: Option<Instant>,
    ) -> Result<Accepted, SendError> {
        let (error, after) = match self.attempt(body.clone(), deadline).await {
            Attempt::Done(accepted) => return Ok(accepted),
            Attempt::Fail(error) => return Err(SendError(error)),
            Attempt::Retry { error, after } => (error, after),
        };
        let wait = match after {
            Some(after) if after > MAX_RETRY_AFTER => return Err(SendError(error)),
            Some(after) => after,
            None => jittered(BACKOFF),
        };
        if deadline.is_some_and(|d| Instant::now() + wait >= d) {
            return Err(SendError(error));
        }
        tokio::time::sleep(wait).await;
        match self.attempt(body, deadline).await {
            Attempt::Done(accepted) => Ok(accepted),
            Attempt::Fail(error) | Attempt::Retry { error, .. } => Err(SendError(error)),
        }
    }

    async fn attempt(&self, body: Vec<u8>, deadline: Option<Instant>) -> Attempt {
        let mut timeout = self.timeout;
        if let Some(deadline) = deadline {
            timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
            if timeout.is_zero() {
                return Attempt::Fail("shutdown deadline reached".into());
            }
        }
        let request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .timeout(timeout)
            .body(body);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return failed_request(e),
        };
        let status = response.status();
        if status.is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return Attempt::Done(self.accepted(&body));
        }
        let error = format!("the collector answered {status}");
        if retryable(status) {
            let after = retry_after(response.headers());
            Attempt::Retry { error, after }
        } else {
            Attempt::Fail(error)
        }
    }

    /// Reads OTLP partial success; an empty or unreadable body means all accepted (some
    /// receivers answer 200 with nothing).
    fn accepted(&self, body: &[u8]) -> Accepted {
        let response = match self.protocol {
            Protocol::HttpProtobuf => ExportTraceServiceResponse::decode(body).ok(),
            Protocol::HttpJson => serde_json::from_slice(body).ok(),
        };
        let partial = response.and_then(|r: ExportTraceServiceResponse| r.partial_success);
        match partial {
            Some(p) => Accepted {
                rejected: u64::try_from(p.rejected_spans).unwrap_or(0),
                message: p.error_message,
            },
            None => Accepted::default(),
        }
    }
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// Connection failures are worth one retry (a collector restarting); a timeout is not,
/// since it already cost the whole timeout once.
fn failed_request(error: reqwest::Error) -> Attempt {
    let retry = error.is_connect() && !error.is_timeout();
    // The endpoint is logged on its own, without a password it may carry.
    let message = format!(
        "cannot reach the collector: {}",
        error_chain(&error.without_url())
    );
    if retry {
        Attempt::Retry {
            error: message,
            after: None,
        }
    } else {
        Attempt::Fail(message)
    }
}

/// reqwest's top-level message says little ("error sending request"); the cause says why.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` in seconds (the HTTP-date form is rare from collectors and ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `base` ±50 %, from the clock's nanoseconds: enough to keep a fleet of runtimes from
/// retrying in step, without a random number generator.
fn jittered(base: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let fraction = 0.5 + f64::from(nanos % 1000) / 1000.0;
    base.mul_f64(fraction)
}
