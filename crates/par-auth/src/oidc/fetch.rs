//! HTTP to the issuer: OpenID discovery and the JWKS document, size-capped and time-boxed.

use serde::Deserialize;
use thiserror::Error;
use url::Url;

use crate::config::{is_loopback, OidcConfig};
use crate::error::AuthConfigError;

/// Discovery documents and key sets are small; anything bigger is not what we asked for.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

#[derive(Debug, Error)]
pub(crate) enum FetchError {
    #[error("request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} sent an invalid document: {problem}")]
    Invalid { url: String, problem: String },
}

/// Where the issuer's keys are, as its discovery document says.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    /// The `issuer` from discovery: tokens' `iss` must equal it exactly.
    pub issuer: String,
    pub jwks_uri: Url,
}

pub(crate) struct Fetcher {
    client: reqwest::Client,
    issuer: Url,
}

impl Fetcher {
    pub(crate) async fn new(cfg: &OidcConfig) -> Result<Fetcher, AuthConfigError> {
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.http_timeout)
            .connect_timeout(cfg.http_timeout)
            .redirect(same_origin_redirects())
            .user_agent(concat!("par-auth/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &cfg.ca_bundle {
            let pem = tokio::fs::read(path)
                .await
                .map_err(|source| AuthConfigError::CaBundle {
                    path: path.clone(),
                    source,
                })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                AuthConfigError::CaBundle {
                    path: path.clone(),
                    source: std::io::Error::other(e),
                }
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| AuthConfigError::HttpClient(e.to_string()))?;
        Ok(Fetcher {
            client,
            issuer: cfg.issuer.clone(),
        })
    }

    pub(crate) fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            trim_slash(self.issuer.as_str())
        )
    }

    pub(crate) async fn discover(&self) -> Result<Endpoints, FetchError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let url = self.discovery_url();
        let doc: Discovery = self.get_json(&url).await?;
        let invalid = |problem: String| FetchError::Invalid {
            url: url.clone(),
            problem,
        };
        if trim_slash(&doc.issuer) != trim_slash(self.issuer.as_str()) {
            return Err(invalid(format!(
                "issuer {:?} differs from the configured {}",
                doc.issuer, self.issuer
            )));
        }
        let jwks_uri = Url::parse(&doc.jwks_uri)
            .map_err(|e| invalid(format!("jwks_uri {:?}: {e}", doc.jwks_uri)))?;
        let secure =
            jwks_uri.scheme() == "https" || (jwks_uri.scheme() == "http" && is_loopback(&jwks_uri));
        if !secure {
            return Err(invalid(format!("jwks_uri {jwks_uri} must be https")));
        }
        Ok(Endpoints {
            issuer: doc.issuer,
            jwks_uri,
        })
    }

    /// The raw `keys` array of the JWKS document.
    pub(crate) async fn jwks(&self, uri: &Url) -> Result<Vec<serde_json::Value>, FetchError> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<serde_json::Value>,
        }
        let doc: Jwks = self.get_json(uri.as_str()).await?;
        Ok(doc.keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, FetchError> {
        let http = |source| FetchError::Http {
            url: url.to_string(),
            source,
        };
        let mut response = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(http)?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| FetchError::Invalid {
            url: url.to_string(),
            problem: e.to_string(),
        })
    }
}

fn trim_slash(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

/// Keys must come from the issuer: a redirect may not leave its origin.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(Url::origin);
        if attempt.previous().len() > 3 {
            attempt.error("too many redirects")
        } else if first.as_ref() == Some(&attempt.url().origin()) {
            attempt.follow()
        } else {
            attempt.error("redirect to another origin")
        }
    })
}
