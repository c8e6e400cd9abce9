//! What one connection is doing, for its timeouts: reading a request head, serving
//! requests, or idle between them. The socket wrapper notes the first byte of a head,
//! the service notes requests starting and their responses ending; a watchdog closes the
//! connection when the state it is in has lasted too long.
//!
//! The watchdog runs in the connection's own task, so waking it from a state change is a
//! self-wake, which the scheduler turns into a yield that wakes a second worker thread:
//! two futex calls and two context switches per request, most of a lone caller's (c=1)
//! extra latency. So a state change wakes the watchdog only when it moves the deadline
//! earlier than the one the watchdog sleeps toward (`armed_ms`): a head starting after a
//! keep-alive pause, or a response ending while the watchdog waits without a timer. Any
//! later deadline is found when the armed one passes and the watchdog looks again.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// "No head is being read" in `head_started_ms`; "no timer" in `armed_ms`.
const NONE: u64 = u64::MAX;

/// The connection timeouts (see `ConnectionLimits`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub header: Duration,
    pub keep_alive: Duration,
}

/// Why a connection was closed by its watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// A request head (or the first one, or the TLS handshake) took too long.
    Header,
    /// No request for the keep-alive timeout.
    Idle,
}

// Every field is read and written SeqCst: a state change stores its field, then reads
// `armed_ms`; the watchdog stores `armed_ms`, then reads the fields again. One of the two
// sees the other, so no deadline is moved earlier without the watchdog hearing of it.
pub(crate) struct Clock {
    opened: Instant,
    timeouts: Timeouts,
    in_flight: AtomicUsize,
    served_any: AtomicBool,
    /// Milliseconds since `opened`.
    idle_since_ms: AtomicU64,
    head_started_ms: AtomicU64,
    /// The deadline the watchdog sleeps toward, in ms since `opened` (`NONE`: no timer).
    armed_ms: AtomicU64,
    changed: Notify,
}

impl Clock {
    pub(crate) fn new(timeouts: Timeouts) -> Arc<Self> {
        Arc::new(Clock {
            opened: Instant::now(),
            timeouts,
            in_flight: AtomicUsize::new(0),
            served_any: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(NONE),
            armed_ms: AtomicU64::new(NONE),
            changed: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// Bytes arrived: with no request in progress they begin the next head.
    fn bytes_read(&self) {
        if self.in_flight.load(SeqCst) == 0 && self.head_started_ms.load(SeqCst) == NONE {
            self.head_started_ms.store(self.now_ms(), SeqCst);
            self.state_changed();
        }
    }

    /// A request head was parsed; the guard ends the request when its response is done.
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, SeqCst);
        self.served_any.store(true, SeqCst);
        self.head_started_ms.store(NONE, SeqCst);
        // No deadline while a request is served: never earlier, the watchdog need not know.
        InFlight(self.clone())
    }

    /// Wakes the watchdog if the deadline is now earlier than the one it sleeps toward.
    fn state_changed(&self) {
        if self.deadline_ms().unwrap_or(NONE) < self.armed_ms.load(SeqCst) {
            self.changed.notify_one();
        }
    }

    /// When the connection's current state runs out, in ms since `opened`, or `None` while
    /// a request is served (a request's own body and call timeouts bound it).
    fn deadline_ms(&self) -> Option<u64> {
        if self.in_flight.load(SeqCst) > 0 {
            return None;
        }
        let ms = |d: Duration| d.as_millis() as u64;
        if !self.served_any.load(SeqCst) {
            // A new connection owes its first request head within the header timeout.
            return Some(ms(self.timeouts.header));
        }
        let head = self.head_started_ms.load(SeqCst);
        if head != NONE {
            return Some(head.saturating_add(ms(self.timeouts.header)));
        }
        let idle = self.idle_since_ms.load(SeqCst);
        Some(idle.saturating_add(ms(self.timeouts.keep_alive)))
    }

    fn expired_reason(&self) -> Expired {
        let reading = self.head_started_ms.load(SeqCst) != NONE;
        if reading || !self.served_any.load(SeqCst) {
            Expired::Header
        } else {
            Expired::Idle
        }
    }

    /// Resolves when the connection has outstayed its current state.
    pub(crate) async fn expired(&self) -> Expired {
        loop {
            let deadline = self.deadline_ms();
            self.armed_ms.store(deadline.unwrap_or(NONE), SeqCst);
            if self.deadline_ms() != deadline {
                continue; // changed while arming: look again
            }
            match deadline {
                None => self.changed.notified().await,
                Some(at) if at <= self.now_ms() => return self.expired_reason(),
                Some(at) => {
                    let at = self.opened + Duration::from_millis(at);
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = self.changed.notified() => {}
                    }
                }
            }
        }
    }
}

/// One request being served; dropped when its response body is finished (or dropped).
pub(crate) struct InFlight(Arc<Clock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let clock = &self.0;
        clock.idle_since_ms.store(clock.now_ms(), SeqCst);
        clock.in_flight.fetch_sub(1, SeqCst);
        clock.state_changed();
    }
}

/// The socket, noting when bytes arrive.
pub(crate) struct Watched<T> {
    inner: T,
    clock: Arc<Clock>,
}

impl<T> Watched<T> {
    pub(crate) fn new(inner: T, clock: Arc<Clock>) -> Self {
        Watched { inner, clock }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_read();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Timeouts = Timeouts {
        header: Duration::from_millis(40),
        keep_alive: Duration::from_millis(120),
    };

    #[tokio::test]
    async fn a_silent_new_connection_owes_its_first_head_within_the_header_timeout() {
        let clock = Clock::new(LIMITS);
        let started = Instant::now();
        assert_eq!(clock.expired().await, Expired::Header);
        assert!(started.elapsed() >= LIMITS.header);
    }

    #[tokio::test]
    async fn after_a_response_the_keep_alive_timeout_applies() {
        let clock = Clock::new(LIMITS);
        drop(clock.request_started());
        let started = Instant::now();
        assert_eq!(clock.expired().await, Expired::Idle);
        assert!(started.elapsed() >= LIMITS.keep_alive);
    }

    #[tokio::test]
    async fn a_request_in_flight_is_never_timed_out_by_the_connection() {
        let clock = Clock::new(LIMITS);
        let request = clock.request_started();
        let waited = tokio::time::timeout(LIMITS.keep_alive * 2, clock.expired()).await;
        assert!(waited.is_err(), "expired while a request was served");
        drop(request);
        assert_eq!(clock.expired().await, Expired::Idle);
    }

    #[tokio::test]
    async fn bytes_of_a_new_head_start_the_header_timeout() {
        let clock = Clock::new(LIMITS);
        drop(clock.request_started());
        clock.bytes_read();
        let started = Instant::now();
        assert_eq!(clock.expired().await, Expired::Header);
        assert!(started.elapsed() < LIMITS.keep_alive);
    }

    #[tokio::test]
    async fn a_head_starting_under_a_sleeping_watchdog_brings_its_deadline_forward() {
        let limits = Timeouts {
            header: Duration::from_millis(40),
            keep_alive: Duration::from_secs(60),
        };
        let clock = Clock::new(limits);
        drop(clock.request_started());
        let watchdog = tokio::spawn({
            let clock = clock.clone();
            async move { clock.expired().await }
        });
        // Until the watchdog sleeps toward the keep-alive deadline.
        while clock.armed_ms.load(SeqCst) == NONE {
            tokio::task::yield_now().await;
        }
        clock.bytes_read();
        let expired = tokio::time::timeout(Duration::from_secs(5), watchdog).await;
        assert_eq!(
            expired.expect("header timeout missed").unwrap(),
            Expired::Header
        );
    }

    #[tokio::test]
    async fn a_response_ending_under_a_timerless_watchdog_arms_the_keep_alive_timeout() {
        let clock = Clock::new(LIMITS);
        let request = clock.request_started();
        let watchdog = tokio::spawn({
            let clock = clock.clone();
            async move { clock.expired().await }
        });
        while clock.armed_ms.load(SeqCst) != NONE || watchdog.is_finished() {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(LIMITS.keep_alive).await;
        assert!(
            !watchdog.is_finished(),
            "expired while a request was served"
        );
        drop(request);
        let expired = tokio::time::timeout(LIMITS.keep_alive * 10, watchdog).await;
        assert_eq!(
            expired.expect("keep-alive timeout missed").unwrap(),
            Expired::Idle
        );
    }

    /// Requests that end before the armed deadline leave the watchdog asleep: no wake (a
    /// self-wake costs a lone caller two context switches per request).
    #[tokio::test]
    async fn requests_that_move_no_deadline_earlier_wake_nobody() {
        let clock = Clock::new(Timeouts {
            header: Duration::from_secs(10),
            keep_alive: Duration::from_secs(60),
        });
        drop(clock.request_started());
        clock.bytes_read();
        let armed = clock.deadline_ms().unwrap();
        clock.armed_ms.store(armed, SeqCst);
        // The wake stored while no watchdog was armed.
        let stored = tokio::time::timeout(Duration::ZERO, clock.changed.notified()).await;
        assert!(stored.is_ok());
        for _ in 0..3 {
            drop(clock.request_started());
            clock.bytes_read();
        }
        let woken = tokio::time::timeout(Duration::from_millis(20), clock.changed.notified());
        assert!(woken.await.is_err(), "the watchdog was woken");
        // A deadline earlier than the armed one does wake it.
        clock.armed_ms.store(NONE, SeqCst);
        drop(clock.request_started());
        let woken = tokio::time::timeout(Duration::from_secs(5), clock.changed.notified());
        assert!(woken.await.is_ok(), "the watchdog was not woken");
    }
}
