//! The limits: connections per package, head size, head time, idle tunnels; and a
//! stopped proxy ending its connections.

use std::time::Duration;

use par_egress::Outcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{policy, poll, quick, read_all, status, Proxy, Upstream, DEADLINE};

#[tokio::test]
async fn connections_past_the_package_limit_get_503_until_one_ends() {
    let echo = Upstream::echo().await;
    let target = format!("127.0.0.1:{}", echo.port());
    let config = quick(|c| c.max_connections = 2);
    let proxy = Proxy::start("pkg", policy(&target, None, &[], config)).await;
    let (_first, ok) = proxy.tunnel(&target).await;
    assert_eq!(status(&ok), 200);
    // Holds a slot while it sends nothing.
    let mut second = proxy.connect().await;
    let (_, over) = proxy.tunnel(&target).await;
    assert_eq!(status(&over), 503, "{over}");
    assert!(over.contains("too many connections"), "{over}");
    assert_eq!(proxy.recorder.wait_for(1).await, [Outcome::Overloaded]);

    second.shutdown().await.unwrap();
    drop(second);
    // The slot comes back once the proxy has seen the close.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_stream, answer) = proxy.tunnel(&target).await;
        if status(&answer) == 200 {
            break;
        }
        assert_eq!(status(&answer), 503);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn oversized_request_heads_get_431() {
    let config = quick(|c| c.max_header_bytes = 1024);
    let proxy = Proxy::start("pkg", policy("", None, &[], config)).await;
    let request = format!(
        "GET http://example.com/ HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(2000)
    );
    let answer = proxy.exchange(request.as_bytes()).await;
    assert_eq!(status(&answer), 431, "{answer}");
    assert_eq!(proxy.recorder.wait_for(1).await, [Outcome::BadRequest]);
}

#[tokio::test]
async fn slow_request_heads_get_408() {
    let config = quick(|c| c.header_timeout = Duration::from_millis(200));
    let proxy = Proxy::start("pkg", policy("", None, &[], config)).await;
    let mut stream = proxy.connect().await;
    stream
        .write_all(b"CONNECT example.com:443 HTTP/1.1\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut stream).await;
    assert_eq!(status(&answer), 408, "{answer}");
}

#[tokio::test]
async fn idle_tunnels_are_closed() {
    let echo = Upstream::echo().await;
    let target = format!("127.0.0.1:{}", echo.port());
    let config = quick(|c| c.idle_timeout = Duration::from_millis(300));
    let proxy = Proxy::start("pkg", policy(&target, None, &[], config)).await;
    let (mut stream, ok) = proxy.tunnel(&target).await;
    assert_eq!(status(&ok), 200);
    stream.write_all(b"x").await.unwrap();
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await.unwrap();
    // Nothing more is sent: the proxy closes the tunnel.
    let rest = read_all(&mut stream).await;
    assert_eq!(rest, "");
    assert_eq!(proxy.recorder.wait_for(1).await, [Outcome::IdleTimeout]);
    assert_eq!(proxy.recorder.bytes("pkg", par_egress::Direction::Up), 1);
}

#[tokio::test]
async fn dropping_the_proxy_ends_its_connections() {
    let echo = Upstream::echo().await;
    let target = format!("127.0.0.1:{}", echo.port());
    let proxy = Proxy::allowing(&target).await;
    let (mut stream, ok) = proxy.tunnel(&target).await;
    assert_eq!(status(&ok), 200);
    let recorder = proxy.recorder.clone();
    drop(proxy);
    let rest = read_all(&mut stream).await;
    assert_eq!(rest, "");
    // Still recorded, once.
    assert_eq!(recorder.wait_for(1).await, [Outcome::Aborted]);
    // And the upstream side was closed too.
    poll(|| (echo.counts.get().0 == 1).then_some(())).await;
}
