//! A real headless Chromium (Debian's `chromium`), driven over the DevTools protocol: one
//! page, its websocket, and the few commands the console test needs (navigate, evaluate,
//! screenshot). Nothing waits a fixed time: callers poll the DOM with a deadline.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// `PAR_CHROMIUM`, else Debian's path (`scripts/install-browser.sh` installs it).
fn chromium() -> PathBuf {
    let path = std::env::var_os("PAR_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "no chromium at {}: run scripts/install-browser.sh (or set PAR_CHROMIUM)",
        path.display()
    );
    path
}

pub(crate) struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    page: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Browser {
    /// Starts Chromium with a fresh profile and connects to its first page.
    pub(crate) async fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,860",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let endpoint = devtools_endpoint(&mut child);
        let page_url = page_websocket(&endpoint).await;
        let (page, _) = tokio_tungstenite::connect_async(page_url.as_str())
            .await
            .expect("connect to the page's DevTools websocket");
        let mut browser = Browser {
            child,
            _profile: profile,
            page,
            next_id: 0,
        };
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": false}),
            )
            .await;
        browser
    }

    /// One DevTools command; its `result` (events in between are skipped).
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.page
            .send(Message::text(message))
            .await
            .expect("send to chromium");
        let deadline = Duration::from_secs(30);
        loop {
            let frame = tokio::time::timeout(deadline, self.page.next())
                .await
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"))
                .expect("chromium closed the websocket")
                .expect("websocket error");
            let Message::Text(text) = frame else { continue };
            let answer: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if answer["id"] != id {
                continue;
            }
            assert!(answer["error"].is_null(), "{method}: {}", answer["error"]);
            return answer["result"].clone();
        }
    }

    pub(crate) async fn navigate(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({"url": url})).await;
        assert!(result["errorText"].is_null(), "navigate {url}: {result}");
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its value.
    pub(crate) async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            result["exceptionDetails"].is_null(),
            "page script failed: {expression}\n{}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy (returning that value); fails after `limit`
    /// with `what` and the page's text.
    pub(crate) async fn wait_for(
        &mut self,
        what: &str,
        expression: &str,
        limit: Duration,
    ) -> Value {
        let start = Instant::now();
        loop {
            let value = self
                .eval(&format!(
                    "(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()"
                ))
                .await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if start.elapsed() > limit {
                let text = self
                    .eval("document.body ? document.body.innerText : ''")
                    .await;
                panic!(
                    "{what}: not within {limit:?}; the page shows:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the viewport.
    pub(crate) async fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine;
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium prints `DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID` on
/// stderr once its debugging port is open; the rest of stderr is drained in a thread.
fn devtools_endpoint(child: &mut Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.split("DevTools listening on ").nth(1) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(url.trim().to_string());
                }
            } else if std::env::var_os("PAR_TEST_ECHO_LOGS").is_some() {
                eprintln!("[chromium] {line}");
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("chromium did not open its DevTools port")
}

/// The websocket of the browser's page target, from `/json/list` on the DevTools port.
async fn page_websocket(endpoint: &str) -> String {
    let authority = endpoint
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("DevTools authority");
    let list: Value = reqwest::get(format!("http://{authority}/json/list"))
        .await
        .expect("DevTools /json/list")
        .json()
        .await
        .expect("DevTools target list");
    list.as_array()
        .into_iter()
        .flatten()
        .find(|t| t["type"] == "page")
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .expect("a page target")
        .to_string()
}
