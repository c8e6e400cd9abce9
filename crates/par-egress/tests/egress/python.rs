//! Python's urllib and httpx through the proxy, configured by the proxy variables alone,
//! as a jailed package's code would be: plain HTTP, HTTPS through CONNECT to a TLS server
//! with a test CA, and refused targets.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use par_egress::{Direction, Outcome};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::harness::{https_upstream, Proxy, Upstream};

const PYTHON: &str = "3.11";
/// The httpx the Pixell builders use (scripts/builder-constraints.txt).
const REQUIREMENTS: [&str; 1] = ["httpx==0.28.1"];

/// A venv with httpx, built once per machine under `target/par-egress-test-venv` (a file
/// lock makes concurrent test processes build it once).
fn python() -> PathBuf {
    static PYTHON_PATH: OnceLock<PathBuf> = OnceLock::new();
    PYTHON_PATH.get_or_init(build_venv).clone()
}

fn build_venv() -> PathBuf {
    let key = format!("py{PYTHON}-{}", REQUIREMENTS.join("-")).replace(['=', '.'], "_");
    let cache = par_test_venv::workspace_root().join("target/par-egress-test-venv");
    let reqs = REQUIREMENTS.map(String::from);
    par_test_venv::venv_python(&cache, &key, PYTHON, &reqs)
}

/// A test CA (written to `dir`) and a TLS acceptor for 127.0.0.1 and localhost.
fn tls(dir: &Path) -> (TlsAcceptor, PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "PAR egress test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (TlsAcceptor::from(Arc::new(config)), ca_pem)
}

/// Runs the client script with the proxy variables pointing at `proxy`.
async fn run_clients(proxy: &Proxy, cafile: &Path, urls: serde_like::Urls) -> String {
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/egress/clients/proxy_clients.py");
    let proxy_url = format!("http://{}", proxy.addr);
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(script).arg(urls.to_json(cafile)).env_clear();
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env(var, &proxy_url);
    }
    cmd.env("PATH", "/usr/bin:/bin")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("the clients finish")
        .unwrap();
    assert!(
        output.status.success(),
        "clients failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The few JSON shapes this test needs, without a JSON dependency.
mod serde_like {
    use std::path::Path;

    pub(super) struct Urls(pub Vec<(&'static str, String)>);

    impl Urls {
        pub(super) fn to_json(&self, cafile: &Path) -> String {
            let urls: Vec<String> = self
                .0
                .iter()
                .map(|(k, v)| format!("{k:?}: {v:?}"))
                .collect();
            format!(
                "{{\"cafile\": {:?}, \"urls\": {{{}}}}}",
                cafile.display().to_string(),
                urls.join(", ")
            )
        }
    }
}

/// The JSON object the script printed for `name`, as text.
fn result<'a>(output: &'a str, name: &str) -> &'a str {
    let start = output
        .find(&format!("\"{name}\": {{"))
        .unwrap_or_else(|| panic!("{name} missing from {output}"));
    let rest = &output[start..];
    &rest[..rest.find('}').unwrap() + 1]
}

#[tokio::test]
async fn urllib_and_httpx_work_through_the_proxy_and_see_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, ca_pem) = tls(dir.path());
    let http = Upstream::http().await;
    let https = https_upstream(acceptor).await;
    let allow = format!("127.0.0.1:{},127.0.0.1:{}", http.port(), https.port());
    let proxy = Proxy::allowing(&allow).await;
    let urls = serde_like::Urls(vec![
        (
            "http",
            format!("http://127.0.0.1:{}/plain?q=1", http.port()),
        ),
        (
            "https",
            format!("https://127.0.0.1:{}/secure", https.port()),
        ),
        ("refused_http", format!("http://localhost:{}/", http.port())),
        (
            "refused_https",
            "https://169.254.169.254/latest/meta-data/".to_owned(),
        ),
    ]);
    let output = run_clients(&proxy, &ca_pem, urls).await;

    for client in ["urllib", "httpx"] {
        let plain = result(&output, &format!("{client}_http"));
        assert!(plain.contains("\"status\": 200"), "{plain}");
        assert!(
            plain.contains("upstream saw GET /plain?q=1 body=0"),
            "{plain}"
        );
        let secure = result(&output, &format!("{client}_https"));
        assert!(secure.contains("\"status\": 200"), "{secure}");
        assert!(
            secure.contains("upstream saw GET /secure body=0"),
            "{secure}"
        );
        let refused = result(&output, &format!("{client}_refused_http"));
        assert!(refused.contains("\"status\": 403"), "{refused}");
        assert!(refused.contains("resolves to"), "{refused}");
    }
    // A refused CONNECT is an exception in both clients.
    let urllib = result(&output, "urllib_refused_https");
    assert!(
        urllib.contains("\"error\": \"") && urllib.contains("403"),
        "{urllib}"
    );
    let httpx = result(&output, "httpx_refused_https");
    assert!(httpx.contains("\"error\": \"ProxyError\""), "{httpx}");

    assert_eq!(
        http.counts.get().0,
        2,
        "only the allowed requests reached the server"
    );
    assert_eq!(https.counts.get().0, 2);
    let outcomes = proxy.recorder.wait_for(8).await;
    let ok = outcomes.iter().filter(|o| **o == Outcome::Ok).count();
    let refused = outcomes.iter().filter(|o| **o == Outcome::Refused).count();
    assert_eq!((ok, refused), (4, 4), "{outcomes:?}");
    assert!(proxy.recorder.bytes("pkg", Direction::Down) > 0);
}
