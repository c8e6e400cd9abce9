//! The handle the runtime holds: a bounded queue in front of the batcher thread.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::sync::{mpsc, oneshot};

use super::batcher::{Batcher, Shutdown, Stats};
use super::config::OtlpConfig;
use super::span::CallSpan;
use super::transport::Transport;
use super::warn::log_queue_drop;

/// Exports call spans to an OTLP/HTTP collector. Cheap to clone: every clone feeds the
/// same queue and batcher.
#[derive(Clone)]
pub struct OtlpExporter {
    inner: Arc<Inner>,
}

struct Inner {
    spans: mpsc::Sender<CallSpan>,
    control: mpsc::UnboundedSender<Shutdown>,
    stats: Arc<Stats>,
    /// For logs: the endpoint without a password.
    endpoint: String,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("endpoint", &self.inner.endpoint)
            .field("exported", &self.exported())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl OtlpExporter {
    /// `None` when tracing export is not configured (the default), `Err` on a bad setting
    /// (the message names the variable). See [`OtlpConfig::from_env`].
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Option<OtlpExporter>, String> {
        match OtlpConfig::from_env(vars)? {
            Some(config) => OtlpExporter::start(config).map(Some),
            None => Ok(None),
        }
    }

    /// Starts the batcher thread. Needs no Tokio runtime from the caller.
    pub fn start(config: OtlpConfig) -> Result<OtlpExporter, String> {
        let transport = Transport::new(&config)?;
        let endpoint = loggable(&config.endpoint);
        let stats = Arc::new(Stats {
            counters: config.counters.clone(),
            ..Stats::default()
        });
        let (spans_tx, spans_rx) = mpsc::channel(config.max_queue_size.max(1));
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let batcher = Batcher::new(&config, transport, endpoint.clone(), stats.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("OTLP exporter: cannot start its runtime: {e}"))?;
        std::thread::Builder::new()
            .name("par-otlp".into())
            .spawn(move || runtime.block_on(batcher.run(spans_rx, control_rx)))
            .map_err(|e| format!("OTLP exporter: cannot start its thread: {e}"))?;
        tracing::info!(
            endpoint = %endpoint,
            protocol = ?config.protocol,
            "OTLP trace export on"
        );
        Ok(OtlpExporter {
            inner: Arc::new(Inner {
                spans: spans_tx,
                control: control_tx,
                stats,
                endpoint,
            }),
        })
    }

    /// Queues one span. Never blocks or fails the caller: when the queue is full (the
    /// collector is slow or down) or the exporter was shut down, the span is dropped and
    /// counted.
    pub fn export(&self, span: CallSpan) {
        if let Err(e) = self.inner.spans.try_send(span) {
            let n = self
                .inner
                .stats
                .queue_dropped
                .fetch_add(1, Ordering::Relaxed)
                + 1;
            self.inner.stats.counters.dropped.inc();
            if matches!(e, mpsc::error::TrySendError::Full(_)) && log_queue_drop(n) {
                tracing::warn!(
                    endpoint = %self.inner.endpoint,
                    dropped = n,
                    "OTLP export queue full; span dropped"
                );
            }
        }
    }

    /// Sends what is queued, then stops the batcher; returns within `timeout` even if the
    /// collector does not answer. Later `export` calls only count drops. Meant for graceful
    /// shutdown; calling it twice is harmless.
    pub async fn shutdown(&self, timeout: Duration) {
        let (done, finished) = oneshot::channel();
        let request = Shutdown {
            deadline: Instant::now() + timeout,
            done,
        };
        if self.inner.control.send(request).is_err() {
            return; // already stopped
        }
        // A little past the batcher's own deadline, so it can report in time.
        let _ = tokio::time::timeout(timeout + Duration::from_millis(100), finished).await;
    }

    /// Spans that will never reach the collector: dropped at the full queue or after
    /// shutdown, in batches that could not be delivered, rejected by the collector, or with
    /// malformed ids.
    pub fn dropped(&self) -> u64 {
        let stats = &self.inner.stats;
        stats.queue_dropped.load(Ordering::Relaxed) + stats.send_dropped.load(Ordering::Relaxed)
    }

    /// Spans the collector accepted.
    pub fn exported(&self) -> u64 {
        self.inner.stats.exported.load(Ordering::Relaxed)
    }

    /// The traces URL, without a password, for a startup log line.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }
}

fn loggable(endpoint: &str) -> String {
    match Url::parse(endpoint) {
        Ok(mut url) => {
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => String::new(),
    }
}
