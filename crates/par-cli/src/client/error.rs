//! What can go wrong in a client command, as one line and an exit code.

use std::fmt;

#[derive(Debug)]
pub(crate) enum ClientError {
    /// Bad arguments: unparsable JSON, an unreadable `@FILE`, a bad URL.
    Usage(String),
    /// No answer from the server (refused, timed out, TLS failure).
    Unreachable { url: String, reason: String },
    /// The server answered with an error body.
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// The request was accepted but the work failed (a load's phase, a streamed error).
    Failed(String),
    /// Stdout was closed by its reader (`par agents | head`): not an error.
    OutputClosed,
}

impl ClientError {
    /// The documented exit code (docs/cli.md).
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) => 2,
            ClientError::Unreachable { .. } => 3,
            ClientError::Server { status: 404, .. } => 4,
            ClientError::Server {
                status: 401 | 403, ..
            } => 5,
            ClientError::Server { .. } | ClientError::Failed(_) => 1,
            ClientError::OutputClosed => 0,
        }
    }

    /// An error body (`{"code", "error"}`) or whatever the server sent instead.
    pub(crate) fn from_body(status: u16, body: &[u8]) -> Self {
        let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = |key: &str| parsed[key].as_str().map(str::to_string);
        let fallback = String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(200)
            .collect();
        ClientError::Server {
            status,
            code: text("code").unwrap_or_else(|| format!("http_{status}")),
            message: text("error").unwrap_or(fallback),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Usage(message) | ClientError::Failed(message) => f.write_str(message),
            ClientError::Unreachable { url, reason } => {
                write!(f, "cannot reach the server at {url}: {reason}")
            }
            ClientError::Server {
                status,
                code,
                message,
            } => write!(f, "{code}: {message} (HTTP {status})"),
            ClientError::OutputClosed => f.write_str("output closed"),
        }
    }
}

impl From<std::io::Error> for ClientError {
    fn from(error: std::io::Error) -> Self {
        if crate::output::is_broken_pipe(&error) {
            ClientError::OutputClosed
        } else {
            ClientError::Failed(format!("cannot write output: {error}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_gives_its_code_and_message() {
        let body = br#"{"status":"error","code":"agent_not_found","error":"no agent 'x'"}"#;
        let error = ClientError::from_body(404, body);
        assert_eq!(
            error.to_string(),
            "agent_not_found: no agent 'x' (HTTP 404)"
        );
        assert_eq!(error.exit_code(), 4);
    }

    #[test]
    fn a_body_that_is_not_json_is_kept_short() {
        let error = ClientError::from_body(502, &[b'x'; 1000]);
        assert_eq!(
            error.to_string().len(),
            "http_502: ".len() + 200 + " (HTTP 502)".len()
        );
        assert_eq!(error.exit_code(), 1);
        assert_eq!(ClientError::from_body(403, b"").exit_code(), 5);
    }
}
