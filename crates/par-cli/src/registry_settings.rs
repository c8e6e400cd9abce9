//! Fetching settings: signature policy, trusted keys, TLS, limits, registry index.

use std::str::FromStr;
use std::time::Duration;

use par_core::RegistrySettings;
use par_registry::{FetchConfig, SignaturePolicy};

use crate::cli::ServeArgs;
use crate::env_names as env;

pub(crate) struct FetchSettings {
    pub fetch: FetchConfig,
    pub registry: Option<RegistrySettings>,
}

pub(crate) fn resolve(
    cache_dir: &std::path::Path,
    s: &ServeArgs,
    errors: &mut Vec<String>,
) -> FetchSettings {
    let mut fetch = FetchConfig::new(cache_dir.join("downloads"));
    if let Some(text) = s.signature_policy.clone() {
        match SignaturePolicy::from_str(&text) {
            Ok(policy) => fetch.signature_policy = policy,
            Err(_) => errors.push(format!(
                "--signature-policy / {}: '{text}' is not off, if-present or required",
                env::SIGNATURE_POLICY
            )),
        }
    }
    fetch.trusted_keys = s.trusted_keys.clone().unwrap_or_default();
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
    fetch.ca_bundle = s.ca_bundle.clone();
    fetch.allow_insecure_http = s.allow_insecure_http == Some(true);
    if let Some(max) = s.max_download_bytes {
        fetch.max_download_bytes = max;
    }
    fetch.cache_budget_bytes = s.cache_budget_bytes;
    let registry = s.registry_index.clone().map(|index| {
        let secs = s.poll_interval.expect("the table gives a default");
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
