//! `https://` and `http://` through one pooled reqwest client.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{ETAG, IF_NONE_MATCH, RETRY_AFTER};
use reqwest::{redirect, Response, StatusCode};
use url::{Host, Url};

use super::{Body, Open, Opened};
use crate::config::FetchConfig;
use crate::error::{ConfigError, FetchError, TimeoutKind};

const MAX_REDIRECTS: usize = 10;

/// Builds the process's HTTP client: timeouts, extra CA certificates, and a redirect
/// policy that never downgrades to plain HTTP on a non-loopback host.
pub(crate) fn build_client(
    config: &FetchConfig,
    ca_pem: Option<&[u8]>,
) -> Result<reqwest::Client, ConfigError> {
    let allow_insecure = config.allow_insecure_http;
    let policy = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if let Err(reason) = check_scheme(attempt.url(), allow_insecure) {
            attempt.error(reason)
        } else {
            attempt.follow()
        }
    });
    let mut builder = reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .redirect(policy)
        .user_agent(concat!("par-registry/", env!("CARGO_PKG_VERSION")));
    if let (Some(path), Some(pem)) = (&config.ca_bundle, ca_pem) {
        for cert in parse_ca_bundle(path, pem)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| ConfigError::HttpClient(error_chain(&e)))
}

fn parse_ca_bundle(
    path: &std::path::Path,
    pem: &[u8],
) -> Result<Vec<reqwest::Certificate>, ConfigError> {
    let problem = |problem: String| ConfigError::CaBundle {
        path: path.to_owned(),
        problem,
    };
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| problem(error_chain(&e)))?;
    if certs.is_empty() {
        return Err(problem("no PEM certificates found".into()));
    }
    Ok(certs)
}

/// Plain HTTP only to loopback hosts, unless allowed.
pub(crate) fn check_scheme(url: &Url, allow_insecure: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure || is_loopback(url) => Ok(()),
        "http" => Err(format!(
            "plain http:// to {} is refused (only loopback hosts; enable insecure HTTP to allow it)",
            url.host_str().unwrap_or("?")
        )),
        other => Err(format!("unsupported scheme {other}")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Sends a GET (conditional when `etag` is given) and classifies the answer.
pub(crate) async fn open(
    client: &reqwest::Client,
    url: &Url,
    shown: &str,
    etag: Option<&str>,
    config: &FetchConfig,
) -> Result<Open, FetchError> {
    check_scheme(url, config.allow_insecure_http).map_err(|reason| FetchError::Refused {
        url: shown.to_owned(),
        reason,
    })?;
    let mut request = client.get(url.clone());
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let response = request
        .send()
        .await
        .map_err(|e| classify(e, shown, config))?;
    answer(response, shown, etag.is_some())
}

fn answer(response: Response, shown: &str, conditional: bool) -> Result<Open, FetchError> {
    let status = response.status();
    if status.is_success() {
        return Ok(Open::Body(Opened {
            length: response.content_length(),
            etag: header(&response, ETAG),
            body: Body::Http(response),
        }));
    }
    if status == StatusCode::NOT_MODIFIED && conditional {
        return Ok(Open::NotModified);
    }
    Err(status_error(status, &response, shown))
}

fn status_error(status: StatusCode, response: &Response, shown: &str) -> FetchError {
    let url = shown.to_owned();
    match status.as_u16() {
        404 | 410 => FetchError::NotFound { url },
        401 | 403 => FetchError::AccessDenied {
            url,
            detail: status.to_string(),
        },
        code => FetchError::Status {
            url,
            status: code,
            detail: status.canonical_reason().unwrap_or_default().to_owned(),
            retryable: matches!(code, 408 | 429 | 500 | 502 | 503 | 504),
            retry_after: header(response, RETRY_AFTER).and_then(|v| parse_retry_after(&v)),
        },
    }
}

fn header(response: &Response, name: reqwest::header::HeaderName) -> Option<String> {
    let value = response.headers().get(name)?;
    value.to_str().ok().map(str::to_owned)
}

/// `Retry-After` in delta-seconds. (HTTP-date values are ignored: backoff applies.)
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Maps a reqwest error to a fetch error; TLS problems are permanent, network ones not.
pub(crate) fn classify(error: reqwest::Error, shown: &str, config: &FetchConfig) -> FetchError {
    let url = shown.to_owned();
    let error = error.without_url();
    if let Some(detail) = tls_problem(&error) {
        return FetchError::Tls { url, detail };
    }
    if error.is_timeout() {
        let (kind, after) = match error.is_connect() {
            true => (TimeoutKind::Connect, config.connect_timeout),
            false => (TimeoutKind::Read, config.read_timeout),
        };
        return FetchError::Timeout { url, kind, after };
    }
    let detail = error_chain(&error);
    if error.is_redirect() {
        return FetchError::Refused {
            url,
            reason: format!("redirect refused: {detail}"),
        };
    }
    if error.is_connect() {
        return FetchError::Connect { url, detail };
    }
    FetchError::Transfer { url, detail }
}

/// The rustls error somewhere in the chain, if any. It usually sits inside (nested)
/// `io::Error`s, whose `source()` skips the wrapped error itself, so those are opened.
pub(crate) fn tls_problem(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        current = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// An error and its causes, `: `-separated, without repeating identical messages.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(err) = current {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        let ok = [
            "http://127.0.0.1:8/x",
            "http://[::1]/x",
            "http://localhost/x",
            "https://a.b/x",
        ];
        for url in ok {
            assert!(
                check_scheme(&Url::parse(url).unwrap(), false).is_ok(),
                "{url}"
            );
        }
        let remote = Url::parse("http://example.com/x").unwrap();
        assert!(check_scheme(&remote, false).is_err());
        assert!(check_scheme(&remote, true).is_ok());
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
