//! Moving bytes both ways between a client and its upstream, counted, until both sides
//! are done (tunnel) or the response is complete (forwarding), or nothing moved for the
//! idle timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::forward::{client_response, is_interim};
use crate::head::{read_response, HeadError, ResponseHead};
use crate::meter::Meter;
use crate::observer::{Direction, Outcome};
use crate::reply::{answer, BAD_RESPONSE, TIMEOUT};

const BUFFER: usize = 16 * 1024;

/// What the relay does with the upstream's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// A `CONNECT` tunnel: bytes as they are, both ways, half-closes passed on.
    Tunnel,
    /// Plain forwarding: the response head is read (at most this many bytes) and
    /// rewritten, the rest passed on; the response ends the connection.
    Forward { max_response_head: usize },
}

enum End {
    Done,
    Idle,
    Broken,
    BadResponse(String),
}

enum DownError {
    Io,
    BadResponse(String),
}

/// Relays until the end; answers `502`/`504` itself when a forwarded request gets no
/// usable response. Returns the outcome and, for a failure, the detail for the log.
pub(crate) async fn relay(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    meter: &Meter,
    idle: Duration,
    mode: Mode,
) -> (Outcome, Option<String>) {
    meter.touch();
    let answered = AtomicBool::new(matches!(mode, Mode::Tunnel));
    let end = {
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        let up = pump(&mut cr, &mut uw, meter, Direction::Up);
        let down = async {
            match mode {
                Mode::Tunnel => pump(&mut ur, &mut cw, meter, Direction::Down)
                    .await
                    .map_err(|_| DownError::Io),
                Mode::Forward { max_response_head } => {
                    forward_down(&mut ur, &mut cw, meter, max_response_head, &answered).await
                }
            }
        };
        drive(up, down, meter, idle, matches!(mode, Mode::Forward { .. })).await
    };
    let answered = answered.load(Ordering::Relaxed);
    match end {
        End::Done => (Outcome::Ok, None),
        End::Broken => (Outcome::Aborted, None),
        End::Idle if answered => (Outcome::IdleTimeout, None),
        End::Idle => {
            let reason = "the upstream sent no response in time";
            answer(client, TIMEOUT, reason).await;
            (Outcome::Timeout, Some(reason.into()))
        }
        End::BadResponse(reason) if answered => (Outcome::Aborted, Some(reason)),
        End::BadResponse(reason) => {
            answer(client, BAD_RESPONSE, &reason).await;
            (Outcome::Unreachable, Some(reason))
        }
    }
}

async fn drive(
    up: impl std::future::Future<Output = std::io::Result<()>>,
    down: impl std::future::Future<Output = Result<(), DownError>>,
    meter: &Meter,
    idle: Duration,
    response_ends: bool,
) -> End {
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    loop {
        tokio::select! {
            r = &mut up, if !up_done => {
                up_done = true;
                if r.is_err() {
                    return broken_unless_ending(down_done);
                }
            }
            r = &mut down, if !down_done => {
                down_done = true;
                match r {
                    Err(DownError::Io) => return broken_unless_ending(up_done),
                    Err(DownError::BadResponse(reason)) => return End::BadResponse(reason),
                    Ok(()) if response_ends => return End::Done,
                    Ok(()) => {}
                }
            }
            () = idle_expired(meter, idle) => return End::Idle,
        }
        if up_done && down_done {
            return End::Done;
        }
    }
}

/// An I/O error once the other direction has ended cleanly is how many peers close
/// (a reset after the last byte, a write after the other side left): a normal end.
/// With both directions still open it broke the connection.
fn broken_unless_ending(other_done: bool) -> End {
    if other_done {
        End::Done
    } else {
        End::Broken
    }
}

/// Resolves once nothing has moved for `idle`.
async fn idle_expired(meter: &Meter, idle: Duration) {
    loop {
        let deadline = meter.last_activity() + idle;
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// Copies until EOF, then shuts the writer. `Up` counts bytes written to the upstream,
/// `Down` bytes read from it.
async fn pump<R, W>(
    r: &mut R,
    w: &mut W,
    meter: &Meter,
    direction: Direction,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            let _ = w.shutdown().await;
            return Ok(());
        }
        if direction == Direction::Down {
            meter.add(direction, n);
        }
        w.write_all(&buf[..n]).await?;
        if direction == Direction::Up {
            meter.add(direction, n);
        }
    }
}

/// The forwarding case's way down: interim heads, the final head rewritten, the body.
async fn forward_down<R, W>(
    ur: &mut R,
    cw: &mut W,
    meter: &Meter,
    max_head: usize,
    answered: &AtomicBool,
) -> Result<(), DownError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut carry = Vec::new();
    loop {
        let raw = read_response(ur, max_head, carry, &mut |n| meter.add(Direction::Down, n))
            .await
            .map_err(|e| match e {
                HeadError::Closed => {
                    DownError::BadResponse("the upstream closed without a response".into())
                }
                HeadError::TooLarge => {
                    DownError::BadResponse("the upstream's response head is too large".into())
                }
                HeadError::Malformed(m) => {
                    DownError::BadResponse(format!("the upstream's response is not HTTP: {m}"))
                }
                HeadError::Io(e) => DownError::BadResponse(format!("reading the response: {e}")),
            })?;
        let head = ResponseHead::parse(&raw);
        cw.write_all(&client_response(&head))
            .await
            .map_err(|_| DownError::Io)?;
        answered.store(true, Ordering::Relaxed);
        if is_interim(head.code) {
            carry = raw.rest().to_vec();
            continue;
        }
        cw.write_all(raw.rest()).await.map_err(|_| DownError::Io)?;
        break;
    }
    pump(ur, cw, meter, Direction::Down)
        .await
        .map_err(|_| DownError::Io)
}
