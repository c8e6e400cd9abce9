//! The real OpenID provider (npm oidc-provider, scripts/oidc/server.mjs) for auth tests.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::harness::workspace_root;

pub(crate) const AUDIENCE: &str = "urn:par:api";

pub(crate) struct Provider {
    child: Child,
    pub issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One provider per test binary.
pub(crate) fn provider() -> &'static Provider {
    static PROVIDER: OnceLock<Provider> = OnceLock::new();
    PROVIDER.get_or_init(start)
}

fn start() -> Provider {
    let dir = workspace_root().join("scripts/oidc");
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "run scripts/install-oidc.sh first"
    );
    let mut child = Command::new("node")
        .arg(dir.join("server.mjs"))
        .args(["--port", "0", "--exit-on-stdin-eof"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node (Node 20+) is required");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let issuer = loop {
        let line = lines
            .next()
            .expect("provider exited before LISTENING")
            .unwrap();
        if let Some(url) = line.strip_prefix("LISTENING ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Provider { child, issuer }
}

impl Provider {
    /// A real client-credentials access token for `client` (par-test: roles [analyst],
    /// realm_access.roles [analyst, reader], tenant acme; par-ops: roles [ops]).
    pub(crate) async fn token(&self, client: &str) -> String {
        let secret = match client {
            "par-test" => "par-test-secret",
            "par-ops" => "par-ops-secret",
            _ => "other-secret",
        };
        let http = reqwest::Client::new();
        let discovery: Value = http
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let endpoint = discovery["token_endpoint"].as_str().unwrap();
        let form = [
            ("grant_type", "client_credentials"),
            ("resource", AUDIENCE),
            ("scope", "agents:invoke"),
        ];
        let body: Value = http
            .post(endpoint)
            .basic_auth(client, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_string()
    }
}
