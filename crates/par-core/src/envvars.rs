//! The environment a package's workers get: allowed host variables, then the package's
//! `.env`, then `agent.yaml` `environment` (later wins), then what the runtime itself must
//! control. Nothing else of the host leaks through.

use std::collections::BTreeMap;
use std::path::Path;

pub(crate) struct EnvInputs<'a> {
    pub host: &'a [(String, String)],
    pub allow: &'a [String],
    pub dotenv: &'a [(String, String)],
    pub manifest: &'a BTreeMap<String, String>,
    pub venv: &'a Path,
    /// The package's private working directory (also its HOME and TMPDIR).
    pub work: &'a Path,
    pub package_root: &'a Path,
}

pub(crate) fn worker_env(inputs: &EnvInputs<'_>) -> Vec<(String, String)> {
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
        let env = env_of(
            &[
                ("LANG", "C"),
                ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
                ("X", "host"),
            ],
            &["LANG", "X"],
            &[("X", "dotenv"), ("Y", "dotenv")],
            &[("Y", "yaml")],
        );
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

    fn env_of(
        host: &[(&str, &str)],
        allow: &[&str],
        dotenv: &[(&str, &str)],
        manifest: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let host = pairs(host);
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        let dotenv = pairs(dotenv);
        let manifest: BTreeMap<String, String> = pairs(manifest).into_iter().collect();
        worker_env(&EnvInputs {
            host: &host,
            allow: &allow,
            dotenv: &dotenv,
            manifest: &manifest,
            venv: Path::new("/envs/a"),
            work: Path::new("/work/p"),
            package_root: Path::new("/pkgs/x"),
        })
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn without_a_host_path_the_venv_comes_before_the_system_default() {
        let env = env_of(&[("PATH", "/host/bin")], &[], &[], &[]);
        assert_eq!(
            get(&env, "PATH"),
            Some("/envs/a/bin:/usr/local/bin:/usr/bin:/bin"),
            "the host PATH is not allowed here"
        );
        let empty = env_of(&[("PATH", "")], &["PATH"], &[], &[]);
        assert_eq!(
            get(&empty, "PATH"),
            Some("/envs/a/bin:/usr/local/bin:/usr/bin:/bin")
        );
    }

    #[test]
    fn an_allowed_or_package_path_follows_the_venv() {
        let env = env_of(&[("PATH", "/host/bin")], &["PATH"], &[], &[]);
        assert_eq!(get(&env, "PATH"), Some("/envs/a/bin:/host/bin"));
        let env = env_of(
            &[("PATH", "/host/bin")],
            &["PATH"],
            &[],
            &[("PATH", "/pkg/bin")],
        );
        assert_eq!(get(&env, "PATH"), Some("/envs/a/bin:/pkg/bin"));
    }

    #[test]
    fn the_runtimes_own_variables_win_over_the_package() {
        let env = env_of(
            &[],
            &[],
            &[("HOME", "/root"), ("VIRTUAL_ENV", "/elsewhere")],
            &[
                ("TMPDIR", "/tmp"),
                ("PAR_PACKAGE_ROOT", "/x"),
                ("PYTHONDONTWRITEBYTECODE", "0"),
                ("PYTHONUNBUFFERED", "0"),
            ],
        );
        assert_eq!(get(&env, "HOME"), Some("/work/p"));
        assert_eq!(get(&env, "VIRTUAL_ENV"), Some("/envs/a"));
        assert_eq!(get(&env, "TMPDIR"), Some("/work/p/tmp"));
        assert_eq!(get(&env, "PAR_PACKAGE_ROOT"), Some("/pkgs/x"));
        assert_eq!(get(&env, "PYTHONDONTWRITEBYTECODE"), Some("1"));
        assert_eq!(get(&env, "PYTHONUNBUFFERED"), Some("1"));
    }

    #[test]
    fn only_allowed_host_variables_pass_and_each_name_appears_once() {
        let env = env_of(
            &[("LANG", "C"), ("SECRET", "x"), ("TZ", "UTC")],
            &["LANG", "MISSING"],
            &[("LANG", "fr")],
            &[],
        );
        assert_eq!(get(&env, "LANG"), Some("fr"));
        assert_eq!(get(&env, "SECRET"), None);
        assert_eq!(get(&env, "TZ"), None);
        assert_eq!(
            get(&env, "MISSING"),
            None,
            "allowing a name does not invent it"
        );
        let mut names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "{names:?}");
        assert_eq!(
            names,
            [
                "HOME",
                "LANG",
                "PAR_PACKAGE_ROOT",
                "PATH",
                "PYTHONDONTWRITEBYTECODE",
                "PYTHONUNBUFFERED",
                "TMPDIR",
                "VIRTUAL_ENV"
            ]
        );
    }
}
