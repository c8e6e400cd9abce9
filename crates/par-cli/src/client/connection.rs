//! One server: its base URL, the credential sent with every request, and the requests the
//! commands make, each answering JSON or a [`ClientError`].

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use super::args::ServerArgs;
use super::error::ClientError;

/// Time to connect; calls themselves may run long (agents, streams), so no overall limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Connection {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    pub json: bool,
}

impl Connection {
    pub(super) fn new(args: &ServerArgs) -> Result<Self, ClientError> {
        let base = args.url.trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| ClientError::Usage(format!("--url '{}': {e}", args.url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::Usage(format!(
                "--url '{}': not an http:// or https:// URL",
                args.url
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("par/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Failed(format!("HTTP client: {e}")))?;
        Ok(Connection {
            base,
            token: args.token.clone().filter(|t| !t.is_empty()),
            http,
            json: args.json,
        })
    }

    pub(super) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends and returns the response when its status is a success, else the error body.
    pub(super) async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        Err(ClientError::from_body(status, &body))
    }

    /// Sends and parses the JSON answer.
    pub(super) async fn json(&self, request: RequestBuilder) -> Result<Value, ClientError> {
        let response = self.send(request).await?;
        let body = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Failed(format!("the server sent no JSON: {e}")))
    }

    pub(super) async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.json(self.request(Method::GET, path)).await
    }

    pub(super) fn unreachable(&self, error: &reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(error),
        }
    }
}

/// The innermost error's text: "connection refused" rather than reqwest's
/// "error sending request for url (...)".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    let text = inner.to_string();
    if error.to_string().contains("timed out") || text.contains("timed out") {
        return "timed out".into();
    }
    text.split(" (os error").next().unwrap_or(&text).to_string()
}

/// `value` made safe to put into a URL path segment.
pub(super) fn segment(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// `?k=v&...` of the pairs whose value is set.
pub(super) fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs
        .iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={}", segment(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_and_queries_are_escaped() {
        assert_eq!(segment("kit-minimal@1.0.0"), "kit-minimal@1.0.0");
        assert_eq!(segment("a/../b c"), "a%2F..%2Fb%20c");
        assert_eq!(
            query(&[
                ("agent", Some("echo".into())),
                ("from", None),
                ("to", Some("a+b".into()))
            ]),
            "?agent=echo&to=a%2Bb"
        );
        assert_eq!(query(&[("agent", None)]), "");
    }
}
