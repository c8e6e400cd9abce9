//! The web console (`/console/`): in a real headless Chromium, signed in with an admin API
//! key — agents listed, an agent invoked from the form its input schema builds, a stream
//! shown as it arrives, a durable run's events, usage and live metrics, disable/enable and
//! an unload; and over plain HTTP — the shell's security headers, data calls refused without
//! credentials or without the admin role, forged requests refused and changing nothing.
//!
//! With `PAR_CONSOLE_SCREENSHOTS=<dir>` the browser test also saves PNGs of the main views
//! there (`scripts/console-screenshots.sh` refreshes `docs/images/` that way).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::auth::sha256_hex;
use crate::browser::Browser;
use crate::harness::{fixture, workspace_root, TestRuntime};

const ADMIN_KEY: &str = "console-admin-key";
const USER_KEY: &str = "console-user-key";
const JSON: [(&str, &str); 1] = [("content-type", "application/json")];
/// Navigation and paint timings of the page, for the test's output (never asserted).
const TIMINGS: &str = "(() => { const n = performance.getEntriesByType('navigation')[0]; \
    const t = {response: n.responseEnd, dom_interactive: n.domInteractive, \
    dom_content_loaded: n.domContentLoadedEventEnd}; \
    for (const p of performance.getEntriesByType('paint')) t[p.name] = p.startTime; \
    return JSON.stringify(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(v)]))); })()";
const LIMIT: Duration = Duration::from_secs(20);

const POLICY: &str = r#"
[[grant]]
role = "ops"
admin = true
invoke = ["*"]

[[grant]]
role = "analyst"
invoke = ["*"]
"#;

/// A runtime with API keys: `ADMIN_KEY` (role ops: admin, may invoke anything) and
/// `USER_KEY` (role analyst: may invoke, no admin).
async fn secured() -> (TestRuntime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let keys = dir.path().join("keys.toml");
    let key = |name: &str, secret: &str, role: &str| {
        let digest = sha256_hex(secret);
        format!("[[key]]\nname = \"{name}\"\nsha256 = \"{digest}\"\nroles = [\"{role}\"]\n")
    };
    let text = key("ops", ADMIN_KEY, "ops") + &key("analyst", USER_KEY, "analyst");
    std::fs::write(&keys, text).unwrap();
    let examples = workspace_root().join("target/examples");
    let rt = TestRuntime::builder()
        .source(examples.join("echo.apkg"))
        .source(examples.join("countdown.apkg"))
        .source(examples.join("word-stats.apkg"))
        .source(fixture("kit-schema"))
        .args(&["--auth", "api-key"])
        .args(&["--policy", policy.to_str().unwrap()])
        .args(&["--api-keys", keys.to_str().unwrap()])
        .start()
        .await;
    (rt, dir)
}

async fn send(
    rt: &TestRuntime,
    method: Method,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Value) {
    let mut request = rt.client.request(method, rt.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn admin_agents(rt: &TestRuntime) -> Vec<Value> {
    let (status, body) = send(
        rt,
        Method::GET,
        "/runtime/agents",
        Some(ADMIN_KEY),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["agents"].as_array().unwrap().clone()
}

fn agent<'a>(agents: &'a [Value], id: &str) -> Option<&'a Value> {
    agents.iter().find(|a| a["id"] == id)
}

/// Sets an input's value as typing would (the console reads `.value` and listens to
/// `input`/`change`).
fn type_into(selector: &str, value: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({sel}); e.value = {val}; \
         e.dispatchEvent(new Event('input', {{bubbles: true}})); \
         e.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
        sel = json!(selector),
        val = json!(value)
    )
}

fn click(selector: &str) -> String {
    format!(
        "(() => {{ document.querySelector({}).click(); return true; }})()",
        json!(selector)
    )
}

struct Shots(Option<std::path::PathBuf>);

impl Shots {
    fn from_env() -> Shots {
        Shots(std::env::var_os("PAR_CONSOLE_SCREENSHOTS").map(Into::into))
    }

    async fn take(&self, browser: &mut Browser, name: &str) {
        let Some(dir) = &self.0 else { return };
        std::fs::create_dir_all(dir).unwrap();
        let png = browser.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(dir.join(format!("console-{name}.png")), png).unwrap();
    }
}

#[tokio::test]
async fn the_console_in_a_real_browser() {
    let (rt, _dir) = secured().await;
    let shots = Shots::from_env();
    let mut b = Browser::start().await;
    b.navigate(&rt.url("/console/")).await;

    // A valid key without the admin role is turned away with a reason.
    sign_in(&mut b, USER_KEY).await;
    // Reported, not asserted (no timings in tests): the first paint on loopback.
    eprintln!(
        "console timings, cold browser (ms): {}",
        b.eval(TIMINGS).await
    );
    let refused = b
        .wait_for(
            "the non-admin refusal",
            "document.querySelector('#login-error').textContent",
            LIMIT,
        )
        .await;
    assert!(
        refused.as_str().unwrap().contains("no admin role"),
        "{refused}"
    );

    // The admin key: the agents list.
    sign_in(&mut b, ADMIN_KEY).await;
    b.wait_for(
        "the agents list",
        "document.querySelector('#agents-table tr[data-agent=\"kit-schema\"]') \
         && document.querySelector('#agents-table tr[data-agent=\"countdown\"]')",
        LIMIT,
    )
    .await;
    let stored = b
        .eval("sessionStorage.getItem('par.console.credential')")
        .await;
    assert_eq!(
        stored, ADMIN_KEY,
        "the key is kept in the tab's sessionStorage"
    );
    let cookies = b.eval("document.cookie").await;
    assert_eq!(cookies, "", "the console sets no cookie");

    // Invoke from the form the input schema builds: `text` (required string), `times`.
    b.eval("location.hash = '#invoke/kit-schema'").await;
    b.wait_for(
        "the schema's fields",
        "document.querySelector('#field-text') && document.querySelector('#field-times').type === 'number' \
         && document.querySelector('#field-text').required",
        LIMIT,
    )
    .await;
    b.eval(&type_into("#field-text", "ab")).await;
    b.eval(&type_into("#field-times", "3")).await;
    b.eval(&click("#invoke-submit")).await;
    b.wait_for(
        "the invoke result",
        "document.querySelector('#invoke-status').dataset.state === 'done'",
        LIMIT,
    )
    .await;
    let output = b
        .eval("JSON.parse(document.querySelector('#invoke-output').textContent)")
        .await;
    assert_eq!(output, json!({"text": "ababab"}));
    shots.take(&mut b, "invoke").await;

    // Bad input the schema refuses comes back as the server's 422, shown on the form.
    b.eval(&click("#invoke-use-raw")).await;
    b.eval(&type_into("#invoke-raw", r#"{"times": 2}"#)).await;
    b.eval(&click("#invoke-submit")).await;
    let error = b
        .wait_for(
            "the schema refusal",
            "document.querySelector('#invoke-status').dataset.state === 'error' \
             && document.querySelector('#invoke-status').textContent",
            LIMIT,
        )
        .await;
    assert!(error.as_str().unwrap().contains("invalid_input"), "{error}");

    // A streaming agent: items appear while the call is still running.
    b.eval("location.hash = '#invoke/countdown'").await;
    b.wait_for(
        "the countdown form (raw JSON, streaming on)",
        "document.querySelector('#invoke-agent').value === 'countdown' \
         && document.querySelector('#invoke-stream').checked \
         && !document.querySelector('#invoke-raw-label').hidden",
        LIMIT,
    )
    .await;
    b.eval(&type_into("#invoke-raw", r#"{"from": 3, "gap": 1.5}"#))
        .await;
    b.eval(&click("#invoke-submit")).await;
    b.wait_for(
        "a streamed item shown before the stream ends",
        "document.querySelectorAll('#invoke-events li[data-event=\"message\"]').length >= 1 \
         && document.querySelector('#invoke-status').dataset.state === 'streaming'",
        LIMIT,
    )
    .await;
    b.wait_for(
        "the whole stream",
        "document.querySelector('#invoke-status').dataset.state === 'done' \
         && document.querySelector('#invoke-events li[data-event=\"done\"]')",
        LIMIT,
    )
    .await;
    let items = b
        .eval("Array.from(document.querySelectorAll('#invoke-events li[data-event=\"message\"] code')).map(c => JSON.parse(c.textContent))")
        .await;
    assert_eq!(items.as_array().unwrap().len(), 4, "{items}");
    assert_eq!(items[3]["label"], "liftoff", "{items}");

    // The same agent as a durable run: the runs view opens it and shows its events.
    b.eval(&type_into("#invoke-raw", r#"{"from": 2, "gap": 0.2}"#))
        .await;
    b.eval(&click("#invoke-as-run")).await;
    b.eval(&click("#invoke-submit")).await;
    b.wait_for(
        "the run's events",
        "location.hash.startsWith('#runs/') \
         && document.querySelectorAll('#run-events li[data-event=\"message\"]').length === 3 \
         && document.querySelector('#run-events li[data-event=\"done\"]')",
        LIMIT,
    )
    .await;
    b.wait_for(
        "the run listed as succeeded",
        "document.querySelector('#runs-table tr.selected .badge.succeeded') \
         && document.querySelector('#run-facts .badge.succeeded')",
        LIMIT,
    )
    .await;
    shots.take(&mut b, "runs").await;

    // Usage by agent and caller.
    b.eval("location.hash = '#usage'").await;
    b.wait_for(
        "usage by agent and caller",
        "document.querySelector('#usage-agents tr[data-agent=\"kit-schema\"]') \
         && document.querySelector('#usage-callers tr[data-caller=\"api-key:ops\"]') \
         && document.querySelectorAll('#usage-chart rect.bar').length > 0",
        LIMIT,
    )
    .await;
    shots.take(&mut b, "usage").await;

    // Live calls, errors and latency from /metrics.
    b.eval("location.hash = '#live'").await;
    b.wait_for(
        "live metrics per agent",
        "document.querySelector('#live-table tr[data-agent=\"countdown\"]') \
         && document.querySelector('#live-table tr[data-agent=\"kit-schema\"] td.bad')",
        LIMIT,
    )
    .await;
    shots.take(&mut b, "live").await;

    // Disable and enable an agent from the list.
    b.eval("location.hash = '#agents'").await;
    let disable = "#agents-table tr[data-agent=\"echo\"] td.actions button";
    b.wait_for(
        "the agents list",
        &format!("document.querySelector({})", json!(disable)),
        LIMIT,
    )
    .await;
    shots.take(&mut b, "agents").await;
    b.eval(&click(disable)).await;
    b.wait_for(
        "echo disabled",
        &format!(
            "document.querySelector({}).textContent === 'Enable'",
            json!(disable)
        ),
        LIMIT,
    )
    .await;
    let agents = admin_agents(&rt).await;
    assert_eq!(agent(&agents, "echo").unwrap()["enabled"], false);
    let (status, body) = send(
        &rt,
        Method::POST,
        "/agents/echo/invoke",
        Some(ADMIN_KEY),
        &JSON,
        Some("{}"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("disabled")),
        "{body}"
    );
    b.eval(&click(disable)).await;
    b.wait_for(
        "echo enabled again",
        &format!(
            "document.querySelector({}).textContent === 'Disable'",
            json!(disable)
        ),
        LIMIT,
    )
    .await;
    assert_eq!(
        agent(&admin_agents(&rt).await, "echo").unwrap()["enabled"],
        true
    );

    // Unload a package: two clicks (the first arms the button), then it is gone.
    b.eval("location.hash = '#packages'").await;
    let unload = "#packages-table tr[data-package=\"kit-schema\"] button.danger";
    b.wait_for(
        "the packages list",
        &format!("document.querySelector({})", json!(unload)),
        LIMIT,
    )
    .await;
    shots.take(&mut b, "packages").await;
    b.eval(&click(unload)).await;
    b.eval(&click(unload)).await;
    b.wait_for(
        "kit-schema gone from the packages view",
        "document.querySelector('#packages-table tr[data-package=\"echo\"]') \
         && !document.querySelector('#packages-table tr[data-package=\"kit-schema\"]')",
        LIMIT,
    )
    .await;
    let agents = admin_agents(&rt).await;
    assert!(
        agent(&agents, "kit-schema").is_none(),
        "unloaded: {agents:?}"
    );
    assert!(agent(&agents, "echo").is_some());

    // A reload keeps the tab signed in (sessionStorage), straight to the agents list.
    b.eval("window.previousDocument = true").await;
    b.navigate(&rt.url("/console/?reloaded#agents")).await;
    b.wait_for(
        "the agents list after a reload",
        "!window.previousDocument && document.body.dataset.ready === '1' \
         && document.querySelector('#agents-table tr[data-agent=\"echo\"]')",
        LIMIT,
    )
    .await;
    eprintln!(
        "console timings, warm browser (ms): {}",
        b.eval(TIMINGS).await
    );

    // Signing out forgets the key.
    b.eval(&click("#logout")).await;
    b.wait_for(
        "the login form again",
        "!document.querySelector('#view-login').hidden && sessionStorage.length === 0",
        LIMIT,
    )
    .await;
}

#[tokio::test]
async fn console_files_are_public_with_strict_headers_and_its_data_is_admin_only() {
    let (rt, _dir) = secured().await;
    for (path, content_type) in [
        ("/console/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let response = rt.client.get(rt.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} is public: it holds no data");
        let headers = response.headers();
        let header = |name: &str| headers[name].to_str().unwrap().to_string();
        assert!(header("content-type").starts_with(content_type), "{path}");
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert!(!headers.contains_key("set-cookie"), "no cookie, so no CSRF");
    }
    let page = rt
        .client
        .get(rt.url("/console/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains(ADMIN_KEY) && !page.contains("echo"),
        "the shell holds no data"
    );
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(rt.url("/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/console/");
    let (status, body) = send(&rt, Method::GET, "/console/secrets.txt", None, &[], None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );

    // Every data call the console makes needs credentials...
    for (method, path) in [
        (Method::GET, "/runtime/agents"),
        (Method::GET, "/runtime/packages"),
        (Method::GET, "/runtime/usage?group_by=agent"),
        (Method::GET, "/runs"),
        (Method::POST, "/runtime/agents/echo/disable"),
        (Method::DELETE, "/runtime/packages/echo"),
        (Method::POST, "/runtime/reload"),
    ] {
        let (status, body) = send(&rt, method.clone(), path, None, &[], None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("unauthorized")),
            "{method} {path}: {body}"
        );
        // ...and the admin role: a valid non-admin key is forbidden.
        let (status, body) = send(&rt, method.clone(), path, Some(USER_KEY), &[], None).await;
        if path == "/runs" {
            assert_eq!(status, 200, "anyone may list their own runs: {body}");
        } else {
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("forbidden")),
                "{method} {path}: {body}"
            );
        }
    }
    let (status, body) = send(
        &rt,
        Method::GET,
        "/runtime/agents",
        Some(ADMIN_KEY),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let schema = &agent(body["agents"].as_array().unwrap(), "kit-schema").unwrap()["input_schema"];
    assert_eq!(
        schema["required"],
        json!(["text"]),
        "the declared schema: {schema}"
    );
    assert_unchanged(&rt).await;
}

/// Requests a page on another site could make with the operator's browser: refused by
/// the site guard before auth is even asked, admin credentials or not, and nothing
/// changes. (The console's own calls carry a header a page cannot set cross-site without
/// a preflight PAR never grants, and the browser attaches no credential by itself.)
#[tokio::test]
async fn forged_console_requests_are_refused_and_change_nothing() {
    let (rt, _dir) = secured().await;
    let evil = [
        ("origin", "http://evil.example"),
        ("content-type", "application/json"),
    ];
    let cross_site = [
        ("sec-fetch-site", "cross-site"),
        ("content-type", "application/json"),
    ];
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let text = [("content-type", "text/plain")];
    let multipart = [("content-type", "multipart/form-data; boundary=x")];
    for key in [None, Some(ADMIN_KEY)] {
        for (method, path) in [
            (Method::POST, "/runtime/agents/echo/disable"),
            (Method::POST, "/runtime/reload"),
            (Method::POST, "/runtime/packages"),
            (Method::DELETE, "/runtime/packages/echo"),
        ] {
            for forged in [&evil[..], &cross_site[..]] {
                let (status, body) = send(&rt, method.clone(), path, key, forged, Some("{}")).await;
                assert_eq!(
                    (status, body["code"].as_str()),
                    (403, Some("forbidden")),
                    "{method} {path} {forged:?}: {body}"
                );
            }
            if method == Method::POST {
                for simple in [&form[..], &text[..], &multipart[..]] {
                    let body_text = r#"{"source": "/tmp/x.apkg"}"#;
                    let (status, body) =
                        send(&rt, method.clone(), path, key, simple, Some(body_text)).await;
                    let refused = (status == 415 && body["code"] == "unsupported_media_type")
                        || (key.is_none() && status == 401);
                    assert!(refused, "{method} {path} {simple:?}: {status} {body}");
                }
            }
        }
    }
    assert_unchanged(&rt).await;
}

/// Every agent still mounted and enabled, and echo still answers.
async fn assert_unchanged(rt: &TestRuntime) {
    let agents = admin_agents(rt).await;
    for id in ["echo", "countdown", "word-stats", "kit-schema"] {
        let found = agent(&agents, id).unwrap_or_else(|| panic!("{id} gone: {agents:?}"));
        assert_eq!(found["enabled"], true, "{id}");
    }
    let (status, body) = send(
        rt,
        Method::POST,
        "/agents/echo/invoke",
        Some(ADMIN_KEY),
        &JSON,
        Some(r#"{"x": 1}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Signs in through the login form and waits for the agents list (or the login error).
async fn sign_in(b: &mut Browser, credential: &str) {
    b.wait_for(
        "the login form",
        "document.body.dataset.ready === '1' && !document.querySelector('#view-login').hidden",
        LIMIT,
    )
    .await;
    b.eval(&type_into("#credential", credential)).await;
    b.eval("document.querySelector('#login-form').requestSubmit()")
        .await;
}

/// The login takes a bearer token as well as an API key: an OIDC access token from a real
/// provider, with the admin role (`ops`) — and one without it is told why it cannot enter.
#[tokio::test]
async fn the_console_signs_in_with_an_oidc_token() {
    let provider = crate::oidc::provider();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let rt = TestRuntime::builder()
        .source(workspace_root().join("target/examples/echo.apkg"))
        .args(&["--auth", "oidc", "--oidc-issuer", &provider.issuer])
        .args(&["--oidc-audience", crate::oidc::AUDIENCE])
        .args(&["--policy", policy.to_str().unwrap()])
        .start()
        .await;
    let mut b = Browser::start().await;
    b.navigate(&rt.url("/console/")).await;
    sign_in(&mut b, &provider.token("par-test").await).await;
    let refused = b
        .wait_for(
            "the non-admin refusal",
            "document.querySelector('#login-error').textContent",
            LIMIT,
        )
        .await;
    assert!(
        refused.as_str().unwrap().contains("no admin role"),
        "{refused}"
    );
    sign_in(&mut b, &provider.token("par-ops").await).await;
    b.wait_for(
        "the agents list",
        "document.querySelector('#agents-table tr[data-agent=\"echo-upper\"]')",
        LIMIT,
    )
    .await;
}

/// On loopback with auth off (the examples' default) the console opens without asking.
#[tokio::test]
async fn the_console_opens_without_sign_in_when_auth_is_off() {
    let rt = TestRuntime::builder()
        .source(workspace_root().join("target/examples/echo.apkg"))
        .start()
        .await;
    let mut b = Browser::start().await;
    b.navigate(&rt.url("/console/")).await;
    b.wait_for(
        "the agents list without signing in",
        "document.querySelector('#agents-table tr[data-agent=\"echo\"]') \
         && document.querySelector('#view-login').hidden \
         && document.querySelector('#who').textContent.includes('auth off')",
        LIMIT,
    )
    .await;
}
