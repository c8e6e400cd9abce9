//! `s3://bucket/key` through the AWS SDK: the standard credential chain, any
//! S3-compatible endpoint (path-style addressing there), and our own retry policy in
//! place of the SDK's so that every source kind retries the same way.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;

use super::http::{error_chain, parse_retry_after, tls_problem};
use super::{Body, Open, Opened};
use crate::config::{FetchConfig, S3Options};
use crate::error::{FetchError, TimeoutKind};

/// The region used when neither the options nor the AWS chain name one: S3-compatible
/// servers usually accept any, and it is where AWS's global endpoint lives.
const FALLBACK_REGION: &str = "us-east-1";
/// Set by the AWS SDKs' convention for an S3-only endpoint override.
const ENV_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";

pub(crate) async fn build_client(
    config: &FetchConfig,
    ca_pem: Option<&[u8]>,
) -> aws_sdk_s3::Client {
    let mut loader = loader(config, &config.s3);
    if let Some(pem) = ca_pem {
        loader = loader.http_client(https_client(pem));
    }
    let shared = loader.load().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        builder = builder.region(Region::new(FALLBACK_REGION));
    }
    let custom_endpoint =
        shared.endpoint_url().is_some() || std::env::var_os(ENV_ENDPOINT_URL_S3).is_some();
    if custom_endpoint {
        // S3-compatible servers rarely resolve bucket subdomains.
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// The SDK's own HTTPS client (rustls, aws-lc) trusting the platform roots plus `pem`.
fn https_client(pem: &[u8]) -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let trust = tls::TrustStore::default().with_pem_certificate(pem.to_vec());
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a TLS context with a trust store always builds");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

fn loader(config: &FetchConfig, options: &S3Options) -> aws_config::ConfigLoader {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts);
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(c) = &options.credentials {
        let static_creds = Credentials::new(
            &c.access_key_id,
            &c.secret_access_key,
            None,
            None,
            "par-registry",
        );
        loader = loader.credentials_provider(static_creds);
    }
    loader
}

/// GETs an object (conditional when `etag` is given).
pub(crate) async fn open(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    shown: &str,
    etag: Option<&str>,
    config: &FetchConfig,
) -> Result<Open, FetchError> {
    let mut request = client.get_object().bucket(bucket).key(key);
    if let Some(etag) = etag {
        request = request.if_none_match(etag);
    }
    match request.send().await {
        // Some servers ignore If-None-Match; an unchanged ETag means the same.
        Ok(out) if etag.is_some() && out.e_tag() == etag => Ok(Open::NotModified),
        Ok(out) => Ok(Open::Body(Opened {
            length: out.content_length().and_then(|n| u64::try_from(n).ok()),
            etag: out.e_tag().map(str::to_owned),
            body: Body::S3(out.body),
        })),
        Err(SdkError::ServiceError(ctx)) if ctx.raw().status().as_u16() == 304 => {
            Ok(Open::NotModified)
        }
        Err(error) => Err(classify(error, shown.to_owned(), config)),
    }
}

fn classify(
    error: SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse>,
    url: String,
    config: &FetchConfig,
) -> FetchError {
    let detail = error_chain(&error);
    match error {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let retry_after = ctx
                .raw()
                .headers()
                .get("retry-after")
                .and_then(parse_retry_after);
            service_error(ctx.err(), status, retry_after, url)
        }
        SdkError::TimeoutError(_) => FetchError::Timeout {
            url,
            kind: TimeoutKind::Read,
            after: config.read_timeout,
        },
        SdkError::DispatchFailure(failure) => {
            let tls = failure.as_connector_error().and_then(|e| tls_problem(e));
            if let Some(detail) = tls {
                FetchError::Tls { url, detail }
            } else if failure.is_timeout() {
                FetchError::Timeout {
                    url,
                    kind: TimeoutKind::Connect,
                    after: config.connect_timeout,
                }
            } else if failure.is_io() {
                FetchError::Connect { url, detail }
            } else {
                FetchError::Other { url, detail }
            }
        }
        SdkError::ResponseError(_) => FetchError::Transfer { url, detail },
        _ => FetchError::Other { url, detail },
    }
}

fn service_error(
    error: &GetObjectError,
    status: u16,
    retry_after: Option<std::time::Duration>,
    url: String,
) -> FetchError {
    let code = error.code().unwrap_or_default();
    let detail = match error.message() {
        Some(message) => format!("{code}: {message}"),
        None => code.to_owned(),
    };
    match (status, code) {
        (404, _) | (_, "NoSuchKey" | "NoSuchBucket") => FetchError::NotFound { url },
        (401 | 403, _) => FetchError::AccessDenied { url, detail },
        (_, "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable")
        | (429 | 500 | 502 | 503 | 504, _) => FetchError::Status {
            url,
            status,
            detail,
            retryable: true,
            retry_after,
        },
        _ => FetchError::Status {
            url,
            status,
            detail,
            retryable: false,
            retry_after,
        },
    }
}
