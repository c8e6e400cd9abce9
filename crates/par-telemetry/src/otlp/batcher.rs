//! The background side: collects spans from the queue into batches and sends each batch
//! when it is full or its oldest span has waited `schedule_delay`. It runs on its own
//! thread and runtime, so a slow collector never holds a thread that serves calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::{mpsc, oneshot};

use super::config::{Compression, OtlpConfig, Protocol};
use super::encode::{self, Envelope};
use super::span::CallSpan;
use super::transport::Transport;
use super::warn::FailureLog;

/// Minimum time between two "export failed" warnings.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// Shared with the handle: what became of the spans.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) exported: AtomicU64,
    /// Refused at the queue (full, or after shutdown).
    pub(crate) queue_dropped: AtomicU64,
    /// Lost later: not deliverable, refused by the collector, or invalid.
    pub(crate) send_dropped: AtomicU64,
    /// The same events as Prometheus counters.
    pub(crate) counters: super::OtlpCounters,
}

/// Asks the batcher to send everything queued and stop, by `deadline`.
pub(crate) struct Shutdown {
    pub(crate) deadline: Instant,
    pub(crate) done: oneshot::Sender<()>,
}

pub(crate) struct Batcher {
    transport: Transport,
    envelope: Envelope,
    protocol: Protocol,
    compression: Compression,
    endpoint: String,
    max_batch: usize,
    delay: Duration,
    /// When all handles are dropped without a shutdown, the last batch still gets this.
    timeout: Duration,
    batch: Vec<CallSpan>,
    flush_at: Option<tokio::time::Instant>,
    stats: Arc<Stats>,
    failures: FailureLog,
}

impl Batcher {
    pub(crate) fn new(
        config: &OtlpConfig,
        transport: Transport,
        endpoint: String,
        stats: Arc<Stats>,
    ) -> Batcher {
        Batcher {
            transport,
            envelope: Envelope::new(&config.resource),
            protocol: config.protocol,
            compression: config.compression,
            endpoint,
            max_batch: config.max_batch_size,
            delay: config.schedule_delay,
            timeout: config.timeout,
            batch: Vec::with_capacity(config.max_batch_size),
            flush_at: None,
            stats,
            failures: FailureLog::new(WARN_INTERVAL),
        }
    }

    /// Runs until shut down, or until every handle is gone (then sends what is left).
    pub(crate) async fn run(
        mut self,
        mut spans: mpsc::Receiver<CallSpan>,
        mut control: mpsc::UnboundedReceiver<Shutdown>,
    ) {
        loop {
            let flush_at = self.flush_at;
            tokio::select! {
                biased;
                Some(request) = control.recv() => {
                    self.finish(&mut spans, request.deadline).await;
                    let _ = request.done.send(());
                    return;
                }
                span = spans.recv() => match span {
                    Some(span) => self.push(span, None).await,
                    None => {
                        let deadline = Instant::now() + self.timeout;
                        self.finish(&mut spans, deadline).await;
                        return;
                    }
                },
                () = sleep_until(flush_at), if flush_at.is_some() => self.flush(None).await,
            }
        }
    }

    async fn push(&mut self, span: CallSpan, deadline: Option<Instant>) {
        if self.batch.is_empty() {
            self.flush_at = Some(tokio::time::Instant::now() + self.delay);
        }
        self.batch.push(span);
        if self.batch.len() >= self.max_batch {
            self.flush(deadline).await;
        }
    }

    /// Closes the queue (later `export` calls count as dropped), then sends everything
    /// that was in it; what the deadline leaves unsent is counted as dropped.
    async fn finish(&mut self, spans: &mut mpsc::Receiver<CallSpan>, deadline: Instant) {
        spans.close();
        while let Some(span) = spans.recv().await {
            self.push(span, Some(deadline)).await;
        }
        self.flush(Some(deadline)).await;
    }

    async fn flush(&mut self, deadline: Option<Instant>) {
        self.flush_at = None;
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.max_batch));
        let total = batch.len();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            self.dropped(total as u64);
            return;
        }
        let spans = self.valid_spans(batch);
        if spans.is_empty() {
            return;
        }
        let count = spans.len();
        let request = self.envelope.request(spans);
        let body = encode::body(&request, self.protocol, self.compression);
        match self.transport.send(body, deadline).await {
            Ok(accepted) => {
                self.failures.succeeded(&self.endpoint);
                let rejected = accepted.rejected.min(count as u64);
                if rejected > 0 {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        rejected,
                        reason = %accepted.message,
                        "the OTLP collector rejected part of a batch"
                    );
                    self.dropped(rejected);
                }
                let delivered = count as u64 - rejected;
                self.stats.exported.fetch_add(delivered, Ordering::Relaxed);
                self.stats.counters.exported.inc_by(delivered);
            }
            Err(error) => {
                self.failures.failed(&self.endpoint, &error.0, count);
                self.dropped(count as u64);
            }
        }
    }

    /// Converts to wire spans; one with a malformed id is dropped, counted and logged at
    /// debug (it is a caller bug, and one per call would flood the log).
    fn valid_spans(&self, batch: Vec<CallSpan>) -> Vec<Span> {
        let mut spans = Vec::with_capacity(batch.len());
        for call in batch {
            match encode::span(call) {
                Ok(span) => spans.push(span),
                Err(reason) => {
                    tracing::debug!(reason, "span not exported");
                    self.dropped(1);
                }
            }
        }
        spans
    }

    fn dropped(&self, n: u64) {
        self.stats.send_dropped.fetch_add(n, Ordering::Relaxed);
        self.stats.counters.dropped.inc_by(n);
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}
