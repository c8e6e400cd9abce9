//! What a hostile tester found, each closed and kept closed: package surfaces without
//! auth, cross-site requests driving the management API, credentials leaking to package
//! apps, private or guarded sub-agents reached through their main agent, and a result
//! over the frame limit disabling a package.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::auth::sha256_hex;
use crate::harness::{fixture, TestRuntime};

const POLICY: &str = r#"
[[grant]]
role = "analyst"
invoke = ["kit-minimal", "mini-*"]

[[grant]]
role = "rest-user"
invoke = ["kit-rest"]

[[grant]]
role = "ops"
invoke = ["kit-minimal", "mini-*"]
admin = true
"#;

/// Keys and the roles they carry.
const KEYS: [(&str, &str, &str); 3] = [
    ("analyst", "analyst-key-1", "analyst"),
    ("rest", "rest-key-1", "rest-user"),
    ("ops", "ops-key-1", "ops"),
];

async fn with_api_keys(extra: &[&str]) -> (TestRuntime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let keys = dir.path().join("keys.toml");
    let entries: String = KEYS
        .iter()
        .map(|(name, key, role)| {
            format!(
                "[[key]]\nname = \"{name}\"\nsha256 = \"{}\"\nroles = [\"{role}\"]\n\n",
                sha256_hex(key)
            )
        })
        .collect();
    std::fs::write(&keys, entries).unwrap();
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-rest")
        .fixture("init-scaffold")
        .args(&["--auth", "api-key"])
        .args(&["--policy", policy.to_str().unwrap()])
        .args(&["--api-keys", keys.to_str().unwrap()])
        .args(extra)
        .start()
        .await;
    for name in ["kit-minimal", "kit-rest", "init-scaffold"] {
        let report = rt_report(&rt, name).await;
        assert_eq!(report["state"], "ready", "{report}");
    }
    (rt, dir)
}

async fn rt_report(rt: &TestRuntime, name: &str) -> Value {
    let r = rt
        .client
        .get(rt.url("/runtime/packages"))
        .header("x-api-key", "ops-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no report for {name}: {body}"))
}

async fn send(
    rt: &TestRuntime,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = rt.client.request(method, rt.url(path));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn package_surfaces_authenticate_and_authorize_like_invoke() {
    let (rt, _dir) = with_api_keys(&["--public-ui", "init-scaffold"]).await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let cases: Vec<(reqwest::Method, &str, Option<&str>, u16)> = vec![
        (get.clone(), "/agents/kit-rest/api/hello", None, 401),
        (
            get.clone(),
            "/agents/kit-rest/api/hello",
            Some("wrong"),
            401,
        ),
        (
            get.clone(),
            "/agents/kit-rest/api/hello",
            Some("analyst-key-1"),
            403,
        ),
        (
            get.clone(),
            "/agents/kit-rest/api/hello",
            Some("rest-key-1"),
            200,
        ),
        (get.clone(), "/agents/kit-rest/ui/", None, 401),
        (
            get.clone(),
            "/agents/kit-rest/ui/",
            Some("analyst-key-1"),
            403,
        ),
        (get.clone(), "/agents/kit-rest/ui/", Some("rest-key-1"), 200),
        (post.clone(), "/agents/kit-rest", None, 401),
        (post.clone(), "/agents/kit-rest", Some("rest-key-1"), 200),
        // No probing of package names without credentials.
        (get.clone(), "/agents/no-such-package/api/x", None, 401),
        (
            get.clone(),
            "/agents/no-such-package/api/x",
            Some("rest-key-1"),
            404,
        ),
        // The operator made this UI public; its app is not.
        (get.clone(), "/agents/init-scaffold/ui/", None, 200),
        (get.clone(), "/agents/init-scaffold/api/hello", None, 401),
    ];
    for (method, path, key, want) in cases {
        let (status, body) = send(&rt, method.clone(), path, key, None).await;
        assert_eq!(status, want, "{method} {path} with {key:?}: {body}");
        match status {
            401 => assert_eq!(body["code"], "unauthorized", "{body}"),
            403 => assert_eq!(body["code"], "forbidden", "{body}"),
            _ => {}
        }
    }
    let (_, root) = send(&rt, post, "/agents/kit-rest", Some("rest-key-1"), None).await;
    assert_eq!(root, json!({"root": "post"}));
}

#[tokio::test]
async fn package_apps_get_the_callers_identity_never_its_credentials() {
    let (rt, _dir) = with_api_keys(&[]).await;
    for credential in [
        ("x-api-key", "rest-key-1"),
        ("authorization", "Bearer rest-key-1"),
    ] {
        let r = rt
            .client
            .get(rt.url("/agents/kit-rest/api/headers"))
            .header(credential.0, credential.1)
            .header("x-par-caller-subject", "api-key:ops")
            .header("x-par-caller-roles", "ops")
            .header("cookie", "par_session=stolen; theme=dark")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "with {}", credential.0);
        let body: Value = r.json().await.unwrap();
        let headers = body["headers"].as_object().unwrap();
        let seen = serde_json::to_string(headers).unwrap();
        assert!(
            !seen.contains("rest-key-1"),
            "the key reached the app: {seen}"
        );
        assert!(!headers.contains_key("authorization"), "{seen}");
        assert!(!headers.contains_key("x-api-key"), "{seen}");
        assert_eq!(headers["x-par-caller-subject"], "api-key:rest", "{seen}");
        assert_eq!(headers["x-par-caller-roles"], "rest-user", "{seen}");
        assert_eq!(headers["x-par-caller-auth"], "api-key", "{seen}");
        assert_eq!(headers["cookie"], "theme=dark", "{seen}");
    }
}

#[tokio::test]
async fn a_main_agent_call_naming_a_sub_agent_is_checked_as_that_sub_agent() {
    let (rt, _dir) = with_api_keys(&[]).await;
    let post = reqwest::Method::POST;
    let path = "/agents/kit-minimal/invoke";
    let cases = [
        (
            "analyst-key-1",
            json!({"action": "mini-secret"}),
            404,
            "agent_not_found",
        ),
        (
            "analyst-key-1",
            json!({"action": "mini-ops"}),
            403,
            "forbidden",
        ),
        (
            "ops-key-1",
            json!({"action": "mini-secret"}),
            404,
            "agent_not_found",
        ),
    ];
    for (key, body, want, code) in cases {
        let (status, answer) = send(&rt, post.clone(), path, Some(key), Some(body.clone())).await;
        assert_eq!(status, want, "{body} with {key}: {answer}");
        assert_eq!(answer["code"], code, "{answer}");
    }
    // The same sub-agents called directly answer the same.
    let (status, _) = send(
        &rt,
        post.clone(),
        "/agents/mini-ops/invoke",
        Some("analyst-key-1"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 403);
    // Allowed dispatch still works: a public sub-agent, and a guarded one with its role.
    let (status, answer) = send(
        &rt,
        post.clone(),
        path,
        Some("analyst-key-1"),
        Some(json!({"action": "mini-upper", "text": "ok"})),
    )
    .await;
    assert_eq!(
        (status, &answer["data"]["upper"]),
        (200, &json!("OK")),
        "{answer}"
    );
    let (status, answer) = send(
        &rt,
        post,
        path,
        Some("ops-key-1"),
        Some(json!({"action": "mini-ops"})),
    )
    .await;
    assert_eq!(
        (status, &answer["data"]),
        (200, &json!({"ops": true})),
        "{answer}"
    );
}

#[tokio::test]
async fn without_auth_a_private_sub_agent_stays_unreachable_through_its_main_agent() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let (status, body) = rt
        .invoke("kit-minimal", json!({"action": "mini-secret"}))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "agent_not_found");
    let (status, body) = rt
        .invoke("kit-minimal", json!({"action": "mini-upper", "text": "a"}))
        .await;
    assert_eq!(
        (status, &body["data"]["upper"]),
        (200, &json!("A")),
        "{body}"
    );
}

/// A path, the headers a page sends, and the status it must get.
type Refusal = (&'static str, Vec<(&'static str, String)>, u16);

/// A request as a web page would send it: the runtime's port, chosen headers.
async fn raw(
    rt: &TestRuntime,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut request = rt
        .client
        .request(method, rt.url(path))
        .body(body.to_string());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn web_pages_cannot_drive_a_loopback_runtime_without_auth() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let post = reqwest::Method::POST;
    let port = rt.addr().rsplit(':').next().unwrap().to_string();
    let source = json!({"source": fixture("kit-async").display().to_string()}).to_string();
    let refused: Vec<Refusal> = vec![
        (
            "/runtime/packages",
            vec![("content-type", "text/plain".into())],
            415,
        ),
        (
            "/runtime/packages",
            vec![("content-type", "application/x-www-form-urlencoded".into())],
            415,
        ),
        (
            "/runtime/packages",
            vec![
                ("content-type", "application/json".into()),
                ("origin", "http://evil.example".into()),
            ],
            403,
        ),
        (
            "/runtime/packages",
            vec![
                ("content-type", "application/json".into()),
                ("host", format!("evil.example:{port}")),
            ],
            403,
        ),
        (
            "/runtime/packages",
            vec![
                ("content-type", "application/json".into()),
                ("sec-fetch-site", "cross-site".into()),
            ],
            403,
        ),
        (
            "/runtime/shutdown",
            vec![("origin", "http://evil.example".into())],
            403,
        ),
        (
            "/runtime/shutdown",
            vec![("host", format!("rebound.example:{port}"))],
            403,
        ),
        ("/runtime/shutdown", vec![("origin", "null".into())], 403),
        (
            "/agents/kit-minimal/invoke",
            vec![
                ("content-type", "text/plain".into()),
                ("origin", "http://evil.example".into()),
            ],
            403,
        ),
    ];
    for (path, headers, want) in &refused {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = raw(&rt, post.clone(), path, &pairs, &source).await;
        assert_eq!(status, *want, "{path} {headers:?}: {body}");
        assert!(
            body["request_id"].as_str().is_some_and(|r| !r.is_empty()),
            "{body}"
        );
    }
    // A multipart upload needs the custom header a page cannot send without a preflight.
    let apkg = std::fs::read(fixture("kit-async")).unwrap();
    let form = || {
        let part = reqwest::multipart::Part::bytes(apkg.clone()).file_name("kit-async.apkg");
        reqwest::multipart::Form::new().part("file", part)
    };
    let r = rt
        .client
        .post(rt.url("/runtime/packages"))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // Nothing was loaded and the runtime still runs: its reports name kit-minimal only.
    let (status, packages) = rt.get("/runtime/packages").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = packages["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["kit-minimal"], "{packages}");
    let (status, _) = rt.get("/runtime/loads/1").await;
    assert_eq!(status, 404, "no load was ever submitted");
    // The same requests from a plain client, or a same-origin page, are accepted.
    let own_origin = format!("http://{}", rt.addr());
    let (status, body) = raw(
        &rt,
        post.clone(),
        "/agents/kit-minimal/invoke",
        &[("origin", &own_origin), ("sec-fetch-site", "same-origin")],
        "{}",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw(
        &rt,
        reqwest::Method::GET,
        "/agents",
        &[("host", &format!("localhost:{port}"))],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = rt
        .client
        .post(rt.url("/runtime/packages"))
        .header("x-par-upload", "1")
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "a marked multipart upload is accepted");
    // Probes answer whatever the name.
    let (status, _) = raw(
        &rt,
        reqwest::Method::GET,
        "/runtime/health",
        &[("host", "anything.example")],
        "",
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn configured_host_names_are_accepted() {
    let rt = TestRuntime::builder()
        .args(&["--allowed-hosts", "par.internal,*.svc.example"])
        .start()
        .await;
    for (host, want) in [
        ("par.internal", 200),
        ("a.svc.example", 200),
        ("svc.example", 403),
        ("other.example", 403),
    ] {
        let (status, body) = raw(&rt, reqwest::Method::GET, "/agents", &[("host", host)], "").await;
        assert_eq!(status, want, "{host}: {body}");
    }
}

async fn worker_pids(rt: &TestRuntime) -> Vec<u64> {
    let report = rt.package_report("kit-minimal.apkg").await;
    report["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect()
}

#[tokio::test]
async fn a_result_over_the_frame_limit_fails_that_call_only() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--max-frame-bytes", "1048576", "--max-body-bytes", "65536"])
        // Compares the pid the handler sees (os.getpid()) with the runtime's report; in a
        // jail the two differ (its own PID namespace), so run it unconfined.
        .args(&["--sandbox", "off"])
        .start()
        .await;
    let before = worker_pids(&rt).await;
    assert_eq!(before.len(), 1);
    // The worker notices itself and says so; it keeps serving.
    let (status, body) = rt.invoke("kit-minimal", json!({"big_mb": 2})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "result_too_large", "{body}");
    let (status, body) = rt.invoke("kit-minimal", json!({"n": 1})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(worker_pids(&rt).await, before);
    // A worker that ignores the limit is refused by the runtime and replaced.
    let (status, body) = rt
        .invoke("kit-minimal", json!({"unchecked_big_mb": 2}))
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "result_too_large", "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = rt.invoke("kit-minimal", json!({"n": 2})).await;
        let now = worker_pids(&rt).await;
        if status == 200 && now.len() == 1 && now != before {
            assert_eq!(body["data"]["pid"].as_u64(), Some(now[0]), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no replacement worker: {status} {body} {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !process_exists(before[0]),
        "the worker that broke the limit still runs"
    );
}

fn process_exists(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn a_body_limit_no_frame_can_carry_is_refused_at_startup() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_par"))
        .args([
            "serve",
            "--max-frame-bytes",
            "1048576",
            "--max-body-bytes",
            "2000000",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--max-body-bytes"), "{stderr}");
    assert!(stderr.contains("--max-frame-bytes"), "{stderr}");
}

/// Every error, whoever produced it, has the contract's body with the request id.
async fn assert_contract_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status);
    let rid = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["request_id"], rid.as_str(), "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn one_error_body_everywhere_and_the_apps_root_with_a_slash() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-rest")
        .start()
        .await;
    let c = &rt.client;
    // A method the route does not have (axum answers these itself).
    let r = c.delete(rt.url("/agents")).send().await.unwrap();
    assert_contract_error(r, 405, "method_not_allowed").await;
    // An id that is not UTF-8 once decoded.
    let r = c
        .post(rt.url("/agents/%FF%FE/invoke"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_contract_error(r, 400, "bad_request").await;
    // The UI's own errors carry the runtime's request id.
    let r = c
        .get(rt.url("/agents/kit-rest/ui/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_contract_error(r, 404, "not_found").await;
    let r = c.post(rt.url("/agents/kit-rest/ui/")).send().await.unwrap();
    assert_contract_error(r, 405, "method_not_allowed").await;
    // A query that does not parse.
    let r = c
        .get(rt.url("/runtime/usage?limit=many"))
        .send()
        .await
        .unwrap();
    assert_contract_error(r, 400, "bad_request").await;
    // Encoded dot segments and separators never reach the app.
    for path in [
        "/agents/kit-rest/api/%2e%2e/hello",
        "/agents/kit-rest/api%2fhello",
    ] {
        let head = raw_get(rt.addr(), path).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{path}: {head}");
        assert!(head.contains("\"code\":\"bad_request\""), "{path}: {head}");
    }
    // The app's own 404 is the app's and stays untouched.
    let r = c
        .get(rt.url("/agents/kit-rest/api/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
    // `POST /agents/{package}/` reaches the app's `POST /` like the form without a slash.
    for path in ["/agents/kit-rest", "/agents/kit-rest/"] {
        let r = c.post(rt.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"root": "post"}),
            "{path}"
        );
    }
}

#[tokio::test]
async fn json_python_cannot_read_is_the_callers_error_not_the_agents() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(1000), "]".repeat(1000));
    let long = format!("{{\"n\":{}}}", "7".repeat(100_000));
    for body in [deep, long] {
        let (status, answer) = rt.post_raw("/agents/kit-minimal/invoke", body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["code"], "bad_request", "{answer}");
    }
    let (status, _) = rt.invoke("kit-minimal", json!({"n": 1})).await;
    assert_eq!(status, 200, "the worker never saw them and still serves");
}

#[tokio::test]
async fn probed_private_ids_never_reach_the_metrics() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    for _ in 0..3 {
        let (status, _) = rt.invoke("mini-secret", json!({})).await;
        assert_eq!(status, 404);
    }
    let (status, _) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 200);
    let text = rt.metrics().await;
    assert!(
        text.contains("par_invocations_total{agent=\"unknown\""),
        "probes are counted, as unknown: {text}"
    );
    assert!(text.contains("agent=\"kit-minimal\""), "{text}");
    assert!(!text.contains("mini-secret"), "a private id leaked: {text}");
}

/// Socket folders of the runtime with this pid in the system temp dir.
fn socket_folders(pid: u32) -> Vec<std::path::PathBuf> {
    let prefixes = [format!("par-w{pid}-"), format!("par-s{pid}-")];
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            prefixes
                .iter()
                .any(|prefix| name.starts_with(prefix.as_str()))
        })
        .collect()
}

#[tokio::test]
async fn socket_folders_are_private_and_a_killed_runtimes_are_swept_at_the_next_start() {
    use std::os::unix::fs::PermissionsExt;
    let mut first = TestRuntime::builder().fixture("kit-minimal").start().await;
    let pid = first.pid();
    let left = socket_folders(pid);
    assert!(!left.is_empty(), "the worker's socket folder exists");
    for dir in &left {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", dir.display());
    }
    first.kill();
    assert!(
        left.iter().all(|d| d.exists()),
        "SIGKILL leaves them behind"
    );
    let _second = TestRuntime::builder().fixture("kit-minimal").start().await;
    assert!(socket_folders(pid).is_empty(), "swept at the next start");
}

/// A GET sent byte for byte as given; the whole response as text.
async fn raw_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).to_string()
}

/// `Max open files` soft and hard limits of a process.
fn open_files_limits(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line.split_whitespace().skip(3);
    Some((fields.next()?.to_string(), fields.next()?.to_string()))
}

#[test]
fn serve_raises_its_open_files_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "ulimit -Sn 256 && exec {} serve --listen 127.0.0.1:0 --cache-dir {}",
        env!("CARGO_BIN_EXE_par"),
        dir.path().display()
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let raised = loop {
        // Only once `sh` has become `par` (and `par` had a moment to start).
        let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).ok();
        let is_par = exe.is_some_and(|e| e.ends_with("par"));
        match open_files_limits(child.id()).filter(|_| is_par) {
            Some((soft, hard)) if soft == hard => break (soft, hard),
            seen => assert!(Instant::now() < deadline, "soft limit not raised: {seen:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_ne!(raised.0, "256", "{raised:?}");
}

/// The routes added with runs, A2A, MCP and OpenAPI authenticate like every other route
/// but the probes: 401 without credentials. A granted key reaches each (not 401), so the
/// refusal is the authentication, not a missing route.
#[tokio::test]
async fn runs_protocols_and_the_api_document_need_credentials() {
    let (rt, _dir) = with_api_keys(&[]).await;
    let rpc = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let routes: [(reqwest::Method, &str, Option<Value>); 10] = [
        (reqwest::Method::GET, "/openapi.json", None),
        (
            reqwest::Method::POST,
            "/agents/kit-minimal/runs",
            Some(json!({})),
        ),
        (reqwest::Method::GET, "/runs", None),
        (reqwest::Method::GET, "/runs/some-run", None),
        (reqwest::Method::GET, "/runs/some-run/events", None),
        (
            reqwest::Method::POST,
            "/runs/some-run/cancel",
            Some(json!({})),
        ),
        (reqwest::Method::POST, "/mcp", Some(rpc.clone())),
        (reqwest::Method::POST, "/mcp/kit-minimal", Some(rpc.clone())),
        (reqwest::Method::POST, "/a2a/kit-minimal", Some(rpc)),
        (
            reqwest::Method::GET,
            "/a2a/kit-minimal/.well-known/agent-card.json",
            None,
        ),
    ];
    for (method, path, body) in routes {
        let (status, answer) = send(&rt, method.clone(), path, None, body.clone()).await;
        assert_eq!(status, 401, "{method} {path} without credentials: {answer}");
        assert_eq!(answer["code"], "unauthorized", "{method} {path}: {answer}");
        let (status, answer) = send(&rt, method.clone(), path, Some("ops-key-1"), body).await;
        assert_ne!(status, 401, "{method} {path} with a key: {answer}");
    }
}
