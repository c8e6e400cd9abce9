//! A registry index that flaps: it serves one of two good indexes, answers 503, serves a
//! document that is not an index, or is down altogether (its listener closed, so polls
//! meet a refused connection). Every answer closes its connection, so "down" really is
//! down: no pooled connection outlives the listener.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::harness::fixture;

/// What the index answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IndexMode {
    /// Lists the packages of [`BASE`].
    Base,
    /// Lists [`BASE`] and [`EXTRA`]: the runtime loads the extra package.
    WithExtra,
    /// 503 on every request.
    Unavailable,
    /// 200 with a body that is not an index.
    Broken,
    /// Listener closed: connection refused.
    Down,
}

/// Index-managed packages: the load calls these all the time, so every index lists them.
pub(super) const BASE: &[&str] = &["twin-a"];
/// Listed only by [`IndexMode::WithExtra`]; never called by the load.
pub(super) const EXTRA: &str = "twin-b";

pub(super) struct FlappingIndex {
    addr: std::net::SocketAddr,
    files: Arc<HashMap<String, Vec<u8>>>,
    mode: Arc<Mutex<IndexMode>>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for FlappingIndex {
    fn drop(&mut self) {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.abort();
        }
    }
}

fn index_json(names: &[&str]) -> Vec<u8> {
    let packages: Vec<_> = names
        .iter()
        .map(|name| {
            json!({"name": name, "version": "1.0.0", "url": format!("{name}.apkg"),
                   "sha256": sha256(&fixture(name))})
        })
        .collect();
    json!({"version": 1, "packages": packages})
        .to_string()
        .into_bytes()
}

fn sha256(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_string()
}

impl FlappingIndex {
    pub(super) async fn start() -> FlappingIndex {
        let mut files = HashMap::new();
        for name in BASE.iter().chain([&EXTRA]) {
            files.insert(
                format!("{name}.apkg"),
                std::fs::read(fixture(name)).unwrap(),
            );
        }
        files.insert("base.json".into(), index_json(BASE));
        let mut both: Vec<&str> = BASE.to_vec();
        both.push(EXTRA);
        files.insert("extra.json".into(), index_json(&both));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let index = FlappingIndex {
            addr: listener.local_addr().unwrap(),
            files: Arc::new(files),
            mode: Arc::new(Mutex::new(IndexMode::Base)),
            server: Mutex::new(None),
        };
        index.serve(listener);
        index
    }

    /// The index URL to give `--registry-index`.
    pub(super) fn url(&self) -> String {
        format!("http://{}/index.json", self.addr)
    }

    pub(super) async fn set(&self, mode: IndexMode) {
        let was = std::mem::replace(&mut *self.mode.lock().unwrap(), mode);
        if mode == IndexMode::Down {
            if let Some(server) = self.server.lock().unwrap().take() {
                server.abort();
            }
        } else if was == IndexMode::Down {
            // tokio binds with SO_REUSEADDR: the same port again, at once.
            let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
            self.serve(listener);
        }
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (files, mode) = (self.files.clone(), self.mode.clone());
        let app = axum::Router::new().route(
            "/{name}",
            axum::routing::get(
                move |axum::extract::Path(name): axum::extract::Path<String>| {
                    let answer = answer(&files, *mode.lock().unwrap(), &name);
                    async move { answer }
                },
            ),
        );
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        *self.server.lock().unwrap() = Some(server);
    }
}

fn answer(files: &HashMap<String, Vec<u8>>, mode: IndexMode, name: &str) -> Response {
    let (status, body) = match (mode, name) {
        (IndexMode::Unavailable, _) => (StatusCode::SERVICE_UNAVAILABLE, Vec::new()),
        (IndexMode::Broken, "index.json") => (StatusCode::OK, b"{\"version\": 1, \"pack".to_vec()),
        (IndexMode::WithExtra, "index.json") => (StatusCode::OK, files["extra.json"].clone()),
        (_, "index.json") => (StatusCode::OK, files["base.json"].clone()),
        (_, file) => match files.get(file) {
            Some(bytes) => (StatusCode::OK, bytes.clone()),
            None => (StatusCode::NOT_FOUND, Vec::new()),
        },
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
