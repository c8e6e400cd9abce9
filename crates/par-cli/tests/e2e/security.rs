//! Secrets never reach the logs: planted values from `.env`, tokens and keys in requests,
//! and credential-shaped strings printed by agent code.

use std::time::Duration;

use serde_json::json;

use crate::harness::TestRuntime;

#[tokio::test]
async fn planted_secrets_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    // sha256 of "planted-api-key-777"
    let digest = "de207741fa1e92fd029e98ce37fe3e4414d30e72d207b6a28b26182404e0f6e4";
    std::fs::write(
        &keys,
        format!("[[key]]\nname = \"svc\"\nsha256 = \"{digest}\"\nroles = []\n"),
    )
    .unwrap();
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--auth", "api-key", "--api-keys", keys.to_str().unwrap()])
        .args(&["--redact-patterns", "corp-secret-[0-9]+"])
        .start()
        .await;
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.cGxhbnRlZC1zaWduYXR1cmU";
    let mut statuses = Vec::new();
    for (n, header) in [
        ("authorization", format!("Bearer {jwt}")),
        ("x-api-key", "planted-api-key-777".to_string()),
    ]
    .into_iter()
    .enumerate()
    {
        let request_id = format!("planted-request-{n}");
        let r = rt
            .client
            .post(rt.url("/agents/kit-minimal/invoke"))
            .header(header.0, header.1)
            .header("x-request-id", &request_id)
            .body("{}")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        // The request's own log line is written: the headers had their chance to leak.
        rt.wait_log(&[&request_id], Duration::from_secs(5)).await;
    }
    assert_eq!(
        statuses,
        [401, 403],
        "the token is refused, the key has no role"
    );
    // Auth is on and these callers are refused, so turn to a runtime without auth for
    // the agent-printed part: the same redaction applies to worker output.
    let first_logs = rt.logs();
    drop(rt);
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--redact-patterns", "corp-secret-[0-9]+"])
        .start()
        .await;
    let (status, _) = rt
        .invoke("kit-minimal", json!({"print_env": "PLANTED_SECRET"}))
        .await;
    assert_eq!(status, 200);
    let printed = format!(
        "token {jwt} Authorization: Bearer abcdefghij123 corp-secret-991 AKIAABCDEFGHIJKLMNOP"
    );
    let (status, _) = rt.invoke("kit-minimal", json!({"print": printed})).await;
    assert_eq!(status, 200);
    // Every printed line has reached the log before anything is said to be absent from it.
    let limit = Duration::from_secs(5);
    rt.wait_log(&["my secret is"], limit).await;
    rt.wait_log(&["stdout says token"], limit).await;
    rt.wait_log(&["stderr says token"], limit).await;
    let logs = format!("{first_logs}\n{}", rt.logs());
    for planted in [
        "planted-dotenv-secret-42",
        "planted-api-key-777",
        jwt,
        "abcdefghij123",
        "corp-secret-991",
        "AKIAABCDEFGHIJKLMNOP",
    ] {
        assert!(!logs.contains(planted), "{planted} reached the log");
    }
    assert!(logs.contains("my secret is [REDACTED]"), "{logs}");
}

/// A CA and a certificate for 127.0.0.1 signed by it, written as PEM files.
fn issue_cert(
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, reqwest::Certificate) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let (cert_path, key_path) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (
        cert_path,
        key_path,
        reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap(),
    )
}

fn trusting(ca: &reqwest::Certificate) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.clone())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[tokio::test]
async fn serves_https_and_reloads_a_changed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, first_ca) = issue_cert(dir.path(), "first");
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
        .spawn();
    let url = format!("https://{}/runtime/ready", rt.addr());
    let client = trusting(&first_ca);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(&url).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no https readiness:\n{}",
            rt.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let invoke = format!("https://{}/agents/kit-minimal/invoke", rt.addr());
    let r = client.post(&invoke).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        reqwest::get(format!("http://{}/runtime/health", rt.addr()))
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true),
        "plain http must not be served"
    );

    // Replace the pair on disk with one from another CA: new connections get it.
    let (new_cert, new_key, second_ca) = issue_cert(dir.path(), "second");
    std::fs::copy(&new_key, &key).unwrap();
    std::fs::copy(&new_cert, &cert).unwrap();
    let second = trusting(&second_ca);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while second.get(&url).send().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "certificate not reloaded:\n{}",
            rt.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        trusting(&first_ca).get(&url).send().await.is_err(),
        "the old certificate is still served"
    );
}
