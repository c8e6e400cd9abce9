//! Tunnels and plain forwarding carry the bytes, exactly counted.

use std::sync::Arc;

use par_egress::{Direction, EgressConfig, EgressObserver, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{policy, read_all, status, Proxy, Upstream};

#[tokio::test]
async fn connect_tunnels_bytes_both_ways_and_counts_them_exactly() {
    let echo = Upstream::echo().await;
    let proxy = Proxy::allowing(&format!("127.0.0.1:{}", echo.port())).await;
    let (mut stream, head) = proxy.tunnel(&format!("127.0.0.1:{}", echo.port())).await;
    assert_eq!(head, "HTTP/1.1 200 Connection Established\r\n\r\n");

    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = stream.split();
    let write = async {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let read = r.read_to_end(&mut back);
    let ((), read) = tokio::join!(write, read);
    read.unwrap();
    assert_eq!(back, payload);

    assert_eq!(proxy.recorder.wait_for(1).await, [Outcome::Ok]);
    let n = payload.len() as u64;
    assert_eq!(proxy.recorder.bytes("pkg", Direction::Up), n);
    assert_eq!(proxy.recorder.bytes("pkg", Direction::Down), n);
    assert_eq!(echo.counts.get(), (1, n, n));
}

#[tokio::test]
async fn plain_http_is_forwarded_in_origin_form_with_exact_counts() {
    let http = Upstream::http().await;
    let proxy = Proxy::allowing(&format!("127.0.0.1:{}", http.port())).await;
    let request = format!(
        "POST http://127.0.0.1:{}/v1/items?x=1 HTTP/1.1\r\nHost: spoofed.example\r\n\
         Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic c2VjcmV0\r\n\
         Content-Length: 5\r\n\r\nhello",
        http.port()
    );
    let answer = proxy.exchange(request.as_bytes()).await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    assert!(!answer.contains("Keep-Alive"), "{answer}");
    assert!(
        answer.ends_with("upstream saw POST /v1/items?x=1 body=5"),
        "{answer}"
    );

    let seen = http.counts.requests.lock().unwrap()[0].clone();
    assert!(
        seen.starts_with("POST /v1/items?x=1 HTTP/1.1\r\n"),
        "{seen}"
    );
    assert!(
        seen.contains(&format!("\r\nHost: 127.0.0.1:{}\r\n", http.port())),
        "{seen}"
    );
    assert!(
        !seen.contains("spoofed") && !seen.contains("Proxy-"),
        "{seen}"
    );
    assert!(seen.contains("\r\nConnection: close\r\n"), "{seen}");

    assert_eq!(proxy.recorder.wait_for(1).await, [Outcome::Ok]);
    let (accepted, received, sent) = http.counts.get();
    assert_eq!(accepted, 1);
    assert_eq!(proxy.recorder.bytes("pkg", Direction::Up), received);
    assert_eq!(proxy.recorder.bytes("pkg", Direction::Down), sent);
}

#[tokio::test]
async fn a_request_split_across_many_writes_is_forwarded() {
    let http = Upstream::http().await;
    let proxy = Proxy::allowing(&format!("127.0.0.1:{}", http.port())).await;
    let request = format!(
        "GET http://127.0.0.1:{}/slow HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n",
        http.port()
    );
    let mut stream = proxy.connect().await;
    for piece in request.as_bytes().chunks(7) {
        stream.write_all(piece).await.unwrap();
        stream.flush().await.unwrap();
    }
    let answer = read_all(&mut stream).await;
    assert!(
        answer.ends_with("upstream saw GET /slow body=0"),
        "{answer}"
    );
}

#[tokio::test]
async fn the_metrics_observer_counts_outcomes_and_bytes() {
    let echo = Upstream::echo().await;
    let metrics = par_telemetry::Metrics::new();
    let observer: Arc<dyn EgressObserver> = Arc::new(metrics.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let allow = format!("127.0.0.1:{}", echo.port());
    let task = tokio::spawn(par_egress::serve(
        listener,
        Arc::from("kit"),
        policy(&allow, None, &[], EgressConfig::default()),
        observer,
    ));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("CONNECT {allow} HTTP/1.1\r\n\r\nping");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 43];
    stream.read_exact(&mut buf).await.unwrap();
    assert!(
        buf.ends_with(b"\r\n\r\nping"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    drop(stream);
    let refused = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut refused = refused;
    refused
        .write_all(b"CONNECT 10.0.0.1:80 HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut refused).await;
    assert_eq!(status(&answer), 403);
    let text = crate::harness::poll(|| {
        let text = metrics.encode();
        let ended = text.contains(r#"par_egress_connections_total{package="kit",outcome="ok"} 1"#)
            && text.contains(r#"par_egress_connections_total{package="kit",outcome="refused"} 1"#);
        ended.then_some(text)
    })
    .await;
    for line in [
        r#"par_egress_bytes_total{package="kit",direction="up"} 4"#,
        r#"par_egress_bytes_total{package="kit",direction="down"} 4"#,
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    task.abort();
}
