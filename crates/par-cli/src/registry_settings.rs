//! Fetching settings: signature policy, trusted keys, TLS, limits, registry index.

use std::str::FromStr;
use std::time::Duration;

use par_core::RegistrySettings;
use par_registry::{FetchConfig, SignaturePolicy};

use crate::cli::ServeArgs;
use crate::env_names as env;

pub struct FetchSettings {
    pub fetch: FetchConfig,
    pub registry: Option<RegistrySettings>,
}

pub fn resolve(
    cache_dir: &std::path::Path,
    a: &ServeArgs,
    f: &ServeArgs,
    errors: &mut Vec<String>,
) -> FetchSettings {
    let mut fetch = FetchConfig::new(cache_dir.join("downloads"));
    if let Some(text) = a.signature_policy.clone().or(f.signature_policy.clone()) {
        match SignaturePolicy::from_str(&text) {
            Ok(policy) => fetch.signature_policy = policy,
            Err(_) => errors.push(format!(
                "--signature-policy / {}: '{text}' is not off, if-present or required",
                env::SIGNATURE_POLICY
            )),
        }
    }
    fetch.trusted_keys = a
        .trusted_keys
        .clone()
        .or(f.trusted_keys.clone())
        .unwrap_or_default();
    for key in &fetch.trusted_keys {
        if !key.is_file() {
            errors.push(format!(
                "--trusted-keys / {}: no such file {}",
                env::TRUSTED_KEYS,
                key.display()
            ));
        }
    }
    if fetch.signature_policy == SignaturePolicy::Required && fetch.trusted_keys.is_empty() {
        errors.push(format!(
            "--trusted-keys / {}: required with --signature-policy required",
            env::TRUSTED_KEYS
        ));
    }
    fetch.ca_bundle = a.ca_bundle.clone().or(f.ca_bundle.clone());
    fetch.allow_insecure_http = a
        .allow_insecure_http
        .or(f.allow_insecure_http)
        .unwrap_or(false);
    if let Some(max) = a.max_download_bytes.or(f.max_download_bytes) {
        fetch.max_download_bytes = max;
    }
    fetch.cache_budget_bytes = a.cache_budget_bytes.or(f.cache_budget_bytes);
    let registry = a
        .registry_index
        .clone()
        .or(f.registry_index.clone())
        .map(|index| {
            let secs = a.poll_interval.or(f.poll_interval).unwrap_or(30.0);
            if !(secs.is_finite() && secs > 0.0) {
                errors.push(format!(
                    "--poll-interval / {}: must be a positive number of seconds",
                    env::POLL_SECS
                ));
            }
            RegistrySettings {
                index,
                interval: Duration::from_secs_f64(secs.max(0.1)),
            }
        });
    FetchSettings { fetch, registry }
}
