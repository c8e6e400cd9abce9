//! What the proxy reports: one [`Outcome`] per connection and bytes as they flow.

use par_telemetry::Metrics;

/// How a connection through the proxy ended. A closed set: the values are metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Relayed; ended by either side closing.
    Ok,
    /// Refused by policy (`403`).
    Refused,
    /// Not a valid proxy request: malformed, too large or too slow (`400`, `431`, `408`),
    /// or closed before a request arrived.
    BadRequest,
    /// The name did not resolve, or no address accepted the connection (`502`), or the
    /// upstream's response was not HTTP (`502`).
    Unreachable,
    /// Resolving, connecting or waiting for the response head took too long (`504`).
    Timeout,
    /// Relayed, then closed after the idle timeout.
    IdleTimeout,
    /// The package already had its maximum of connections open (`503`).
    Overloaded,
    /// Relayed, then broken by an I/O error (a reset) on either side.
    Aborted,
}

impl Outcome {
    /// Every value, for metrics set up front.
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::Refused,
        Outcome::BadRequest,
        Outcome::Unreachable,
        Outcome::Timeout,
        Outcome::IdleTimeout,
        Outcome::Overloaded,
        Outcome::Aborted,
    ];

    /// The label value (`par_egress_connections_total{outcome}`) and log field.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::BadRequest => "bad_request",
            Outcome::Unreachable => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::IdleTimeout => "idle_timeout",
            Outcome::Overloaded => "overloaded",
            Outcome::Aborted => "aborted",
        }
    }
}

/// Which way bytes went: `Up` from the package to the upstream, `Down` back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    /// The label value (`par_egress_bytes_total{direction}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// Receives what the proxy does. Called on the connection's task: keep it cheap and
/// never block.
pub trait EgressObserver: Send + Sync + 'static {
    /// One connection ended, once per accepted connection.
    fn connection(&self, package: &str, outcome: Outcome);
    /// `n` bytes went to (`Up`) or came from (`Down`) an upstream, reported as they flow
    /// so a long tunnel is counted before it closes.
    fn bytes(&self, package: &str, direction: Direction, n: u64);
}

/// Counts into `par_egress_connections_total{package, outcome}` and
/// `par_egress_bytes_total{package, direction}`.
impl EgressObserver for Metrics {
    fn connection(&self, package: &str, outcome: Outcome) {
        self.egress_connection(package, outcome.as_str());
    }

    fn bytes(&self, package: &str, direction: Direction, n: u64) {
        self.egress_bytes(package, direction.as_str(), n);
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl EgressObserver for NoObserver {
    fn connection(&self, _: &str, _: Outcome) {}
    fn bytes(&self, _: &str, _: Direction, _: u64) {}
}
