//! The shipper thread: a pass every interval, backing off while PostgreSQL fails, with
//! a log line when trouble starts, at most one a minute while it lasts, and one when it
//! ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{Connection, ShipCounters};
use super::source::Source;
use super::target::{ShipKey, Target};
use super::ShipError;

/// Least time between two "still failing" warnings.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What the handle asks of the thread. Dropping the sender without `Close` stops the
/// thread at the next batch boundary with no final flush (as a crash would).
pub(crate) enum Control {
    Close { deadline: Instant },
}

pub(crate) struct Worker {
    pub(crate) source: Source,
    pub(crate) connection: Connection,
    pub(crate) key: ShipKey,
    pub(crate) batch_size: usize,
    pub(crate) interval: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) counters: ShipCounters,
    pub(crate) abandon: Arc<AtomicBool>,
    pub(crate) target: Option<Target>,
    /// The shipped mark last read from PostgreSQL; 0 until the first connection.
    pub(crate) mark: i64,
    pub(crate) backoff: Duration,
    pub(crate) trouble: Option<Trouble>,
}

pub(crate) struct Trouble {
    since: Instant,
    logged: Instant,
    failures: u64,
}

impl Worker {
    pub(crate) fn run(mut self, control: Receiver<Control>) {
        // The first pass runs at once, so a restart catches up without waiting.
        let mut wait = Duration::ZERO;
        loop {
            match control.recv_timeout(wait) {
                Ok(Control::Close { deadline }) => return self.finish(deadline),
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => wait = self.pass(None),
            }
        }
    }

    /// Ships until caught up (or the deadline); returns how long to wait for the next pass.
    fn pass(&mut self, deadline: Option<Instant>) -> Duration {
        let wait = match self.ship(deadline) {
            Ok(()) => {
                self.recovered();
                self.backoff = self.interval;
                self.interval
            }
            Err(error) => {
                let wait = self.backoff;
                self.backoff = (self.backoff * 2).min(self.max_backoff);
                self.failed(&error, wait);
                wait
            }
        };
        if let Ok(lag) = self.source.count_after(self.mark) {
            self.counters.lag.set(lag);
        }
        wait
    }

    fn ship(&mut self, deadline: Option<Instant>) -> Result<(), ShipError> {
        // Taken out so that any error drops the connection: the next pass reconnects.
        let mut target = match self.target.take() {
            Some(target) => target,
            None => self.connect(deadline)?,
        };
        loop {
            let stop = self.abandon.load(Ordering::Acquire)
                || deadline.is_some_and(|at| Instant::now() >= at);
            if stop {
                break;
            }
            let batch = target.ship_batch(&self.key, &self.source, self.batch_size)?;
            self.mark = batch.mark;
            self.counters.shipped.inc_by(batch.shipped as u64);
            if batch.shipped < self.batch_size {
                break;
            }
        }
        self.target = Some(target);
        Ok(())
    }

    fn connect(&mut self, deadline: Option<Instant>) -> Result<Target, ShipError> {
        let mut connection = self.connection.clone();
        if let Some(at) = deadline {
            // The final flush must not outlast its deadline waiting for a dead server.
            let left = at.saturating_duration_since(Instant::now());
            let limit = connection.config.get_connect_timeout().copied();
            let bounded = limit.map_or(left, |limit| limit.min(left));
            connection
                .config
                .connect_timeout(bounded.max(Duration::from_millis(1)));
        }
        let mut target = Target::connect(&connection)?;
        self.mark = target.mark(&self.key)?;
        tracing::info!(
            database = %self.connection.display,
            instance_id = %self.key.instance_id,
            shipped_up_to = self.mark,
            "usage shipper connected to PostgreSQL"
        );
        Ok(target)
    }

    fn failed(&mut self, error: &ShipError, retry_in: Duration) {
        self.counters.failures.inc();
        let now = Instant::now();
        let lag = self.counters.lag.get();
        let database = &self.connection.display;
        let Some(trouble) = &mut self.trouble else {
            tracing::warn!(
                %database, %error, lag, retry_in_secs = retry_in.as_secs_f64(),
                "usage shipping to PostgreSQL failed; records stay in the local ledger and are retried"
            );
            self.trouble = Some(Trouble {
                since: now,
                logged: now,
                failures: 1,
            });
            return;
        };
        trouble.failures += 1;
        if now.duration_since(trouble.logged) >= LOG_EVERY {
            trouble.logged = now;
            tracing::warn!(
                %database, %error, lag, failures = trouble.failures,
                failing_for_secs = now.duration_since(trouble.since).as_secs(),
                "usage shipping to PostgreSQL still failing"
            );
        }
    }

    fn recovered(&mut self) {
        if let Some(trouble) = self.trouble.take() {
            tracing::info!(
                database = %self.connection.display,
                failures = trouble.failures,
                failed_for_secs = trouble.since.elapsed().as_secs(),
                "usage shipping to PostgreSQL recovered"
            );
        }
    }

    /// The bounded final flush of a graceful close.
    fn finish(mut self, deadline: Instant) {
        self.pass(Some(deadline));
        let lag = self.counters.lag.get();
        if lag > 0 {
            tracing::warn!(
                lag,
                "usage shipper stopped before PostgreSQL had every record; the rest ships at the next start"
            );
        } else {
            tracing::info!("usage shipper stopped; PostgreSQL has every record");
        }
    }
}
