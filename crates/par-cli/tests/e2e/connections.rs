//! Connections that cannot hold the runtime: slow request heads, silent and idle
//! connections, stalled bodies, too many connections, bodies over the limit announced
//! with `Expect: 100-continue`.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::TestRuntime;

/// Long enough for any of these timeouts to fire under load; never waited in full when
/// the runtime behaves.
const DEADLINE: Duration = Duration::from_secs(20);

/// Reads until the peer closes (or resets) the connection, within `DEADLINE`; the bytes
/// read, or `None` if it was still open at the deadline.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(DEADLINE, read).await.ok()?;
    Some(seen)
}

/// Reads one response (head and a `content-length` body) off a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> (u16, String, Value) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = find(&data, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_string();
                let length = content_length(&head);
                if data.len() >= end + 4 + length {
                    let body = data[end + 4..end + 4 + length].to_vec();
                    return (head, body);
                }
            }
            let n = stream.read(&mut buf).await.expect("read a response");
            assert!(n > 0, "closed before a whole response: {data:?}");
            data.extend_from_slice(&buf[..n]);
        }
    };
    let (head, body) = tokio::time::timeout(DEADLINE, read)
        .await
        .expect("a response");
    let status = head[9..12].parse().expect("a status");
    (
        status,
        head,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn find(data: &[u8], needle: &[u8]) -> Option<usize> {
    data.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

async fn connect(rt: &TestRuntime) -> TcpStream {
    TcpStream::connect(rt.addr()).await.expect("connect")
}

fn health_request(rt: &TestRuntime) -> String {
    format!(
        "GET /runtime/health HTTP/1.1\r\nhost: {}\r\n\r\n",
        rt.addr()
    )
}

#[tokio::test]
async fn a_request_head_sent_byte_by_byte_is_cut_off_at_the_header_timeout() {
    let rt = TestRuntime::builder()
        .args(&["--header-read-timeout", "1"])
        .start()
        .await;
    let mut stream = connect(&rt).await;
    let (mut reader, mut writer) = stream.split();
    let started = Instant::now();
    // Each byte well within the timeout of the last, the head never complete.
    let drip = async {
        let head = format!(
            "GET /runtime/health HTTP/1.1\r\nhost: {}\r\nx-slow: {}",
            rt.addr(),
            "a".repeat(200)
        );
        for byte in head.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let closed = async {
        let mut buf = [0u8; 1024];
        let read = reader.read(&mut buf).await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "an answer to a head that never ended"
        );
    };
    tokio::select! {
        _ = closed => {}
        _ = drip => panic!("still open after the whole slow head ({:?})", started.elapsed()),
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "closed early: {took:?}");
    let (status, _) = rt.get("/runtime/health").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed() {
    let rt = TestRuntime::builder()
        .args(&["--header-read-timeout", "1", "--keep-alive-timeout", "2"])
        .start()
        .await;
    // A connection that never sends a byte.
    let mut silent = connect(&rt).await;
    let started = Instant::now();
    let seen = read_until_closed(&mut silent).await;
    assert_eq!(seen, Some(vec![]), "a silent connection stays open");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A kept-alive connection after its response.
    let mut idle = connect(&rt).await;
    idle.write_all(health_request(&rt).as_bytes())
        .await
        .unwrap();
    let (status, _, body) = read_response(&mut idle).await;
    assert_eq!(status, 200, "{body}");
    let answered = Instant::now();
    let seen = read_until_closed(&mut idle).await;
    assert_eq!(seen, Some(vec![]), "an idle connection stays open");
    let took = answered.elapsed();
    // The keep-alive timeout, not the shorter header timeout, applies between requests.
    assert!(took >= Duration::from_millis(1900), "closed after {took:?}");
}

#[tokio::test]
async fn a_stalled_request_body_is_answered_408_and_the_connection_closed() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--body-read-timeout", "1"])
        .start()
        .await;
    let mut stream = connect(&rt).await;
    let head = format!(
        "POST /agents/kit-minimal/invoke HTTP/1.1\r\nhost: {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"a\":",
        rt.addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, head, body) = read_response(&mut stream).await;
    assert_eq!(status, 408, "{head}\n{body}");
    assert_eq!(body["code"], "request_timeout", "{body}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert!(read_until_closed(&mut stream).await.is_some(), "left open");
    let (status, _) = rt.invoke("kit-minimal", serde_json::json!({})).await;
    assert_eq!(status, 200);
}

/// `GET /runtime/health` on a new connection: the status, and the body.
async fn health_on_a_new_connection(rt: &TestRuntime) -> (u16, Value) {
    let mut stream = connect(rt).await;
    stream
        .write_all(health_request(rt).as_bytes())
        .await
        .unwrap();
    let (status, _, body) = read_response(&mut stream).await;
    (status, body)
}

#[tokio::test]
async fn over_the_connection_cap_new_connections_are_refused_until_some_close() {
    let rt = TestRuntime::builder()
        .args(&["--max-connections", "4", "--header-read-timeout", "60"])
        .start()
        .await;
    // The test client's own pooled connection counts too: hold silent connections until
    // a new one is refused.
    let mut held = Vec::new();
    let refused = loop {
        let (status, body) = health_on_a_new_connection(&rt).await;
        if status == 503 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(held.len() < 4, "no cap: {} connections held", held.len());
        held.push(connect(&rt).await);
    };
    assert_eq!(refused["code"], "overloaded", "{refused}");
    // The client's kept-alive connection still serves.
    let (status, _) = rt.get("/runtime/health").await;
    assert_eq!(status, 200);
    drop(held);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = health_on_a_new_connection(&rt).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a head announcing a body (and `Expect: 100-continue`) but no body; the answer.
async fn announce_body(rt: &TestRuntime, path: &str, headers: &str, length: u64) -> String {
    let mut stream = connect(rt).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\n{headers}content-length: {length}\r\n\
         expect: 100-continue\r\n\r\n",
        rt.addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while find(&seen, b"\r\n\r\n").is_none() {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed without an answer");
            seen.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("an answer");
    String::from_utf8_lossy(&seen).to_string()
}

#[tokio::test]
async fn bodies_over_their_limit_are_413_before_any_100_continue() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--max-upload-bytes", "1048576"])
        .start()
        .await;
    let huge = 1u64 << 40;
    let cases = [
        (
            "/agents/kit-minimal/invoke",
            "content-type: application/json\r\n",
        ),
        (
            "/agents/kit-minimal/invoke",
            "content-type: multipart/form-data; boundary=x\r\n",
        ),
        (
            "/runtime/packages",
            "content-type: application/octet-stream\r\nx-par-upload: 1\r\n",
        ),
    ];
    for (path, headers) in cases {
        let head = announce_body(&rt, path, headers, huge).await;
        assert!(head.starts_with("HTTP/1.1 413"), "{path} {headers}: {head}");
        assert!(head.contains("too_large"), "{head}");
    }
}

#[tokio::test]
async fn a_multipart_invoke_over_the_upload_limit_is_413_and_under_it_is_served() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--max-upload-bytes", "4194304"])
        .start()
        .await;
    let send = |size: usize| {
        let part = reqwest::multipart::Part::bytes(vec![b'z'; size]).file_name("big.bin");
        let form = reqwest::multipart::Form::new().part("doc", part);
        rt.client
            .post(rt.url("/agents/kit-minimal/invoke"))
            .multipart(form)
            .send()
    };
    // Over axum's 2 MiB default, under the configured limit.
    let r = send(3 << 20).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["files"][0]["size"], 3 << 20, "{body}");
    let r = send(5 << 20).await.unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "too_large", "{body}");
}
