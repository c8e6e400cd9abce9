//! Limits of the proxy, with defaults suited to API clients (long model calls included).

use std::time::Duration;

/// Limits applied to every connection of one package. The defaults are
/// [`EgressConfig::default`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressConfig {
    /// Connections one package may have open through the proxy at once (default 128);
    /// past it a new connection is answered `503` and closed.
    pub max_connections: usize,
    /// Largest request head (request line and headers) in bytes (default 16 KiB);
    /// larger ones get `431`.
    pub max_header_bytes: usize,
    /// Largest upstream response head in the forwarding case (default 64 KiB); larger
    /// ones get `502`.
    pub max_response_header_bytes: usize,
    /// Time a client has to send its whole request head (default 10 s), else `408`.
    pub header_timeout: Duration,
    /// Time a name may take to resolve (default 10 s), else `504`.
    pub resolve_timeout: Duration,
    /// Time connecting to the upstream may take, all addresses together (default 10 s),
    /// else `504`.
    pub connect_timeout: Duration,
    /// A connection with no byte in either direction for this long is closed (default
    /// 300 s; in the forwarding case, before the response head arrived, with `504`).
    pub idle_timeout: Duration,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            max_connections: 128,
            max_header_bytes: 16 * 1024,
            max_response_header_bytes: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            resolve_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}
