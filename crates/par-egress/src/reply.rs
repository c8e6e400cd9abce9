//! The proxy's own answers: a short plain-text error, then a closed connection.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// An error answer: status, and the `Proxy-Status` error type (RFC 9209) naming the
/// failure for clients that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) code: u16,
    pub(crate) phrase: &'static str,
    pub(crate) proxy_error: &'static str,
}

impl Status {
    const fn new(code: u16, phrase: &'static str, proxy_error: &'static str) -> Status {
        Status {
            code,
            phrase,
            proxy_error,
        }
    }
}

pub(crate) const BAD_REQUEST: Status = Status::new(400, "Bad Request", "http_request_error");
pub(crate) const FORBIDDEN: Status = Status::new(403, "Forbidden", "destination_ip_prohibited");
pub(crate) const HEAD_TIMEOUT: Status = Status::new(408, "Request Timeout", "http_request_error");
pub(crate) const TOO_LARGE: Status =
    Status::new(431, "Request Header Fields Too Large", "http_request_error");
pub(crate) const BAD_GATEWAY: Status = Status::new(502, "Bad Gateway", "destination_unavailable");
pub(crate) const DNS_ERROR: Status = Status::new(502, "Bad Gateway", "dns_error");
pub(crate) const BAD_RESPONSE: Status = Status::new(502, "Bad Gateway", "http_response_incomplete");
pub(crate) const OVERLOADED: Status =
    Status::new(503, "Service Unavailable", "proxy_internal_error");
pub(crate) const TIMEOUT: Status = Status::new(504, "Gateway Timeout", "connection_timeout");

/// Time a client gets to take the answer before the connection is dropped.
const LINGER: Duration = Duration::from_secs(2);
/// Bytes of the client's request body read and thrown away while lingering.
const LINGER_BYTES: usize = 256 * 1024;

/// The answer's bytes; `reason` becomes the body (one line).
pub(crate) fn render(status: Status, reason: &str) -> Vec<u8> {
    let body = format!("{reason}\n");
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Proxy-Status: par-egress; error={}\r\nConnection: close\r\n\r\n{body}",
        status.code,
        status.phrase,
        body.len(),
        status.proxy_error,
    )
    .into_bytes()
}

/// Writes the answer and closes: the write side is shut first and what the client still
/// sends is drained for a moment, so the answer is not lost to a reset.
pub(crate) async fn answer(client: &mut TcpStream, status: Status, reason: &str) {
    let deadline = Instant::now() + LINGER;
    let _ = timeout(LINGER, client.write_all(&render(status, reason))).await;
    let _ = client.shutdown().await;
    let mut sink = [0u8; 8192];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, client.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_plain_answer() {
        let text = String::from_utf8(render(FORBIDDEN, "no")).unwrap();
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{text}");
        assert!(text.contains("Content-Length: 3\r\n"), "{text}");
        assert!(text.contains("Proxy-Status: par-egress; error=destination_ip_prohibited\r\n"));
        assert!(text.ends_with("\r\n\r\nno\n"), "{text}");
    }
}
