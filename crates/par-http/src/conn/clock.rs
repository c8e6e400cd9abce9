//! What one connection is doing, for its timeouts: reading a request head, serving
//! requests, or idle between them. The socket wrapper notes the first byte of a head,
//! the service notes requests starting and their responses ending; a watchdog closes the
//! connection when the state it is in has lasted too long.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// "No head is being read": the marker in `head_started_ms`.
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

pub(crate) struct Clock {
    opened: Instant,
    in_flight: AtomicUsize,
    served_any: AtomicBool,
    /// Milliseconds since `opened`.
    idle_since_ms: AtomicU64,
    head_started_ms: AtomicU64,
    changed: Notify,
}

impl Clock {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Clock {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served_any: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(NONE),
            changed: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// Bytes arrived: with no request in progress they begin the next head.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started_ms.load(Ordering::Acquire) == NONE
        {
            self.head_started_ms.store(self.now_ms(), Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// A request head was parsed; the guard ends the request when its response is done.
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served_any.store(true, Ordering::Release);
        self.head_started_ms.store(NONE, Ordering::Release);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// When the connection's current state runs out, or `None` while a request is served
    /// (a request's own body and call timeouts bound it).
    fn deadline(&self, limits: Timeouts) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let at = |ms: u64, d: Duration| self.opened + Duration::from_millis(ms) + d;
        let head = self.head_started_ms.load(Ordering::Acquire);
        if head != NONE {
            return Some(at(head, limits.header));
        }
        if !self.served_any.load(Ordering::Acquire) {
            // A new connection owes its first request head within the header timeout.
            return Some(at(0, limits.header));
        }
        Some(at(
            self.idle_since_ms.load(Ordering::Acquire),
            limits.keep_alive,
        ))
    }

    fn expired_reason(&self) -> Expired {
        let reading = self.head_started_ms.load(Ordering::Acquire) != NONE;
        if reading || !self.served_any.load(Ordering::Acquire) {
            Expired::Header
        } else {
            Expired::Idle
        }
    }

    /// Resolves when the connection has outstayed its current state.
    pub(crate) async fn expired(&self, limits: Timeouts) -> Expired {
        loop {
            match self.deadline(limits) {
                None => self.changed.notified().await,
                Some(at) if at <= Instant::now() => return self.expired_reason(),
                Some(at) => {
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
        clock.idle_since_ms.store(clock.now_ms(), Ordering::Release);
        clock.in_flight.fetch_sub(1, Ordering::AcqRel);
        clock.changed.notify_one();
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
        let clock = Clock::new();
        let started = Instant::now();
        assert_eq!(clock.expired(LIMITS).await, Expired::Header);
        assert!(started.elapsed() >= LIMITS.header);
    }

    #[tokio::test]
    async fn after_a_response_the_keep_alive_timeout_applies() {
        let clock = Clock::new();
        drop(clock.request_started());
        let started = Instant::now();
        assert_eq!(clock.expired(LIMITS).await, Expired::Idle);
        assert!(started.elapsed() >= LIMITS.keep_alive);
    }

    #[tokio::test]
    async fn a_request_in_flight_is_never_timed_out_by_the_connection() {
        let clock = Clock::new();
        let request = clock.request_started();
        let waited = tokio::time::timeout(LIMITS.keep_alive * 2, clock.expired(LIMITS)).await;
        assert!(waited.is_err(), "expired while a request was served");
        drop(request);
        assert_eq!(clock.expired(LIMITS).await, Expired::Idle);
    }

    #[tokio::test]
    async fn bytes_of_a_new_head_start_the_header_timeout() {
        let clock = Clock::new();
        drop(clock.request_started());
        clock.bytes_read();
        let started = Instant::now();
        assert_eq!(clock.expired(LIMITS).await, Expired::Header);
        assert!(started.elapsed() < LIMITS.keep_alive);
    }
}
