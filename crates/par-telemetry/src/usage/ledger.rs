//! The handle the runtime records through.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::record::bound_reported;
use super::writer::{Msg, Reply, Writer};
use super::{
    ExportFormat, SqliteSink, UsageConfig, UsageCounters, UsageError, UsageQuery, UsageReader,
    UsageRecord, UsageReport, UsageSink,
};

/// Longest [`UsageLedger::query`] waits for queued records to be committed.
pub const QUERY_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// The usage ledger. Cloning is cheap; all clones feed the same writer thread.
#[derive(Clone)]
pub struct UsageLedger {
    inner: Arc<Inner>,
}

struct Inner {
    queue: SyncSender<Msg>,
    path: Option<PathBuf>,
    counters: UsageCounters,
    max_reported_bytes: usize,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl UsageLedger {
    /// Opens or creates the SQLite ledger at `path` and starts its writer thread.
    /// Blocks briefly on file I/O; call it at startup.
    pub fn open(path: impl AsRef<Path>, config: UsageConfig) -> Result<Self, UsageError> {
        config.validate()?;
        let path = path.as_ref();
        let sink = SqliteSink::open(path, config.synchronous)?;
        Self::start(Box::new(sink), Some(path.to_path_buf()), config)
    }

    /// A ledger writing to another sink. It cannot be queried through this handle.
    pub fn with_sink(sink: impl UsageSink, config: UsageConfig) -> Result<Self, UsageError> {
        config.validate()?;
        Self::start(Box::new(sink), None, config)
    }

    fn start(
        sink: Box<dyn UsageSink>,
        path: Option<PathBuf>,
        config: UsageConfig,
    ) -> Result<Self, UsageError> {
        let (queue, receiver) = mpsc::sync_channel(config.capacity);
        let writer = Writer::new(sink, &config);
        let thread = std::thread::Builder::new()
            .name("par-usage-writer".to_owned())
            .spawn(move || writer.run(receiver))?;
        let inner = Inner {
            queue,
            path,
            counters: config.counters,
            max_reported_bytes: config.max_reported_bytes,
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
        };
        Ok(UsageLedger {
            inner: Arc::new(inner),
        })
    }

    /// Queues one record without blocking. Returns false when it was dropped because the
    /// queue is full or the ledger is closed; drops are counted (see the module docs).
    pub fn record(&self, mut record: UsageRecord) -> bool {
        if self.inner.closed.load(Ordering::Acquire) {
            return self.drop_record("closed");
        }
        let reported = std::mem::take(&mut record.reported);
        record.reported = bound_reported(reported, self.inner.max_reported_bytes);
        match self.inner.queue.try_send(Msg::Record(Box::new(record))) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => self.drop_record("queue full"),
            Err(TrySendError::Disconnected(_)) => self.drop_record("writer gone"),
        }
    }

    fn drop_record(&self, reason: &'static str) -> bool {
        let dropped = self.inner.counters.dropped.inc() + 1;
        // Warn at 1, 2, 4, 8, ... so a flood of drops cannot flood the log too.
        if dropped.is_power_of_two() {
            tracing::warn!(reason, dropped_total = dropped, "usage record dropped");
        }
        false
    }

    /// Records dropped so far (the `dropped` counter of [`UsageConfig::counters`]).
    pub fn dropped(&self) -> u64 {
        self.inner.counters.dropped.get()
    }

    /// Waits until every record queued before this call is committed.
    pub async fn flush(&self) -> Result<(), UsageError> {
        self.request(Msg::Flush).await
    }

    /// Commits everything queued and stops the writer. Later records are dropped and
    /// counted; calling `close` again returns at once.
    pub async fn close(&self) -> Result<(), UsageError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = self.request(Msg::Close).await;
        self.join_writer().await;
        result
    }

    async fn request(&self, message: fn(Reply) -> Msg) -> Result<(), UsageError> {
        let (reply, answer) = oneshot::channel();
        let queue = self.inner.queue.clone();
        // The queue may be full: wait for room on a blocking thread, not an async worker.
        let sent = tokio::task::spawn_blocking(move || queue.send(message(reply))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return Err(UsageError::Closed);
        }
        answer.await.unwrap_or(Err(UsageError::Closed))
    }

    async fn join_writer(&self) {
        let handle = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if let Ok(Err(_)) = tokio::task::spawn_blocking(move || handle.join()).await {
                tracing::error!("usage writer thread panicked");
            }
        }
    }

    /// The SQLite file, when the ledger writes to one.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// A read connection to the ledger's database.
    pub fn reader(&self) -> Result<UsageReader, UsageError> {
        let path = self.path().ok_or(UsageError::NotQueryable)?;
        UsageReader::open(path)
    }

    /// Records and aggregates for `GET /runtime/usage`, read off the async workers.
    /// Flushes first (waiting at most [`QUERY_FLUSH_WAIT`]) so that calls finished before
    /// the query are in the answer.
    pub async fn query(&self, query: &UsageQuery) -> Result<UsageReport, UsageError> {
        // A failed or slow flush must not fail the query: answer with what is committed.
        let _ = tokio::time::timeout(QUERY_FLUSH_WAIT, self.flush()).await;
        let path = self.path().ok_or(UsageError::NotQueryable)?.to_path_buf();
        let query = query.clone();
        let read = move || UsageReader::open(&path)?.query(&query);
        tokio::task::spawn_blocking(read)
            .await
            .unwrap_or(Err(UsageError::Closed))
    }

    /// Streams the matching records to `out`, oldest first; returns how many. Blocking.
    pub fn export(
        &self,
        query: &UsageQuery,
        format: ExportFormat,
        out: impl Write,
    ) -> Result<u64, UsageError> {
        self.reader()?.export(query, format, out)
    }
}

impl std::fmt::Debug for UsageLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageLedger")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}
