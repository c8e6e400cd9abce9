//! Test harness: a real OpenID provider (scripts/oidc/server.mjs on Node) on loopback, real
//! client-credentials tokens from it, and helpers to forge the tokens it would never mint.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{EncodingKey, Header};
use par_auth::{ApiKeyConfig, AuthMode, Authenticator, OidcConfig, Url};
use serde::Deserialize;
use serde_json::{json, Value};

pub(crate) const AUDIENCE: &str = "urn:par:api";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running provider process; killed on drop. Its stdin is a pipe it watches, so it also
/// exits when the test binary does (the shared instances are never dropped).
pub(crate) struct Provider {
    child: Child,
    pub issuer: String,
    keys_file: PathBuf,
    token_endpoint: OnceLock<String>,
    /// The CA to trust when the provider serves HTTPS.
    ca: Option<String>,
    _dir: tempfile::TempDir,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IssuerKey {
    pub kid: String,
    pub alg: String,
    pub pem: String,
    pub public_pem: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Stats {
    pub jwks_requests: u64,
    pub discovery_requests: u64,
}

impl Provider {
    pub(crate) fn start() -> Provider {
        Self::launch(0, None)
    }

    pub(crate) fn start_on(port: u16) -> Provider {
        Self::launch(port, None)
    }

    /// Serves HTTPS with `pki`'s certificate for 127.0.0.1.
    pub(crate) fn start_tls(pki: &TestPki) -> Provider {
        Self::launch(0, Some(pki))
    }

    fn launch(port: u16, tls: Option<&TestPki>) -> Provider {
        let dir = repo_root().join("scripts/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test OpenID provider is not installed: run scripts/install-oidc.sh \
             (npm ci in scripts/oidc) first"
        );
        let tmp = tempfile::tempdir().unwrap();
        let keys_file = tmp.path().join("keys.json");
        let stderr = std::fs::File::create(tmp.path().join("stderr.log")).unwrap();
        let mut command = Command::new("node");
        command
            .arg(dir.join("server.mjs"))
            .args([
                "--port",
                &port.to_string(),
                "--exit-on-stdin-eof",
                "--keys-out",
            ])
            .arg(&keys_file);
        if let Some(pki) = tls {
            command
                .arg("--tls-cert")
                .arg(&pki.cert)
                .arg("--tls-key")
                .arg(&pki.key);
        }
        let mut child = command
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node (Node 20+ is required): {e}"));
        let issuer = read_listening(&mut child, &tmp.path().join("stderr.log"));
        Provider {
            child,
            issuer,
            keys_file,
            token_endpoint: OnceLock::new(),
            ca: tls.map(|pki| pki.ca_pem.clone()),
            _dir: tmp,
        }
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn keys(&self) -> Vec<IssuerKey> {
        #[derive(Deserialize)]
        struct File {
            keys: Vec<IssuerKey>,
        }
        let text = std::fs::read_to_string(&self.keys_file).unwrap();
        serde_json::from_str::<File>(&text).unwrap().keys
    }

    /// The newest published key for `alg`: the one the provider signs with.
    pub(crate) fn key(&self, alg: &str) -> IssuerKey {
        self.keys().into_iter().find(|k| k.alg == alg).unwrap()
    }

    /// A client-credentials access token. `resource` may carry the `alg`/`ttl` knobs.
    pub(crate) async fn token(&self, client: &str, resource: &str, scope: Option<&str>) -> String {
        let secret = match client {
            "par-test" => "par-test-secret",
            "par-ops" => "par-ops-secret",
            "other-client" => "other-secret",
            other => panic!("no such test client {other}"),
        };
        let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let response = self
            .client()
            .post(self.token_endpoint().await)
            .basic_auth(client, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "token request failed: {status} {body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    pub(crate) async fn rs256(&self, client: &str) -> String {
        self.token(client, AUDIENCE, Some("agents:invoke")).await
    }

    /// From discovery, read once (so the provider's request counts are the code's own).
    async fn token_endpoint(&self) -> String {
        if let Some(url) = self.token_endpoint.get() {
            return url.clone();
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let doc: Value = self
            .client()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let endpoint = doc["token_endpoint"].as_str().unwrap().to_string();
        self.token_endpoint.get_or_init(|| endpoint).clone()
    }

    /// Publishes a new signing key for `alg` first in the JWKS; returns its kid.
    pub(crate) async fn rotate(&self, alg: &str) -> String {
        let url = format!("{}/__rotate?alg={alg}", self.issuer);
        let body: Value = self
            .client()
            .post(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["kid"].as_str().unwrap().to_string()
    }

    pub(crate) async fn set_jwks_delay(&self, ms: u64) {
        let url = format!("{}/__jwks_delay?ms={ms}", self.issuer);
        self.client()
            .post(url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    fn client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder().no_proxy();
        if let Some(ca) = &self.ca {
            builder = builder
                .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    pub(crate) async fn stats(&self) -> Stats {
        let url = format!("{}/__stats", self.issuer);
        self.client()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_listening(child: &mut Child, stderr_log: &Path) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("LISTENING ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(stderr_log).unwrap_or_default();
            panic!("the OIDC provider exited or did not print LISTENING within 30 s; its stderr:\n{log}")
        })
}

/// A test CA and a certificate it issued for 127.0.0.1 and localhost, as PEM files.
pub(crate) struct TestPki {
    pub ca_pem: String,
    pub ca_file: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestPki {
    pub(crate) fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "par-auth test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_params =
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        TestPki {
            ca_pem: ca_cert.pem(),
            ca_file: write("ca.pem", &ca_cert.pem()),
            cert: write("cert.pem", &leaf.pem()),
            key: write("key.pem", &leaf_key.serialize_pem()),
            _dir: dir,
        }
    }
}

/// The provider shared by tests that neither rotate keys, stop it, nor count its requests.
pub(crate) fn shared() -> &'static Provider {
    static SHARED: OnceLock<Provider> = OnceLock::new();
    SHARED.get_or_init(Provider::start)
}

/// A second, unrelated provider: the attacker's identity provider.
pub(crate) fn attacker() -> &'static Provider {
    static ATTACKER: OnceLock<Provider> = OnceLock::new();
    ATTACKER.get_or_init(Provider::start)
}

pub(crate) fn oidc_config(provider: &Provider) -> OidcConfig {
    OidcConfig::new(
        Url::parse(&provider.issuer).unwrap(),
        vec![AUDIENCE.to_string()],
    )
}

pub(crate) async fn oidc_auth(cfg: OidcConfig) -> Authenticator {
    Authenticator::new(
        AuthMode::Oidc,
        Some(cfg),
        None,
        "roles".into(),
        Some("tenant".into()),
    )
    .await
    .unwrap()
}

pub(crate) async fn authenticator_for(provider: &Provider) -> Authenticator {
    oidc_auth(oidc_config(provider)).await
}

pub(crate) async fn api_key_auth(
    mode: AuthMode,
    keys: ApiKeyConfig,
    oidc: Option<OidcConfig>,
) -> Authenticator {
    Authenticator::new(mode, oidc, Some(keys), "roles".into(), None)
        .await
        .unwrap()
}

pub(crate) fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims a token from `issuer` for our audience would carry, valid for five minutes.
pub(crate) fn claims(issuer: &str) -> Value {
    json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "par-test",
        "client_id": "par-test",
        "iat": now(),
        "exp": now() + 300,
        "scope": "agents:invoke",
        "roles": ["ops"],
    })
}

pub(crate) fn encoding_key(key: &IssuerKey) -> EncodingKey {
    let pem = key.pem.as_bytes();
    match key.alg.as_str() {
        "RS256" => EncodingKey::from_rsa_pem(pem),
        "ES256" => EncodingKey::from_ec_pem(pem),
        "EdDSA" => EncodingKey::from_ed_pem(pem),
        other => panic!("no such alg {other}"),
    }
    .unwrap()
}

pub(crate) fn jwt_alg(name: &str) -> jsonwebtoken::Algorithm {
    name.parse().unwrap()
}

/// Signs `claims` with `key` under `header` (whose `alg` must fit the key).
pub(crate) fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

/// A header for `key`'s algorithm naming `kid`.
pub(crate) fn header(alg: &str, kid: Option<&str>) -> Header {
    let mut h = Header::new(jwt_alg(alg));
    h.kid = kid.map(str::to_string);
    h
}

/// Signs with the issuer's own current key for `alg`: a token only the claims can sink.
pub(crate) fn issuer_signed(provider: &Provider, alg: &str, claims: &Value) -> String {
    let key = provider.key(alg);
    sign(&header(alg, Some(&key.kid)), claims, &encoding_key(&key))
}

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn b64_json(v: &Value) -> String {
    b64(serde_json::to_vec(v).unwrap())
}

pub(crate) fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
