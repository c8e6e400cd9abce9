//! Plain HTTP forwarding: the request head rewritten to origin form for the upstream, the
//! response head rewritten for the client. One request per connection: both heads say
//! `Connection: close`, so no client ever reuses a connection the proxy is closing.

use crate::head::{Header, RequestHead, ResponseHead};
use crate::target::Target;

/// Headers that describe one hop, never forwarded (RFC 9110 section 7.6.1), plus
/// `Proxy-Authorization`, which is for this proxy only.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// Headers the sender named in `Connection` are hop-by-hop too.
fn connection_tokens(headers: &[Header]) -> Vec<String> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| {
            String::from_utf8_lossy(value)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn end_to_end(headers: &[Header]) -> impl Iterator<Item = &Header> {
    let named = connection_tokens(headers);
    headers.iter().filter(move |(name, _)| {
        let name = name.to_ascii_lowercase();
        !HOP_BY_HOP.contains(&name.as_str()) && !named.contains(&name)
    })
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The head sent upstream: origin-form `path`, `Host` from the URL (RFC 9112 section
/// 3.2.2), end-to-end headers, `Connection: close`.
pub(crate) fn upstream_request(req: &RequestHead, target: &Target, path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let line = format!("{} {path} HTTP/1.{}\r\n", req.method, req.minor_version);
    out.extend_from_slice(line.as_bytes());
    push_header(&mut out, "Host", target.host_header().as_bytes());
    for (name, value) in end_to_end(&req.headers) {
        if !name.eq_ignore_ascii_case("host") {
            push_header(&mut out, name, value);
        }
    }
    push_header(&mut out, "Connection", b"close");
    out.extend_from_slice(b"\r\n");
    out
}

/// The head sent to the client: the upstream's status and end-to-end headers,
/// `Connection: close`. A `1xx` interim response keeps its headers as they are.
pub(crate) fn client_response(res: &ResponseHead) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(format!("HTTP/1.{} {} ", res.minor_version, res.code).as_bytes());
    out.extend_from_slice(&res.reason);
    out.extend_from_slice(b"\r\n");
    if is_interim(res.code) {
        for (name, value) in &res.headers {
            push_header(&mut out, name, value);
        }
    } else {
        for (name, value) in end_to_end(&res.headers) {
            push_header(&mut out, name, value);
        }
        push_header(&mut out, "Connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// An interim response: another head follows. (`101` cannot happen: `Upgrade` is never
/// forwarded.)
pub(crate) fn is_interim(code: u16) -> bool {
    (100..200).contains(&code) && code != 101
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::parse_absolute_url;

    fn header(name: &str, value: &str) -> Header {
        (name.into(), value.as_bytes().to_vec())
    }

    #[test]
    fn rewrites_the_request_to_origin_form() {
        let req = RequestHead {
            method: "POST".into(),
            target: "http://API.example.com:8080/v1?x=1".into(),
            minor_version: 1,
            headers: vec![
                header("Host", "spoofed"),
                header("Proxy-Authorization", "Basic abc"),
                header("Connection", "keep-alive, X-Hop"),
                header("X-Hop", "1"),
                header("Content-Length", "2"),
                header("Proxy-Connection", "keep-alive"),
            ],
        };
        let (target, path) = parse_absolute_url(&req.target).unwrap();
        let head = String::from_utf8(upstream_request(&req, &target, &path)).unwrap();
        assert_eq!(
            head,
            "POST /v1?x=1 HTTP/1.1\r\nHost: api.example.com:8080\r\nContent-Length: 2\r\n\
             Connection: close\r\n\r\n"
        );
    }

    #[test]
    fn rewrites_the_response_to_close() {
        let res = ResponseHead {
            minor_version: 1,
            code: 200,
            reason: b"OK".to_vec(),
            headers: vec![
                header("Keep-Alive", "timeout=5"),
                header("Content-Length", "3"),
            ],
        };
        let head = String::from_utf8(client_response(&res)).unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
        let interim = ResponseHead {
            minor_version: 1,
            code: 100,
            reason: b"Continue".to_vec(),
            headers: vec![],
        };
        assert_eq!(client_response(&interim), b"HTTP/1.1 100 Continue\r\n\r\n");
        assert!(is_interim(103) && !is_interim(101) && !is_interim(200));
    }
}
