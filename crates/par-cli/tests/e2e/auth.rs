//! Auth through the public surface, with real tokens from a real OpenID provider.

use serde_json::Value;

use crate::harness::TestRuntime;
use crate::oidc::{provider, AUDIENCE};

const POLICY: &str = r#"
[[grant]]
role = "analyst"
invoke = ["kit-minimal", "mini-*", "twin-b"]

[[grant]]
role = "ops"
admin = true
"#;

async fn secured(extra: &[&str]) -> (TestRuntime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let keys = dir.path().join("keys.toml");
    // sha256("svc-key-123")
    let digest = sha256_hex("svc-key-123");
    std::fs::write(
        &keys,
        format!("[[key]]\nname = \"svc\"\nsha256 = \"{digest}\"\nroles = [\"analyst\"]\n"),
    )
    .unwrap();
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("twin-b")
        .args(&[
            "--auth",
            "oidc,api-key",
            "--oidc-issuer",
            &provider().issuer,
            "--oidc-audience",
            AUDIENCE,
        ])
        .args(&[
            "--policy",
            policy.to_str().unwrap(),
            "--api-keys",
            keys.to_str().unwrap(),
            "--tenant-claim",
            "tenant",
        ])
        .args(extra)
        .start()
        .await;
    (rt, dir)
}

pub(crate) fn sha256_hex(text: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

async fn call(
    rt: &TestRuntime,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut request = rt.client.request(method, rt.url(path)).body("{}");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_rbac_matrix_with_real_tokens() {
    let (rt, _dir) = secured(&[]).await;
    let analyst = provider().token("par-test").await;
    let ops = provider().token("par-ops").await;
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    let cases: Vec<(reqwest::Method, &str, Option<&str>, u16)> = vec![
        (post.clone(), "/agents/kit-minimal/invoke", None, 401),
        (
            post.clone(),
            "/agents/kit-minimal/invoke",
            Some("not-a-token"),
            401,
        ),
        (
            post.clone(),
            "/agents/kit-minimal/invoke",
            Some(&analyst),
            200,
        ),
        (
            post.clone(),
            "/agents/mini-upper/invoke",
            Some(&analyst),
            200,
        ),
        (post.clone(), "/agents/kit-minimal/invoke", Some(&ops), 403),
        (
            post.clone(),
            "/agents/mini-secret/invoke",
            Some(&analyst),
            404,
        ),
        (post.clone(), "/agents/nobody/invoke", Some(&analyst), 404),
        (post.clone(), "/agents/twin-b/invoke", Some(&analyst), 403),
        (get.clone(), "/agents", None, 401),
        (get.clone(), "/agents", Some(&analyst), 200),
        (get.clone(), "/runtime/packages", Some(&analyst), 403),
        (get.clone(), "/runtime/packages", Some(&ops), 200),
        (get.clone(), "/runtime/packages", None, 401),
        (post.clone(), "/runtime/reload", Some(&analyst), 403),
        (get.clone(), "/runtime/health", None, 200),
        (get.clone(), "/runtime/ready", None, 200),
        (get.clone(), "/runtime/nothing-here", Some(&ops), 404),
    ];
    for (method, path, token, want) in cases {
        let who = token
            .map(|t| {
                if t == analyst {
                    "analyst"
                } else if t == ops {
                    "ops"
                } else {
                    "junk"
                }
            })
            .unwrap_or("none");
        let (status, body) = call(&rt, method.clone(), path, token).await;
        assert_eq!(status, want, "{method} {path} as {who}: {body}");
        if status == 401 {
            assert_eq!(body["code"], "unauthorized");
            assert_eq!(
                body["error"], "missing or invalid credentials",
                "no reason in the body"
            );
        }
        if status == 403 {
            assert_eq!(body["code"], "forbidden");
        }
    }
    let metrics = rt.client.get(rt.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200, "/metrics needs no credentials");
    let text = metrics.text().await.unwrap();
    assert!(text.contains("par_auth_rejections_total{reason="), "{text}");
    assert!(rt.logs().contains("request denied"));
}

#[tokio::test]
async fn role_required_reads_the_configured_roles_claim() {
    // par-test has "reader" only in realm_access.roles, which twin-b requires.
    let (rt, _dir) = secured(&["--roles-claim", "realm_access.roles"]).await;
    let analyst = provider().token("par-test").await;
    let (status, body) = call(
        &rt,
        reqwest::Method::POST,
        "/agents/twin-b/invoke",
        Some(&analyst),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn api_keys_and_caller_identity_in_usage() {
    let (rt, _dir) = secured(&[]).await;
    let r = rt
        .client
        .post(rt.url("/agents/kit-minimal/invoke"))
        .header("x-api-key", "svc-key-123")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let wrong = rt
        .client
        .post(rt.url("/agents/kit-minimal/invoke"))
        .header("x-api-key", "svc-key-124")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let analyst = provider().token("par-test").await;
    let (status, _) = call(
        &rt,
        reqwest::Method::POST,
        "/agents/kit-minimal/invoke",
        Some(&analyst),
    )
    .await;
    assert_eq!(status, 200);
    let ops = provider().token("par-ops").await;
    let (_, usage) = call(
        &rt,
        reqwest::Method::GET,
        "/runtime/usage?agent=kit-minimal",
        Some(&ops),
    )
    .await;
    let records = usage["records"].as_array().unwrap();
    let by_key = records
        .iter()
        .find(|r| r["caller_subject"] == "api-key:svc")
        .expect("api key caller recorded");
    assert_eq!(by_key["outcome"], "ok");
    let by_token = records
        .iter()
        .find(|r| r["caller_client_id"] == "par-test")
        .expect("oidc caller recorded");
    assert_eq!(by_token["tenant"], "acme");
    assert_eq!(by_token["outcome"], "ok");
    assert!(!rt.logs().contains(&analyst), "a token reached the log");
    assert!(
        !rt.logs().contains("svc-key-123"),
        "an API key reached the log"
    );
}

/// `par serve` with these arguments and no auth settings from the environment: its exit
/// code and standard error.
fn refused_serve(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_par"))
        .arg("serve")
        .args(args)
        .env_remove("PAR_AUTH")
        .env_remove("PAR_OIDC_ISSUER")
        .env_remove("PAR_OIDC_AUDIENCE")
        .env_remove("PAR_API_KEYS")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn non_loopback_without_auth_refuses_to_start() {
    let (code, err) = refused_serve(&["--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("0.0.0.0:0 (not loopback) needs auth configured"),
        "{err}"
    );
    assert!(
        !err.contains("PAR_OIDC_ISSUER"),
        "no auth mode was asked for: {err}"
    );
}

#[test]
fn oidc_without_issuer_and_audience_refuses_to_start() {
    let (code, err) = refused_serve(&["--listen", "0.0.0.0:0", "--auth", "oidc"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("PAR_OIDC_ISSUER") && err.contains("PAR_OIDC_AUDIENCE"),
        "{err}"
    );
}
