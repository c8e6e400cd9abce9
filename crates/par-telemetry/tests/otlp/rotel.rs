//! The exporter against a real, independent OTLP receiver.
//!
//! The official OpenTelemetry Collector (Go) is in none of the registries this project's
//! machines reach (crates.io, PyPI, npm, Debian). rotel is: an OpenTelemetry collector
//! whose PyPI wheel carries its binary (`scripts/install-otlp-receiver.sh` puts it in
//! `$PAR_TOOLS/bin/rotel-agent`; `PAR_ROTEL` names another). rotel receives our request
//! over OTLP/HTTP, so its own decoder must accept our protobuf and our JSON, and forwards
//! what it understood over OTLP/HTTP to the in-process receiver, where the test checks
//! that every field survived. Without the binary the test says so and passes.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::any_value::Value;

use super::receiver::Receiver;
use super::{attr, call_span, spans, start, PARENT_ID, TRACE_ID};

fn rotel_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PAR_ROTEL") {
        let path = PathBuf::from(path);
        assert!(path.exists(), "PAR_ROTEL={} does not exist", path.display());
        return Some(path);
    }
    // Where scripts/test.sh keeps tools, then the script's own default.
    let candidates = [
        std::env::var_os("PAR_TOOLS").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/par-tools")),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.par-tools")),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|tools| tools.join("bin/rotel-agent"))
        .find(|path| path.exists())
}

/// A running rotel, killed on drop.
struct Rotel {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rotel {
    /// Receives OTLP/HTTP on a free loopback port and forwards traces, unbatched, to
    /// `forward_to` over OTLP/HTTP.
    async fn start(binary: &PathBuf, forward_to: &str) -> Rotel {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(binary)
            .args(["start", "--otlp-http-endpoint", &listen])
            .args(["--otlp-grpc-endpoint", "127.0.0.1:0"])
            .args([
                "--otlp-receiver-metrics-disabled",
                "--otlp-receiver-logs-disabled",
            ])
            .args(["--exporter", "otlp", "--otlp-exporter-endpoint", forward_to])
            .args(["--otlp-exporter-protocol", "http", "--disable-batching"])
            .arg("--pid-file")
            .arg(dir.path().join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.path().join("rotel.log"))
            .stdout(Stdio::null())
            .spawn()
            .expect("start rotel");
        let rotel = Rotel {
            child,
            url: format!("http://{listen}"),
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(&listen).await.is_err() {
            assert!(Instant::now() < until, "rotel did not listen on {listen}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rotel
    }
}

#[tokio::test]
async fn a_real_collector_accepts_protobuf_and_json() {
    let binary = rotel_binary()
        .expect("no rotel-agent: run scripts/install-otlp-receiver.sh (scripts/test.sh does) or set PAR_ROTEL");
    let sink = Receiver::start(vec![]).await;
    let rotel = Rotel::start(&binary, &sink.base_url()).await;
    for (n, protocol) in [(100, "http/protobuf"), (101, "http/json")] {
        let exporter = start(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &rotel.url),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_SERVICE_NAME", "par-rotel"),
        ]);
        let mut span = call_span(n);
        span.error = Some(format!("failed over {protocol}"));
        exporter.export(span.clone());
        exporter.shutdown(Duration::from_secs(5)).await;
        assert_eq!(
            (exporter.exported(), exporter.dropped()),
            (1, 0),
            "{protocol}"
        );

        let received = sink
            .wait_for(protocol, |r| {
                spans(r)
                    .iter()
                    .any(|s| hex::encode(&s.span_id) == span.span_id)
            })
            .await;
        let request = received
            .iter()
            .find(|r| {
                spans(std::slice::from_ref(r))
                    .iter()
                    .any(|s| hex::encode(&s.span_id) == span.span_id)
            })
            .unwrap();
        let resource = request.request.resource_spans[0].resource.as_ref().unwrap();
        let service = attr(&resource.attributes, "service.name");
        assert_eq!(
            service,
            Some(Value::StringValue("par-rotel".into())),
            "{protocol}"
        );

        let forwarded = spans(std::slice::from_ref(request))
            .into_iter()
            .find(|s| hex::encode(&s.span_id) == span.span_id)
            .unwrap();
        assert_eq!(hex::encode(&forwarded.trace_id), TRACE_ID);
        assert_eq!(hex::encode(&forwarded.parent_span_id), PARENT_ID);
        assert_eq!(
            (forwarded.name.as_str(), forwarded.kind),
            ("invoke echo", 2)
        );
        assert_eq!(
            forwarded.start_time_unix_nano,
            1_700_000_000_000_000_000 + n
        );
        assert_eq!(forwarded.end_time_unix_nano, 1_700_000_000_042_000_000 + n);
        let int = attr(&forwarded.attributes, "http.response.status_code");
        assert_eq!(int, Some(Value::IntValue(200)), "{protocol}");
        let double = attr(&forwarded.attributes, "par.duration_ratio");
        assert_eq!(double, Some(Value::DoubleValue(0.25)), "{protocol}");
        let status = forwarded.status.unwrap();
        assert_eq!(
            (status.code, status.message),
            (2, format!("failed over {protocol}"))
        );
    }
}
