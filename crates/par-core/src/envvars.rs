//! The environment a package's workers get: allowed host variables, then the package's
//! `.env`, then `agent.yaml` `environment` (later wins), then what the runtime itself must
//! control. Nothing else of the host leaks through.

use std::collections::BTreeMap;
use std::path::Path;

pub struct EnvInputs<'a> {
    pub host: &'a [(String, String)],
    pub allow: &'a [String],
    pub dotenv: &'a [(String, String)],
    pub manifest: &'a BTreeMap<String, String>,
    pub venv: &'a Path,
    /// The package's private working directory (also its HOME and TMPDIR).
    pub work: &'a Path,
    pub package_root: &'a Path,
}

pub fn worker_env(inputs: &EnvInputs<'_>) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = inputs
        .host
        .iter()
        .filter(|(k, _)| inputs.allow.iter().any(|a| a == k))
        .cloned()
        .collect();
    env.extend(inputs.dotenv.iter().cloned());
    env.extend(inputs.manifest.iter().map(|(k, v)| (k.clone(), v.clone())));
    let bin = inputs.venv.join("bin");
    let path = match env.get("PATH") {
        Some(p) if !p.is_empty() => format!("{}:{p}", bin.display()),
        _ => format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
    };
    env.insert("PATH".into(), path);
    env.insert("VIRTUAL_ENV".into(), inputs.venv.display().to_string());
    // A home and temp folder of its own: nothing written there is seen by another package.
    env.insert("HOME".into(), inputs.work.display().to_string());
    env.insert(
        "TMPDIR".into(),
        inputs.work.join("tmp").display().to_string(),
    );
    env.insert(
        "PAR_PACKAGE_ROOT".into(),
        inputs.package_root.display().to_string(),
    );
    env.insert("PYTHONUNBUFFERED".into(), "1".into());
    // The extracted package is shared, content-addressed and must stay as verified.
    env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
    env.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn precedence_is_host_then_dotenv_then_manifest() {
        let host = pairs(&[
            ("LANG", "C"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("X", "host"),
        ]);
        let allow = vec!["LANG".to_string(), "X".to_string()];
        let dotenv = pairs(&[("X", "dotenv"), ("Y", "dotenv")]);
        let manifest = BTreeMap::from([("Y".to_string(), "yaml".to_string())]);
        let env = worker_env(&EnvInputs {
            host: &host,
            allow: &allow,
            dotenv: &dotenv,
            manifest: &manifest,
            venv: Path::new("/envs/a"),
            work: Path::new("/work/p"),
            package_root: Path::new("/pkgs/x"),
        });
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("LANG"), Some("C"));
        assert_eq!(get("X"), Some("dotenv"));
        assert_eq!(get("Y"), Some("yaml"));
        assert_eq!(get("AWS_SECRET_ACCESS_KEY"), None);
        assert_eq!(get("VIRTUAL_ENV"), Some("/envs/a"));
        assert!(get("PATH").unwrap().starts_with("/envs/a/bin:"));
        assert_eq!(get("HOME"), Some("/work/p"));
        assert_eq!(get("TMPDIR"), Some("/work/p/tmp"));
    }
}
