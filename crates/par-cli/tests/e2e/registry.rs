//! Packages from HTTP, S3 and a registry index, through the binary.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{fixture, workspace_root, TestRuntime};

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A static file server on loopback (also the fleet test's registry) whose files can change while it runs.
pub(crate) struct Registry {
    pub(crate) base: String,
    files: Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Registry {
    pub(crate) async fn start() -> Registry {
        let files: Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>> = Arc::default();
        let served = files.clone();
        let app = axum::Router::new().route(
            "/{name}",
            axum::routing::get(
                move |axum::extract::Path(name): axum::extract::Path<String>| {
                    let served = served.clone();
                    async move {
                        match served.lock().unwrap().get(&name) {
                            Some(bytes) => (axum::http::StatusCode::OK, bytes.clone()),
                            None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
                        }
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Registry {
            base,
            files,
            server,
        }
    }

    pub(crate) fn put(&self, name: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(name.to_string(), bytes);
    }

    pub(crate) fn put_fixture(&self, name: &str) -> String {
        let path = fixture(name);
        self.put(&format!("{name}.apkg"), std::fs::read(&path).unwrap());
        sha256(&path)
    }

    pub(crate) fn index(&self, entries: &[(&str, &str, &str)]) {
        let packages: Vec<Value> = entries
            .iter()
            .map(|(name, version, file)| {
                json!({"name": name, "version": version, "url": format!("{file}.apkg"), "sha256": sha256(&fixture(file))})
            })
            .collect();
        self.put(
            "index.json",
            json!({"version": 1, "packages": packages})
                .to_string()
                .into_bytes(),
        );
    }
}

async fn wait_for(rt: &TestRuntime, what: &str, check: impl Fn(u16, &Value) -> bool, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = rt.invoke(id, json!({})).await;
        if check(status, &body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last answer {status} {body}\n{}",
            rt.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn http_source_with_digest_and_a_wrong_digest() {
    let registry = Registry::start().await;
    let digest = registry.put_fixture("kit-minimal");
    let good = format!("{}/kit-minimal.apkg#sha256={digest}", registry.base);
    let rt = TestRuntime::builder().source(&good).start().await;
    assert_eq!(rt.invoke("kit-minimal", json!({})).await.0, 200);
    drop(rt);
    let bad = format!(
        "{}/kit-minimal.apkg#sha256={}",
        registry.base,
        "1".repeat(64)
    );
    let cache = tempfile::tempdir().unwrap();
    let rt = TestRuntime::builder()
        .cache(cache.path())
        .source(&bad)
        .start()
        .await;
    let (_, body) = rt.get("/runtime/packages").await;
    let report = &body["packages"][0];
    assert_eq!(report["failed_phase"], "verify", "{body}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains(&digest) && error.contains(&"1".repeat(64)),
        "{error}"
    );
}

#[tokio::test]
async fn registry_index_converges_and_survives_an_outage() {
    let registry = Registry::start().await;
    registry.put_fixture("kit-minimal");
    registry.put_fixture("kit-minimal-v2");
    registry.put_fixture("twin-a");
    registry.index(&[
        ("kit-minimal", "1.0.0", "kit-minimal"),
        ("twin-a", "1.0.0", "twin-a"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let index = format!("{}/index.json", registry.base);
    let rt = TestRuntime::builder()
        .cache(cache.path())
        .args(&["--registry-index", &index, "--poll-interval", "0.3"])
        .start()
        .await;
    assert_eq!(rt.invoke("twin-a", json!({})).await.0, 200);
    let (_, v1) = rt.invoke("kit-minimal", json!({})).await;
    assert!(v1["data"]["echo"].is_object(), "{v1}");

    // A new version replaces the old one.
    registry.index(&[
        ("kit-minimal", "2.0.0", "kit-minimal-v2"),
        ("twin-a", "1.0.0", "twin-a"),
    ]);
    wait_for(
        &rt,
        "v2 active",
        |s, b| s == 200 && b["data"]["version"] == 2,
        "kit-minimal",
    )
    .await;

    // A malformed index changes nothing.
    registry.put(
        "index.json",
        b"{\"version\": 1, \"packages\": [{\"name\": 5}]}".to_vec(),
    );
    rt.wait_log(&["registry poll failed"], Duration::from_secs(10))
        .await;
    assert_eq!(rt.invoke("twin-a", json!({})).await.0, 200);

    // A removed entry is unloaded.
    registry.index(&[("kit-minimal", "2.0.0", "kit-minimal-v2")]);
    wait_for(&rt, "twin-a unloaded", |s, _| s == 404, "twin-a").await;
    drop(rt);

    // Registry down at startup: the last good index and the cache still serve.
    drop(registry);
    crate::harness::wait_until(
        "the registry is still up",
        Duration::from_secs(5),
        || async { reqwest::get(&index).await.is_err().then_some(()) },
    )
    .await;
    let rt = TestRuntime::builder()
        .cache(cache.path())
        .args(&["--registry-index", &index, "--poll-interval", "60"])
        .start()
        .await;
    let (status, body) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 200, "{body}\n{}", rt.logs());
    assert_eq!(body["data"]["version"], 2);
}

fn s3s_fs() -> PathBuf {
    std::env::var_os("PAR_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".par-tools/bin/s3s-fs"))
}

#[tokio::test]
async fn s3_source_with_real_sigv4_and_a_wrong_secret() {
    let binary = s3s_fs();
    assert!(
        binary.is_file(),
        "s3s-fs missing at {}: run scripts/install-s3-server.sh",
        binary.display()
    );
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("agents")).unwrap();
    std::fs::copy(
        fixture("kit-minimal"),
        data.path().join("agents/kit-minimal.apkg"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(&binary)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            "PARTESTKEY",
            "--secret-key",
            "par-test-secret-key",
        ])
        .arg(data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    let start = |secret: &str| {
        TestRuntime::builder()
            .cache(&tempfile::tempdir().unwrap().keep())
            .source("s3://agents/kit-minimal.apkg")
            .env("AWS_ACCESS_KEY_ID", "PARTESTKEY")
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &endpoint)
    };
    let rt = start("par-test-secret-key").start().await;
    let (status, body) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 200, "{body}\n{}", rt.logs());
    drop(rt);
    let rt = start("wrong-secret").start().await;
    let (_, body) = rt.get("/runtime/packages").await;
    let report = &body["packages"][0];
    assert_eq!(report["state"], "failed", "{body}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("agents") && !error.contains("wrong-secret"),
        "{error}"
    );
    assert!(
        !rt.logs().contains("wrong-secret"),
        "the secret reached the log"
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// A test CA, and a TLS front for `upstream` presenting a certificate for 127.0.0.1.
async fn tls_front(dir: &Path, upstream: std::net::SocketAddr) -> (std::net::SocketAddr, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut client) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (addr, ca_pem)
}

#[tokio::test]
async fn https_source_with_a_custom_ca_and_an_unknown_one() {
    let registry = Registry::start().await;
    let digest = registry.put_fixture("kit-minimal");
    let upstream: std::net::SocketAddr =
        registry.base.trim_start_matches("http://").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (addr, ca) = tls_front(dir.path(), upstream).await;
    let source = format!("https://{addr}/kit-minimal.apkg#sha256={digest}");
    let rt = TestRuntime::builder()
        .cache(&tempfile::tempdir().unwrap().keep())
        .source(&source)
        .args(&["--ca-bundle", ca.to_str().unwrap()])
        .start()
        .await;
    let (status, body) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 200, "{body}\n{}", rt.logs());
    drop(rt);
    let rt = TestRuntime::builder()
        .cache(&tempfile::tempdir().unwrap().keep())
        .source(&source)
        .start()
        .await;
    let (_, body) = rt.get("/runtime/packages").await;
    let report = &body["packages"][0];
    assert_eq!(report["state"], "failed", "{body}");
    assert!(
        report["error"].as_str().unwrap().contains("TLS"),
        "{report}"
    );
}

/// Runs gpg in a private home; keys are made once per test.
fn gpg(home: &Path, args: &[&str]) {
    let out = std::process::Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args([
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn openpgp_signatures_required_verified_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("gnupg");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    gpg(
        &home,
        &[
            "--quick-gen-key",
            "PAR Test <par@example.org>",
            "ed25519",
            "sign",
            "never",
        ],
    );
    let public = dir.path().join("publisher.asc");
    gpg(
        &home,
        &[
            "--armor",
            "--output",
            public.to_str().unwrap(),
            "--export",
            "par@example.org",
        ],
    );
    let packages = dir.path().join("packages");
    std::fs::create_dir(&packages).unwrap();
    let signed = packages.join("kit-minimal.apkg");
    std::fs::copy(fixture("kit-minimal"), &signed).unwrap();
    gpg(
        &home,
        &[
            "--detach-sign",
            "--output",
            &format!("{}.sig", signed.display()),
            signed.to_str().unwrap(),
        ],
    );
    std::fs::copy(fixture("twin-a"), packages.join("twin-a.apkg")).unwrap();

    let verify = |file: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_par"))
            .args([
                "verify",
                file.to_str().unwrap(),
                "--signature",
                &format!("{}.sig", signed.display()),
                "--key",
                public.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    assert!(verify(&signed).status.success());
    let tampered = dir.path().join("tampered.apkg");
    let mut bytes = std::fs::read(&signed).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&tampered, bytes).unwrap();
    let out = verify(&tampered);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signature"),
        "{out:?}"
    );

    let rt = TestRuntime::builder()
        .cache(&tempfile::tempdir().unwrap().keep())
        .source(&packages)
        .args(&[
            "--signature-policy",
            "required",
            "--trusted-keys",
            public.to_str().unwrap(),
        ])
        .start()
        .await;
    assert_eq!(
        rt.invoke("kit-minimal", json!({})).await.0,
        200,
        "{}",
        rt.logs()
    );
    let unsigned = rt.package_report("twin-a.apkg").await;
    assert_eq!(unsigned["state"], "failed", "{unsigned}");
    assert_eq!(unsigned["failed_phase"], "verify");
    assert_eq!(rt.invoke("twin-a", json!({})).await.0, 404);
}

/// The value of one unlabelled sample in the exposition text.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn cache_metrics_count_misses_hits_bytes_and_evictions() {
    let registry = Registry::start().await;
    let first = format!(
        "{}/kit-minimal.apkg#sha256={}",
        registry.base,
        registry.put_fixture("kit-minimal")
    );
    let second = format!(
        "{}/twin-a.apkg#sha256={}",
        registry.base,
        registry.put_fixture("twin-a")
    );
    let twin_bytes = std::fs::metadata(fixture("twin-a")).unwrap().len();
    let cache = tempfile::tempdir().unwrap();
    let rt = TestRuntime::builder()
        .cache(cache.path())
        .args(&["--cache-budget-bytes", &twin_bytes.to_string()])
        .source(&first)
        .start()
        .await;
    let text = rt.metrics().await;
    assert_eq!(sample(&text, "par_cache_misses_total"), 1.0);
    let first_bytes = std::fs::metadata(fixture("kit-minimal")).unwrap().len();
    assert_eq!(sample(&text, "par_cache_bytes"), first_bytes as f64);
    assert_eq!(
        sample(&text, "par_cache_evictions_total"),
        0.0,
        "a mounted package is never evicted"
    );

    // Unloaded, kit-minimal's blob is no longer pinned: the next download evicts it.
    assert_eq!(rt.unload("kit-minimal").await, 202);
    crate::harness::wait_until("kit-minimal unloaded", Duration::from_secs(30), || async {
        let (_, body) = rt.get("/runtime/packages").await;
        // An unloaded package's report goes once its last worker has stopped.
        let packages = body["packages"].as_array().unwrap();
        let gone = packages.iter().all(|p| p["name"] != "kit-minimal");
        gone.then_some(())
    })
    .await;
    let (status, accepted) = rt
        .post_raw("/runtime/packages", json!({"source": second}).to_string())
        .await;
    assert_eq!(status, 202, "{accepted}");
    wait_for(&rt, "twin-a mounted", |status, _| status == 200, "twin-a").await;
    let text = rt.metrics().await;
    assert_eq!(sample(&text, "par_cache_misses_total"), 2.0, "{text}");
    assert_eq!(sample(&text, "par_cache_evictions_total"), 1.0, "{text}");
    assert_eq!(
        sample(&text, "par_cache_bytes"),
        twin_bytes as f64,
        "{text}"
    );

    // Loading the same source again is a hit and changes nothing else.
    let (status, _) = rt
        .post_raw(
            "/runtime/packages",
            json!({"source": second, "force": true}).to_string(),
        )
        .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sample(&rt.metrics().await, "par_cache_hits_total") < 1.0 {
        assert!(Instant::now() < deadline, "no cache hit counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
