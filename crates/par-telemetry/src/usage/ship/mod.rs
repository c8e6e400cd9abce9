//! Shipping the ledger to a PostgreSQL database shared by a fleet of instances.
//!
//! # Design
//!
//! The SQLite ledger stays the local source of truth: calls record into it as before,
//! and `GET /runtime/usage` and `par usage export` keep reading it. [`UsageShipper`] is a
//! thread that copies **committed** rows from the file to PostgreSQL. It is not a
//! [`super::UsageSink`] on purpose: a sink sits on the write path, so a PostgreSQL
//! outage would hold records in memory (and shed them past the queue capacity), while a
//! copier behind the file never loses or delays a record whatever PostgreSQL does.
//!
//! Exactly once, whatever crashes where:
//!
//! * Rows are read in rowid order, which is commit order (one writer, no deletes).
//! * Each batch is one PostgreSQL transaction that locks this ledger's row of
//!   `par_usage_shipped`, reads the high-water mark there, inserts the rows above it and
//!   moves the mark. Rows and mark commit together or not at all, so no local state can
//!   disagree with PostgreSQL, and a shipper killed at any point resumes from the mark.
//! * Rows are keyed `(instance_id, ledger_id, local_id)` with `ON CONFLICT DO NOTHING`,
//!   and two shippers on one key take turns on the locked mark row.
//!
//! Keys. `ledger_id` is a UUID generated once per SQLite file (table `par_meta`, schema
//! version 3). `instance_id` is what an operator reads; it defaults to the ledger id
//! and can be set (`--instance-id`). Both are in the key because neither alone is
//! enough: with the name alone, a pod that keeps its name but gets a fresh file (new
//! rowids from 1) would find its rows "already shipped" and lose them; with the file id
//! alone, two instances started from a copied file could not be told apart. A copied or
//! restored file keeps its ledger id: give each copy its own `--instance-id`, or delete
//! `par_meta`'s `ledger_id` row so the next open generates a new one.
//!
//! Failures. A pass runs at start, then every [`ShipConfig::interval`]; while PostgreSQL
//! fails the wait doubles up to [`ShipConfig::max_backoff`]. An unreachable server at
//! startup is not an error. Logs: one warning when trouble starts, at most one a minute
//! while it lasts, one line when it ends; they name the server as `user@host:port/db`,
//! never with the password. [`ShipCounters`] count shipped records, failed passes and the
//! lag (local records not yet shipped). A batch PostgreSQL keeps rejecting is retried
//! forever (the lag shows it); NUL characters, which PostgreSQL text cannot hold, are
//! replaced by U+FFFD so that no record can block shipping that way.
//!
//! Shutdown. [`UsageShipper::close`] runs a final pass bounded by
//! [`ShipConfig::close_timeout`]; call it after the ledger is closed so the last batch
//! is in the file. What it cannot ship in time ships at the next start.
//!
//! TLS. `sslmode=require` connects with rustls and **verifies** the certificate and host
//! name against the public web roots plus [`ShipConfig::ca_bundle`] (libpq's `require`
//! does not verify; PAR refuses to send billing data to an unverified server when TLS
//! was asked for). Any other mode, including the default `prefer`, is plain text.
//!
//! The tables are created when missing (serialised by an advisory lock so a fleet can
//! start at once against an empty database); unqualified names follow the role's
//! `search_path` (`options=-c search_path=billing` in the URL picks a schema).

mod config;
mod source;
mod target;
mod tls;
mod worker;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use config::{postgres_password, ShipConfig, ShipCounters, ShipStats};

use super::UsageError;
use source::Source;
use target::ShipKey;
use worker::{Control, Worker};

/// Time past the close deadline given to a batch that is in flight when it passes.
const CLOSE_MARGIN: Duration = Duration::from_secs(2);

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShipError {
    #[error("{0}")]
    Postgres(#[from] postgres::Error),
    #[error("{0}")]
    Local(#[from] UsageError),
}

/// The running shipper. Dropping it without [`UsageShipper::close`] stops the thread at
/// the next batch boundary without a final flush.
pub struct UsageShipper {
    control: Option<mpsc::Sender<Control>>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
    abandon: Arc<AtomicBool>,
    counters: ShipCounters,
    close_timeout: Duration,
    instance_id: String,
}

impl UsageShipper {
    /// Checks the settings, opens the ledger file at `ledger` for reading (the ledger
    /// must have been opened for writing once, which gives it its id) and starts the
    /// thread. Does not contact PostgreSQL.
    pub fn start(ledger: &Path, config: ShipConfig) -> Result<Self, UsageError> {
        let connection = config.connection()?;
        let source = Source::open(ledger)?;
        let ledger_id = source.ledger_id()?;
        let instance_id = config.instance_id.clone().unwrap_or(ledger_id.clone());
        let key = ShipKey {
            instance_id: instance_id.clone(),
            ledger_id,
        };
        tracing::info!(
            database = %connection.display,
            instance_id = %key.instance_id,
            ledger_id = %key.ledger_id,
            every_secs = config.interval.as_secs_f64(),
            tls = connection.tls.is_some(),
            "shipping usage records to PostgreSQL"
        );
        let abandon = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            source,
            connection,
            key,
            batch_size: config.batch_size,
            interval: config.interval,
            max_backoff: config.max_backoff.max(config.interval),
            counters: config.counters.clone(),
            abandon: abandon.clone(),
            target: None,
            mark: 0,
            backoff: config.interval,
            trouble: None,
        };
        let (control, receiver) = mpsc::channel();
        let (finished, done) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("par-usage-shipper".to_owned())
            .spawn(move || {
                worker.run(receiver);
                let _ = finished.send(());
            })?;
        Ok(UsageShipper {
            control: Some(control),
            done,
            thread: Some(thread),
            abandon,
            counters: config.counters,
            close_timeout: config.close_timeout,
            instance_id,
        })
    }

    /// The name this instance's rows carry in PostgreSQL.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Shipped, failures and lag so far.
    pub fn stats(&self) -> ShipStats {
        self.counters.stats()
    }

    /// Ships what the file holds (bounded by [`ShipConfig::close_timeout`]) and stops.
    /// Blocking: from async code, run it with `spawn_blocking`.
    pub fn close(mut self) -> ShipStats {
        let deadline = Instant::now() + self.close_timeout;
        if let Some(control) = self.control.take() {
            let _ = control.send(Control::Close { deadline });
        }
        match self.done.recv_timeout(self.close_timeout + CLOSE_MARGIN) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => self.join(),
            Err(RecvTimeoutError::Timeout) => {
                self.abandon.store(true, Ordering::Release);
                tracing::warn!(
                    "usage shipper did not finish in time; unshipped records ship at the next start"
                );
            }
        }
        self.stats()
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("usage shipper thread panicked");
            }
        }
    }
}

impl Drop for UsageShipper {
    fn drop(&mut self) {
        self.abandon.store(true, Ordering::Release);
        // Dropping the sender wakes a waiting thread, which then stops.
        self.control.take();
    }
}

impl std::fmt::Debug for UsageShipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageShipper")
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}
