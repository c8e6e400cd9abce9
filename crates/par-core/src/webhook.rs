//! Lifecycle events sent to operator webhooks: JSON bodies signed with HMAC-SHA256
//! (`x-par-signature: sha256=<hex>`), delivered by one background task with retries.
//! A slow or dead receiver never blocks the runtime: the queue is bounded and events
//! beyond it are dropped with a warning.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::error::LoadError;
use crate::package::Package;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub urls: Vec<String>,
    /// Key for the HMAC signature; without it events go unsigned.
    pub secret: Option<String>,
    pub attempts: u32,
    pub timeout: Duration,
    pub queue: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            urls: Vec::new(),
            secret: None,
            attempts: 5,
            timeout: Duration::from_secs(5),
            queue: 1000,
        }
    }
}

/// One event, as posted.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Event {
    pub event: &'static str,
    pub package: Option<String>,
    pub version: Option<String>,
    pub sha256: Option<String>,
    pub source: String,
    pub detail: Option<String>,
    pub timestamp_ms: u128,
}

impl Event {
    pub(crate) fn for_package(
        kind: &'static str,
        package: &Package,
        detail: Option<String>,
    ) -> Self {
        Event {
            event: kind,
            package: Some(package.name().to_string()),
            version: Some(package.version().to_string()),
            sha256: Some(package.sha256.clone()),
            source: package.source.clone(),
            detail,
            timestamp_ms: now_ms(),
        }
    }

    pub(crate) fn failed(source: &str, error: &LoadError) -> Self {
        Event {
            event: "package.failed",
            package: None,
            version: None,
            sha256: None,
            source: source.to_string(),
            detail: Some(format!("{:?}: {}", error.phase, error.reason)),
            timestamp_ms: now_ms(),
        }
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

pub(crate) struct Webhooks {
    tx: std::sync::Mutex<Option<mpsc::Sender<Event>>>,
    done: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Webhooks {
    /// Starts the delivery task; `None` when no URL is configured.
    pub(crate) fn start(config: &WebhookConfig) -> Option<Webhooks> {
        if config.urls.is_empty() {
            return None;
        }
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let task = tokio::spawn(deliver_all(config.clone(), rx));
        Some(Webhooks {
            tx: std::sync::Mutex::new(Some(tx)),
            done: tokio::sync::Mutex::new(Some(task)),
        })
    }

    pub(crate) fn send(&self, event: Event) {
        let tx = self.tx.lock().expect("webhook sender poisoned");
        let Some(tx) = tx.as_ref() else { return };
        if tx.try_send(event).is_err() {
            tracing::warn!("webhook queue full or closed: event dropped");
        }
    }

    /// Stops taking events and waits up to `limit` for queued ones to go out.
    pub(crate) async fn close(&self, limit: Duration) {
        self.tx.lock().expect("webhook sender poisoned").take();
        if let Some(task) = self.done.lock().await.take() {
            let _ = tokio::time::timeout(limit, task).await;
        }
    }
}

async fn deliver_all(config: WebhookConfig, mut rx: mpsc::Receiver<Event>) {
    let client = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhook client unavailable");
            return;
        }
    };
    while let Some(event) = rx.recv().await {
        let body = serde_json::to_vec(&event).expect("events serialise");
        let signature = config.secret.as_deref().map(|key| sign(key, &body));
        for url in &config.urls {
            deliver(&client, url, &body, signature.as_deref(), config.attempts).await;
        }
    }
}

/// Posts one body to one URL, retrying failures with doubling delays.
async fn deliver(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    signature: Option<&str>,
    attempts: u32,
) {
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=attempts.max(1) {
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature {
            request = request.header("x-par-signature", sig);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => tracing::warn!(
                url,
                attempt,
                status = r.status().as_u16(),
                "webhook refused"
            ),
            Err(e) => tracing::warn!(url, attempt, error = %e, "webhook delivery failed"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    tracing::error!(url, "webhook gave up after {attempts} attempts");
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        let sig = super::sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::error::LoadPhase;

    #[test]
    fn the_signature_covers_the_key_and_every_byte_of_the_body() {
        let sig = sign("key", b"{\"a\":1}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        assert_eq!(sig, sign("key", b"{\"a\":1}"), "deterministic");
        assert_ne!(sig, sign("key", b"{\"a\":2}"));
        assert_ne!(sig, sign("other", b"{\"a\":1}"));
    }

    #[test]
    fn a_failed_load_event_names_the_source_phase_and_reason() {
        let error = LoadError::new(LoadPhase::Verify, "/p/a.apkg", "digest mismatch");
        let event = Event::failed("/p/a.apkg", &error);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "package.failed");
        assert_eq!(json["source"], "/p/a.apkg");
        assert_eq!(json["detail"], "Verify: digest mismatch");
        assert!(json["package"].is_null() && json["sha256"].is_null());
    }

    #[test]
    fn a_package_event_names_the_package_version_and_bytes() {
        let p = crate::package::tests::package("a", "1.2.0", "abc");
        let event = Event::for_package("package.ready", &p, None);
        assert_eq!(event.package.as_deref(), Some("a"));
        assert_eq!(event.version.as_deref(), Some("1.2.0"));
        assert_eq!(event.sha256.as_deref(), Some("abc"));
        assert_eq!(event.source, p.source);
        assert!(event.timestamp_ms > 0);
    }

    #[tokio::test]
    async fn without_urls_no_delivery_task_starts() {
        assert!(Webhooks::start(&WebhookConfig::default()).is_none());
    }

    /// Accepts one HTTP request and answers 200; returns its head and body.
    async fn receive_one(listener: tokio::net::TcpListener) -> (String, Vec<u8>) {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before the request was complete");
            data.extend_from_slice(&buf[..n]);
            let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                return (head, data[end + 4..end + 4 + length].to_vec());
            }
        }
    }

    #[tokio::test]
    async fn a_delivered_event_is_signed_with_the_hmac_of_its_exact_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let receiver = tokio::spawn(receive_one(listener));
        let hooks = Webhooks::start(&WebhookConfig {
            urls: vec![url],
            secret: Some("s3cret".into()),
            attempts: 1,
            ..WebhookConfig::default()
        })
        .unwrap();
        let error = LoadError::new(LoadPhase::Fetch, "/p/x.apkg", "gone");
        hooks.send(Event::failed("/p/x.apkg", &error));
        let (head, body) = tokio::time::timeout(Duration::from_secs(20), receiver)
            .await
            .expect("delivered in time")
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["event"], "package.failed");
        let expected = format!("x-par-signature: {}", sign("s3cret", &body));
        assert!(head.contains(&expected), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        hooks.close(Duration::from_secs(5)).await;
    }
}
