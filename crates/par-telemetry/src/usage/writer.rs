//! The writer thread: drains the queue into batches and commits them through a sink.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{UsageConfig, UsageCounters, UsageError, UsageRecord, UsageSink};

/// Answer to a flush or close request.
pub(crate) type Reply = oneshot::Sender<Result<(), UsageError>>;

/// What the ledger handle sends to the writer.
pub(crate) enum Msg {
    // Boxed so the preallocated queue slots stay small.
    Record(Box<UsageRecord>),
    Flush(Reply),
    Close(Reply),
}

enum Next {
    Msg(Msg),
    Deadline,
    Disconnected,
}

pub(crate) struct Writer {
    sink: Box<dyn UsageSink>,
    batch: Vec<UsageRecord>,
    deadline: Option<Instant>,
    failing: bool,
    flush_interval: Duration,
    batch_size: usize,
    capacity: usize,
    counters: UsageCounters,
    retention: Option<Duration>,
    size_warning_bytes: Option<u64>,
    maintenance_interval: Duration,
    next_maintenance: Instant,
}

impl Writer {
    pub(crate) fn new(sink: Box<dyn UsageSink>, config: &UsageConfig) -> Self {
        Writer {
            sink,
            batch: Vec::with_capacity(config.batch_size),
            deadline: None,
            failing: false,
            flush_interval: config.flush_interval,
            batch_size: config.batch_size,
            capacity: config.capacity,
            counters: config.counters.clone(),
            retention: config.retention,
            size_warning_bytes: config.size_warning_bytes,
            maintenance_interval: config.maintenance_interval,
            // The first pass runs as soon as the writer starts.
            next_maintenance: Instant::now(),
        }
    }

    /// Runs until closed or until every handle is gone, committing what is left either way.
    pub(crate) fn run(mut self, queue: Receiver<Msg>) {
        loop {
            // Checked on every turn so a steady stream of records cannot starve it.
            if self.next_maintenance <= Instant::now() {
                self.maintain();
            }
            match self.next(&queue) {
                Next::Msg(Msg::Record(record)) => self.push(*record),
                Next::Msg(Msg::Flush(reply)) => {
                    let _ = reply.send(self.commit());
                }
                Next::Msg(Msg::Close(reply)) => {
                    self.drain(&queue);
                    let _ = reply.send(self.finish());
                    return;
                }
                Next::Deadline => {
                    if self.deadline.is_some_and(|d| d <= Instant::now()) {
                        let _ = self.commit();
                    }
                }
                Next::Disconnected => {
                    let _ = self.finish();
                    return;
                }
            }
        }
    }

    fn next(&self, queue: &Receiver<Msg>) -> Next {
        let wake = match self.deadline {
            Some(deadline) => deadline.min(self.next_maintenance),
            None => self.next_maintenance,
        };
        match queue.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(msg) => Next::Msg(msg),
            Err(RecvTimeoutError::Timeout) => Next::Deadline,
            Err(RecvTimeoutError::Disconnected) => Next::Disconnected,
        }
    }

    /// Retention and the size warning; failures are logged and retried next time.
    fn maintain(&mut self) {
        self.next_maintenance = Instant::now() + self.maintenance_interval;
        if let Some(keep) = self.retention {
            let now_ms = super::record::unix_ms(time::OffsetDateTime::now_utc());
            let cutoff = now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
            match self.sink.prune(cutoff) {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(
                    deleted,
                    retention_days = keep.as_secs() / 86_400,
                    "usage records past their retention deleted"
                ),
                Err(error) => tracing::error!(%error, "usage retention pass failed"),
            }
        }
        if let (Some(limit), Some(size)) = (self.size_warning_bytes, self.sink.size_bytes()) {
            if size > limit {
                tracing::warn!(
                    size_bytes = size,
                    warning_bytes = limit,
                    "usage ledger is larger than --usage-size-warning-mb: shorten \
                     --usage-retention-days or export and archive it"
                );
            }
        }
    }

    /// Takes records that raced with a close request, so they are committed too.
    fn drain(&mut self, queue: &Receiver<Msg>) {
        while let Ok(msg) = queue.try_recv() {
            match msg {
                Msg::Record(record) => self.batch.push(*record),
                Msg::Flush(reply) | Msg::Close(reply) => {
                    let _ = reply.send(Err(UsageError::Closed));
                }
            }
        }
    }

    /// The last commit; whatever it cannot store is counted as dropped.
    fn finish(&mut self) -> Result<(), UsageError> {
        let result = self.commit();
        if !self.batch.is_empty() {
            let lost = self.batch.len();
            self.counters.dropped.inc_by(lost as u64);
            tracing::error!(lost, "usage records lost at ledger shutdown");
            self.batch.clear();
        }
        result
    }

    fn push(&mut self, record: UsageRecord) {
        if self.batch.is_empty() {
            self.deadline = Some(Instant::now() + self.flush_interval);
        }
        self.batch.push(record);
        // While the sink fails, retry on the interval only, not on every record.
        if self.batch.len() >= self.batch_size && !self.failing {
            let _ = self.commit();
        }
    }

    fn commit(&mut self) -> Result<(), UsageError> {
        if self.batch.is_empty() {
            self.deadline = None;
            return Ok(());
        }
        match self.sink.write_batch(&self.batch) {
            Ok(()) => {
                self.counters.written.inc_by(self.batch.len() as u64);
                self.batch.clear();
                self.deadline = None;
                self.failing = false;
                Ok(())
            }
            Err(error) => Err(self.failed(error)),
        }
    }

    /// Keeps the batch for a retry after one interval, shedding the oldest records past
    /// the queue capacity so memory stays bounded while the sink is down.
    fn failed(&mut self, error: UsageError) -> UsageError {
        tracing::error!(%error, pending = self.batch.len(), "usage batch commit failed");
        self.failing = true;
        self.deadline = Some(Instant::now() + self.flush_interval);
        if self.batch.len() > self.capacity {
            let excess = self.batch.len() - self.capacity;
            self.batch.drain(..excess);
            self.counters.dropped.inc_by(excess as u64);
            tracing::error!(dropped = excess, "usage records shed while the sink fails");
        }
        error
    }
}
