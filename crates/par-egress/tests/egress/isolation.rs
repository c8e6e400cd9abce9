//! One package's stuck traffic never delays another's.

use std::time::Duration;

use par_egress::Outcome;
use tokio::io::AsyncWriteExt;

use crate::harness::{policy, quick, status, Proxy, Upstream};

#[tokio::test]
async fn a_stuck_package_does_not_delay_another() {
    let silent = Upstream::silent().await;
    let http = Upstream::http().await;
    let stuck_target = format!("127.0.0.1:{}", silent.port());
    let config = quick(|c| c.max_connections = 8);
    let stuck = Proxy::start("stuck", policy(&stuck_target, None, &[], config)).await;
    let busy = Proxy::allowing(&format!("127.0.0.1:{}", http.port())).await;

    // The stuck package fills its limit: tunnels to a server that never answers,
    // forwarded requests waiting for a response, and connections sending half a head.
    let mut held = Vec::new();
    for _ in 0..3 {
        let (stream, ok) = stuck.tunnel(&stuck_target).await;
        assert_eq!(status(&ok), 200);
        held.push(stream);
    }
    for _ in 0..3 {
        let mut stream = stuck.connect().await;
        let req = format!("GET http://{stuck_target}/ HTTP/1.1\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        held.push(stream);
    }
    for _ in 0..2 {
        let mut stream = stuck.connect().await;
        stream.write_all(b"CONNECT half").await.unwrap();
        held.push(stream);
    }
    let (_, over) = stuck.tunnel(&stuck_target).await;
    assert_eq!(status(&over), 503);

    // Meanwhile the other package's requests complete, each well within a second.
    for i in 0..20 {
        let started = tokio::time::Instant::now();
        let request = format!(
            "GET http://127.0.0.1:{}/call/{i} HTTP/1.1\r\n\r\n",
            http.port()
        );
        let answer = busy.exchange(request.as_bytes()).await;
        assert!(
            answer.ends_with(&format!("GET /call/{i} body=0")),
            "{answer}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "call {i} took {:?}",
            started.elapsed()
        );
    }
    let outcomes = busy.recorder.wait_for(20).await;
    assert!(outcomes.iter().all(|o| *o == Outcome::Ok));
    // The stuck package's connections are all still open and unanswered.
    assert_eq!(stuck.recorder.outcomes(), [Outcome::Overloaded]);
    drop(held);
}
