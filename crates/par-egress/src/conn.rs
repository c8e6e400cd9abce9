//! One client connection: read the request head, decide, resolve, vet, connect, relay;
//! then one log line and one outcome for the observer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::forward::upstream_request;
use crate::head::{read_request, HeadError, RawHead, RequestHead};
use crate::meter::Meter;
use crate::observer::{Direction, EgressObserver, Outcome};
use crate::policy::{is_local_address, EgressPolicy};
use crate::relay::{relay, Mode};
use crate::reply::{self, answer, Status};
use crate::target::{parse_absolute_url, parse_authority, Host, Target};

/// What every connection of one `serve` call shares.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) package: Arc<str>,
    pub(crate) policy: Arc<EgressPolicy>,
    pub(crate) observer: Arc<dyn EgressObserver>,
}

/// A request that ends with the proxy's own answer.
struct Failure {
    status: Status,
    reason: String,
    outcome: Outcome,
}

impl Failure {
    fn new(status: Status, reason: impl Into<String>, outcome: Outcome) -> Self {
        Failure {
            status,
            reason: reason.into(),
            outcome,
        }
    }

    /// No answer: the client is gone or never sent a request.
    fn silent(outcome: Outcome) -> Self {
        Failure::new(reply::BAD_REQUEST, String::new(), outcome)
    }
}

/// The decided route of a request.
enum Route {
    Tunnel,
    Forward { path: String },
}

/// Serves one accepted connection to the end.
pub(crate) async fn handle(mut client: TcpStream, ctx: Ctx) {
    let _ = client.set_nodelay(true);
    let mut record = Record::new(ctx);
    let (outcome, detail) =
        match proxy(&mut client, &record.ctx, &record.meter, &mut record.target).await {
            Ok(done) => done,
            Err(f) if f.reason.is_empty() => (f.outcome, None),
            Err(f) => {
                answer(&mut client, f.status, &f.reason).await;
                (f.outcome, Some(f.reason))
            }
        };
    record.finish(outcome, detail.as_deref());
}

/// Answers a connection over the package's limit with `503`.
pub(crate) async fn reject(mut client: TcpStream, ctx: Ctx) {
    let record = Record::new(ctx);
    let reason = "too many connections from this package";
    answer(&mut client, reply::OVERLOADED, reason).await;
    record.finish(Outcome::Overloaded, Some(reason));
}

/// The record of one connection: exactly one log line and one outcome, written when it
/// ends, or as `aborted` when its task is dropped first (the proxy was stopped).
pub(crate) struct Record {
    ctx: Ctx,
    meter: Meter,
    target: Option<Target>,
    written: bool,
}

impl Record {
    pub(crate) fn new(ctx: Ctx) -> Self {
        let meter = Meter::new(ctx.package.clone(), ctx.observer.clone());
        Record {
            ctx,
            meter,
            target: None,
            written: false,
        }
    }

    pub(crate) fn finish(mut self, outcome: Outcome, detail: Option<&str>) {
        self.write(outcome, detail);
    }

    fn write(&mut self, outcome: Outcome, detail: Option<&str>) {
        self.written = true;
        self.meter.flush();
        self.ctx.observer.connection(&self.ctx.package, outcome);
        let target = self.target.as_ref();
        let host = target.map(|t| t.host.to_string());
        tracing::info!(
            package = %self.ctx.package,
            host = host.as_deref().unwrap_or("-"),
            port = target.map_or(0, |t| t.port),
            bytes_up = self.meter.up(),
            bytes_down = self.meter.down(),
            outcome = outcome.as_str(),
            duration_ms = self.meter.start().elapsed().as_secs_f64() * 1000.0,
            detail,
            "egress connection"
        );
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if !self.written {
            self.write(Outcome::Aborted, Some("the proxy stopped"));
        }
    }
}

async fn proxy(
    client: &mut TcpStream,
    ctx: &Ctx,
    meter: &Meter,
    target_out: &mut Option<Target>,
) -> Result<(Outcome, Option<String>), Failure> {
    let config = ctx.policy.config();
    let raw = read_head(client, config.max_header_bytes, config.header_timeout).await?;
    let req = RequestHead::parse(&raw);
    let (target, route) = route(&req)?;
    *target_out = Some(target.clone());
    ctx.policy
        .check_target(&target)
        .map_err(|r| Failure::new(reply::FORBIDDEN, r.0, Outcome::Refused))?;
    let addrs = resolve(&target, config.resolve_timeout).await?;
    let vetted = ctx
        .policy
        .vet(&target, &addrs, is_local_address)
        .map_err(|r| Failure::new(reply::FORBIDDEN, r.0, Outcome::Refused))?;
    let mut upstream = connect(&target, &vetted, config.connect_timeout).await?;
    let _ = upstream.set_nodelay(true);
    let mode = match route {
        Route::Tunnel => {
            let ok = b"HTTP/1.1 200 Connection Established\r\n\r\n";
            client
                .write_all(ok)
                .await
                .map_err(|_| Failure::silent(Outcome::Aborted))?;
            Mode::Tunnel
        }
        Route::Forward { path } => {
            let head = upstream_request(&req, &target, &path);
            send_up(&mut upstream, &head, meter).await?;
            Mode::Forward {
                max_response_head: config.max_response_header_bytes,
            }
        }
    };
    send_up(&mut upstream, raw.rest(), meter).await?;
    Ok(relay(client, &mut upstream, meter, config.idle_timeout, mode).await)
}

async fn send_up(upstream: &mut TcpStream, bytes: &[u8], meter: &Meter) -> Result<(), Failure> {
    if bytes.is_empty() {
        return Ok(());
    }
    upstream.write_all(bytes).await.map_err(|e| {
        Failure::new(
            reply::BAD_GATEWAY,
            format!("writing to the upstream: {e}"),
            Outcome::Unreachable,
        )
    })?;
    meter.add(Direction::Up, bytes.len());
    Ok(())
}

async fn read_head(
    client: &mut TcpStream,
    max: usize,
    within: Duration,
) -> Result<RawHead, Failure> {
    match timeout(within, read_request(client, max)).await {
        Err(_) => Err(Failure::new(
            reply::HEAD_TIMEOUT,
            "the request head did not arrive in time",
            Outcome::BadRequest,
        )),
        Ok(Ok(raw)) => Ok(raw),
        Ok(Err(HeadError::TooLarge)) => Err(Failure::new(
            reply::TOO_LARGE,
            format!("the request head is larger than {max} bytes or has too many headers"),
            Outcome::BadRequest,
        )),
        Ok(Err(HeadError::Malformed(m))) => Err(Failure::new(
            reply::BAD_REQUEST,
            format!("malformed request: {m}"),
            Outcome::BadRequest,
        )),
        Ok(Err(HeadError::Closed | HeadError::Io(_))) => Err(Failure::silent(Outcome::BadRequest)),
    }
}

/// `CONNECT host:port` tunnels; an absolute `http://` URL is forwarded.
fn route(req: &RequestHead) -> Result<(Target, Route), Failure> {
    let bad = |e: String| Failure::new(reply::BAD_REQUEST, e, Outcome::BadRequest);
    if req.method.eq_ignore_ascii_case("CONNECT") {
        let target = parse_authority(&req.target, None).map_err(|e| bad(format!("CONNECT {e}")))?;
        return Ok((target, Route::Tunnel));
    }
    if !req.target.contains("://") {
        return Err(bad(format!(
            "not a proxy request ('{}' is not an absolute http:// URL)",
            req.target.escape_debug()
        )));
    }
    let (target, path) = parse_absolute_url(&req.target).map_err(bad)?;
    Ok((target, Route::Forward { path }))
}

/// The addresses to vet: an IP literal as it is, a name resolved once here (the
/// addresses vetted are the addresses connected to).
async fn resolve(target: &Target, within: Duration) -> Result<Vec<SocketAddr>, Failure> {
    let name = match &target.host {
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, target.port)]),
        Host::Name(name) => name.as_str(),
    };
    let failed = |why: String| Failure::new(reply::DNS_ERROR, why, Outcome::Unreachable);
    match timeout(within, tokio::net::lookup_host((name, target.port))).await {
        Err(_) => Err(Failure::new(
            reply::TIMEOUT,
            format!("resolving {name} timed out"),
            Outcome::Timeout,
        )),
        Ok(Err(e)) => Err(failed(format!("cannot resolve {name}: {e}"))),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                return Err(failed(format!("{name} has no address")));
            }
            Ok(addrs)
        }
    }
}

/// Connects to the first vetted address that answers, all within `within`.
async fn connect(
    target: &Target,
    addrs: &[SocketAddr],
    within: Duration,
) -> Result<TcpStream, Failure> {
    let attempts = async {
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last)
    };
    let label = target.to_string();
    match timeout(within, attempts).await {
        Err(_) => Err(Failure::new(
            reply::TIMEOUT,
            format!("connecting to {label} timed out"),
            Outcome::Timeout,
        )),
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => {
            let why = e.map_or_else(|| "no address".to_owned(), |e| e.to_string());
            Err(Failure::new(
                reply::BAD_GATEWAY,
                format!("cannot connect to {label}: {why}"),
                Outcome::Unreachable,
            ))
        }
    }
}
