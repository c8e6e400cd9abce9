//! Network settings: `--network` (the default policy), `--egress-allow`, and the
//! per-package `[packages.<name>]` tables (`network`, `egress`) of the TOML file, parsed
//! and validated into [`par_egress::EgressSettings`], which the runtime looks up by
//! package name. (The sandbox's per-package limits, in the same table, are read by
//! `sandbox_settings`.)

use std::collections::BTreeMap;

use par_egress::{EgressPattern, EgressSettings, NetworkMode, PackageNetwork};
use serde::Deserialize;

use crate::cli::ServeArgs;
use crate::env_names as env;

/// One `[packages.<name>]` table of the TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct PackageTable {
    /// `none`, `egress` or `host`.
    pub network: Option<String>,
    /// `host:port` patterns: what `egress` may reach (narrows, never widens).
    pub egress: Option<Vec<String>>,
    /// The package's own `--max-pids` (read by `sandbox_settings`).
    pub max_pids: Option<u64>,
    /// The package's own `--max-disk-mb`.
    pub max_disk_mb: Option<u64>,
    /// The package's open-files limit (`RLIMIT_NOFILE`; default 4096).
    pub max_open_files: Option<u64>,
    /// The package's own `--worker-memory-limit` (bytes, per worker process tree).
    pub worker_memory_limit: Option<u64>,
}

pub(crate) fn resolve(s: &ServeArgs, errors: &mut Vec<String>) -> EgressSettings {
    let mut settings = EgressSettings::default();
    if let Some(text) = s.network.as_deref() {
        match text.parse::<NetworkMode>() {
            Ok(mode) => settings.default_network = mode,
            Err(e) => errors.push(format!("--network / {}: {e}", env::NETWORK)),
        }
    }
    let allow = s.egress_allow.as_ref();
    settings.allow = patterns(allow.map(Vec::as_slice).unwrap_or_default(), errors, || {
        format!("--egress-allow / {}", env::EGRESS_ALLOW)
    });
    // Per-package tables come from the file only.
    settings.packages = packages(&s.packages, errors);
    settings
}

fn packages(
    tables: &BTreeMap<String, PackageTable>,
    errors: &mut Vec<String>,
) -> BTreeMap<String, PackageNetwork> {
    let mut out = BTreeMap::new();
    for (name, table) in tables {
        let network = table.network.as_deref().and_then(|text| {
            text.parse::<NetworkMode>()
                .map_err(|e| errors.push(format!("--config: [packages.{name}] network: {e}")))
                .ok()
        });
        let egress = table.egress.as_deref().map(|list| {
            patterns(list, errors, || {
                format!("--config: [packages.{name}] egress")
            })
        });
        out.insert(name.clone(), PackageNetwork { network, egress });
    }
    out
}

/// Every item parsed (items may themselves hold commas, as from a TOML list); each bad
/// one reported with `setting()`.
fn patterns(
    items: &[String],
    errors: &mut Vec<String>,
    setting: impl Fn() -> String,
) -> Vec<EgressPattern> {
    let mut out = Vec::new();
    for item in items {
        match par_egress::parse_list(item) {
            Ok(list) => out.extend(list),
            Err(e) => errors.push(format!("{}: {e}", setting())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(toml: &str) -> ServeArgs {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn reads_flags_and_package_tables() {
        let args = ServeArgs {
            egress_allow: Some(vec!["*.openai.com:443".into(), "127.0.0.1:9000".into()]),
            ..Default::default()
        };
        let f = file(
            r#"
            network = "none"
            egress-allow = ["ignored.example:1"]
            [packages.kit-minimal]
            network = "egress"
            egress = ["api.example.com:443", "*.cdn.example.com:443"]
            [packages.trusted]
            network = "host"
            "#,
        );
        let mut errors = Vec::new();
        let s = resolve(&args.or(f), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.default_network, NetworkMode::None);
        assert_eq!(s.allow.len(), 2);
        assert_eq!(s.network_for("kit-minimal"), NetworkMode::Egress);
        assert_eq!(s.network_for("trusted"), NetworkMode::Host);
        assert_eq!(s.network_for("other"), NetworkMode::None);
        assert_eq!(s.egress_list("kit-minimal").unwrap().len(), 2);
        assert!(s.egress_list("trusted").is_none());
    }

    #[test]
    fn defaults_to_egress_with_nothing_allowed() {
        let mut errors = Vec::new();
        let s = resolve(&ServeArgs::defaults(), &mut errors);
        assert!(errors.is_empty());
        assert_eq!(s.default_network, NetworkMode::Egress);
        assert!(s.allow.is_empty() && s.packages.is_empty());
    }

    #[test]
    fn every_bad_value_is_named() {
        let args = ServeArgs {
            network: Some("bridge".into()),
            egress_allow: Some(vec!["no-port.example".into()]),
            ..Default::default()
        };
        let f = file(
            r#"
            [packages.a]
            network = "open"
            egress = ["ok.example:443", "*.x:0"]
            "#,
        );
        let mut errors = Vec::new();
        resolve(&args.or(f), &mut errors);
        let text = errors.join("\n");
        assert_eq!(errors.len(), 4, "{text}");
        assert!(text.contains("--network / PAR_NETWORK: 'bridge'"), "{text}");
        assert!(
            text.contains("--egress-allow / PAR_EGRESS_ALLOW: 'no-port.example'"),
            "{text}"
        );
        assert!(text.contains("[packages.a] network: 'open'"), "{text}");
        assert!(text.contains("[packages.a] egress: '*.x:0'"), "{text}");
    }

    #[test]
    fn unknown_package_keys_are_refused() {
        let e = toml::from_str::<ServeArgs>("[packages.a]\nnetwrk = \"none\"\n").unwrap_err();
        assert!(e.to_string().contains("netwrk"), "{e}");
    }
}
