//! What the proxy refuses (403), and the other answers it gives (400, 502, 504).

use std::net::SocketAddr;

use par_egress::{EgressConfig, Outcome};

use crate::harness::{closed_port, policy, quick, status, Proxy, Upstream};

/// CONNECT to `authority` is answered 403 with a reason containing `why`.
async fn refused(proxy: &Proxy, authority: &str, why: &str) {
    let (_, answer) = proxy.tunnel(authority).await;
    assert_eq!(status(&answer), 403, "{authority}: {answer}");
    assert!(answer.contains(why), "{authority}: {answer}");
    assert!(answer.contains("Connection: close"), "{answer}");
}

#[tokio::test]
async fn loopback_private_and_link_local_targets_are_refused_in_every_form() {
    let echo = Upstream::echo().await;
    let port = echo.port();
    let proxy = Proxy::allowing("").await;
    refused(
        &proxy,
        &format!("127.0.0.1:{port}"),
        "is a loopback address",
    )
    .await;
    refused(&proxy, "10.0.0.1:443", "10.0.0.1:443 is a private address").await;
    refused(&proxy, "169.254.169.254:80", "is a link-local address").await;
    refused(&proxy, &format!("[::1]:{port}"), "::1").await;
    refused(&proxy, &format!("[::ffff:127.0.0.1]:{port}"), "127.0.0.1").await;
    refused(&proxy, &format!("localhost:{port}"), "localhost").await;
    refused(&proxy, &format!("LOCALHOST.:{port}"), "resolves to").await;
    refused(&proxy, "[fd00::1]:443", "unique local").await;
    refused(&proxy, "0.0.0.0:80", "unspecified").await;
    let outcomes = proxy.recorder.wait_for(9).await;
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Refused),
        "{outcomes:?}"
    );
    assert_eq!(echo.counts.get().0, 0, "a refused target was connected to");
}

#[tokio::test]
async fn plain_forwarding_is_refused_the_same_way() {
    let proxy = Proxy::allowing("").await;
    let answer = proxy
        .exchange(b"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(status(&answer), 403, "{answer}");
    assert!(
        answer.ends_with("169.254.169.254:80 is a link-local address (see --egress-allow)\n"),
        "{answer}"
    );
}

#[tokio::test]
async fn the_allow_list_opens_exactly_what_it_names() {
    let echo = Upstream::echo().await;
    let port = echo.port();
    let proxy = Proxy::allowing(&format!("127.0.0.1:{port}")).await;
    let (_, ok) = proxy.tunnel(&format!("127.0.0.1:{port}")).await;
    assert_eq!(status(&ok), 200);
    let (_, mapped) = proxy.tunnel(&format!("[::ffff:127.0.0.1]:{port}")).await;
    assert_eq!(status(&mapped), 200);
    // The pattern names the address, not whatever name resolves to it.
    refused(&proxy, &format!("localhost:{port}"), "localhost").await;
    refused(
        &proxy,
        &format!("127.0.0.1:{}", port.wrapping_add(1).max(1)),
        "loopback",
    )
    .await;
}

#[tokio::test]
async fn the_runtime_own_address_needs_an_exact_pattern() {
    let own = Upstream::echo().await;
    let port = own.port();
    // The runtime listens on every address; a wildcard opens loopback but not the runtime.
    let all: SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
    let proxy = Proxy::start(
        "pkg",
        policy(&format!("*:{port}"), None, &[all], EgressConfig::default()),
    )
    .await;
    refused(
        &proxy,
        &format!("127.0.0.1:{port}"),
        "the runtime's own address",
    )
    .await;
    refused(
        &proxy,
        &format!("127.0.0.2:{port}"),
        "the runtime's own address",
    )
    .await;
    refused(
        &proxy,
        &format!("localhost:{port}"),
        "the runtime's own address",
    )
    .await;
    assert_eq!(own.counts.get().0, 0);
    // Listening on 127.0.0.1 exactly: refused even with a wildcard pattern ...
    let exact: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let proxy = Proxy::start(
        "pkg",
        policy(
            &format!("*:{port}"),
            None,
            &[exact],
            EgressConfig::default(),
        ),
    )
    .await;
    refused(
        &proxy,
        &format!("127.0.0.1:{port}"),
        "the runtime's own address",
    )
    .await;
    // ... and an exact pattern is the operator's explicit choice.
    let proxy = Proxy::start(
        "pkg",
        policy(
            &format!("127.0.0.1:{port}"),
            None,
            &[exact],
            EgressConfig::default(),
        ),
    )
    .await;
    let (_, ok) = proxy.tunnel(&format!("127.0.0.1:{port}")).await;
    assert_eq!(status(&ok), 200);
}

#[tokio::test]
async fn a_package_list_narrows_and_never_widens() {
    let listed = Upstream::echo().await;
    let other = Upstream::echo().await;
    let allow = format!("127.0.0.1:{},127.0.0.1:{}", listed.port(), other.port());
    let list = format!("127.0.0.1:{},10.9.9.9:80", listed.port());
    let proxy = Proxy::start(
        "pkg",
        policy(&allow, Some(&list), &[], EgressConfig::default()),
    )
    .await;
    let (_, ok) = proxy.tunnel(&format!("127.0.0.1:{}", listed.port())).await;
    assert_eq!(status(&ok), 200);
    let outside = format!("127.0.0.1:{}", other.port());
    refused(&proxy, &outside, "is not in this package's egress list").await;
    // Listed, but private and not allowed by the operator.
    refused(&proxy, "10.9.9.9:80", "private address").await;
    assert_eq!(other.counts.get().0, 0);
}

#[tokio::test]
async fn bad_requests_get_400() {
    let proxy = Proxy::allowing("").await;
    for request in [
        &b"GET /not-a-proxy-request HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET https://example.com/ HTTP/1.1\r\n\r\n",
        b"CONNECT example.com HTTP/1.1\r\n\r\n",
        b"CONNECT bad_host!:443 HTTP/1.1\r\n\r\n",
        b"GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03junk\r\n\r\n",
    ] {
        let answer = proxy.exchange(request).await;
        assert_eq!(
            status(&answer),
            400,
            "{}: {answer}",
            String::from_utf8_lossy(request)
        );
    }
    let outcomes = proxy.recorder.wait_for(6).await;
    assert!(
        outcomes.iter().all(|o| *o == Outcome::BadRequest),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn unreachable_upstreams_get_502_and_silent_ones_504() {
    let port = closed_port().await;
    let silent = Upstream::silent().await;
    let allow = format!("127.0.0.1:{port},127.0.0.1:{}", silent.port());
    let config = quick(|c| c.idle_timeout = std::time::Duration::from_millis(300));
    let proxy = Proxy::start("pkg", policy(&allow, None, &[], config)).await;
    let (_, answer) = proxy.tunnel(&format!("127.0.0.1:{port}")).await;
    assert_eq!(status(&answer), 502, "{answer}");
    assert!(answer.contains("cannot connect to 127.0.0.1"), "{answer}");
    let (_, answer) = proxy.tunnel("no-such-host.invalid:443").await;
    assert!(matches!(status(&answer), 502 | 504), "{answer}");
    assert!(answer.contains("no-such-host.invalid"), "{answer}");
    let request = format!("GET http://127.0.0.1:{}/ HTTP/1.1\r\n\r\n", silent.port());
    let answer = proxy.exchange(request.as_bytes()).await;
    assert_eq!(status(&answer), 504, "{answer}");
    assert!(answer.contains("no response in time"), "{answer}");
    let mut outcomes = proxy.recorder.wait_for(3).await;
    outcomes.sort_by_key(|o| o.as_str());
    assert!(outcomes.contains(&Outcome::Timeout), "{outcomes:?}");
    assert!(outcomes.contains(&Outcome::Unreachable), "{outcomes:?}");
}
