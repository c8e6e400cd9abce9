//! Small, pure checks on single values, shared by the manifest validator.
//!
//! Each returns the accepted (possibly normalised) value or a message that completes the
//! sentence "field 'X' ...".

/// The kit's own name rule, `^[a-z][a-z0-9-]*$`.
pub(crate) fn package_name(name: &str) -> Result<(), String> {
    let first = |c: char| c.is_ascii_lowercase();
    let rest = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    pattern(name, "^[a-z][a-z0-9-]*$", first, rest)?;
    max_len(name, MAX_ID_LEN)
}

/// Ids end up in URLs, metric labels and cache paths, so they are capped.
const MAX_ID_LEN: usize = 100;

/// Sub-agent names are agent ids and request `action`s. The kit does not restrict them;
/// PAR needs them to be one safe URL path segment, so: `^[A-Za-z0-9][A-Za-z0-9_.-]*$`.
pub(crate) fn agent_id(name: &str) -> Result<(), String> {
    let first = |c: char| c.is_ascii_alphanumeric();
    let rest = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    pattern(name, "^[A-Za-z0-9][A-Za-z0-9_.-]*$", first, rest)?;
    max_len(name, MAX_ID_LEN)
}

/// The agent version names files (`<name>-<version>.apkg`), cache folders and `id@version`
/// addresses, so it is held to the characters of PEP 440 and SemVer: no `/`, spaces or `@`.
pub(crate) fn agent_version(version: &str) -> Result<(), String> {
    let first = |c: char| c.is_ascii_alphanumeric();
    let rest = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-');
    pattern(version, "^[A-Za-z0-9][A-Za-z0-9._+-]*$", first, rest)?;
    max_len(version, 64)
}

/// A hand-rolled `^[first][rest]*$` check; `shown` is the regex quoted in the message.
fn pattern(
    value: &str,
    shown: &str,
    first: impl Fn(char) -> bool,
    rest: impl Fn(char) -> bool,
) -> Result<(), String> {
    let mut chars = value.chars();
    if chars.next().is_some_and(first) && chars.all(rest) {
        return Ok(());
    }
    Err(format!("must match {shown} (got {value:?})"))
}

fn max_len(value: &str, max: usize) -> Result<(), String> {
    if value.len() <= max {
        return Ok(());
    }
    Err(format!(
        "must be at most {max} characters (got {})",
        value.len()
    ))
}

/// The top-level `version` is the manifest format. Kit 0.4 writes `'1.0'`; pixell-sdk 0.5
/// overwrites it with the agent version when absent, so a value equal to `metadata.version`
/// is read as format 1.0 rather than refused.
pub(crate) fn format_version(
    raw: Option<&str>,
    agent_version: Option<&str>,
) -> Result<String, String> {
    let Some(raw) = raw else {
        return Ok("1.0".to_owned());
    };
    if Some(raw) == agent_version {
        return Ok("1.0".to_owned());
    }
    if is_format_1(raw) {
        return Ok(raw.to_owned());
    }
    Err(format!(
        "must be a 1.x manifest format version such as \"1.0\" (got {raw:?}); the agent's own version belongs in 'metadata.version'"
    ))
}

/// `1`, `1.0`, `1.2.3`: major version 1 with numeric minor parts.
fn is_format_1(raw: &str) -> bool {
    let mut parts = raw.split('.');
    let major_ok = parts.next() == Some("1");
    major_ok && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The runtimes the kit's schema allows. PAR runs only the Python ones; refusing a
/// `node20` package is the environment builder's call, not the parser's.
pub(crate) const RUNTIMES: &[&str] = &["python3.9", "python3.11", "node18", "node20", "go1.21"];

pub(crate) fn runtime(runtime: &str) -> Result<(), String> {
    if RUNTIMES.contains(&runtime) {
        return Ok(());
    }
    Err(format!(
        "must be one of {} (got {runtime:?})",
        RUNTIMES.join(", ")
    ))
}

/// A path inside the package, normalised to `a/b` form.
///
/// Refuses absolute paths, `..`, backslashes, drive letters and control characters rather
/// than cleaning them: a manifest that points outside its package is hostile or broken, and
/// either way should not load. The package root itself is refused too, since serving it as
/// a UI would publish `.env` and the source.
pub(crate) fn relative_path(path: &str) -> Result<String, String> {
    let refused = |why: &str| {
        Err(format!(
            "must be a relative path inside the package, {why} (got {path:?})"
        ))
    };
    if path.starts_with('/') {
        return refused("not absolute");
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return refused("without backslashes or control characters");
    }
    if path.as_bytes().get(1) == Some(&b':') {
        return refused("not a drive path");
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return refused("without '..'");
    }
    if parts.is_empty() {
        return refused("below the package root");
    }
    Ok(parts.join("/"))
}

/// Environment names must be settable on a process: no `=`, no NUL, not empty.
pub(crate) fn environment_entry(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.contains('=') || key.contains('\0') {
        return Err(
            "has a name that cannot be an environment variable (empty, or with '=' or NUL)".into(),
        );
    }
    if value.contains('\0') {
        return Err("has a value containing a NUL character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_follow_the_kit() {
        assert!(package_name("kit-minimal2").is_ok());
        for bad in ["Foo", "2fast", "-x", "a_b", "", "a.b"] {
            let err = package_name(bad).unwrap_err();
            assert!(err.contains("^[a-z][a-z0-9-]*$"), "{err}");
        }
        assert!(package_name(&"a".repeat(101)).is_err());
    }

    #[test]
    fn agent_ids_are_url_safe() {
        assert!(agent_id("data_analyzer").is_ok());
        assert!(agent_id("Report.v2-x").is_ok());
        for bad in ["", "a/b", "a b", "_x", "x@1", "..", "é"] {
            assert!(agent_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn agent_versions_are_file_name_safe() {
        for ok in ["0.1.0", "1.0.0-rc.1", "2.0+local", "v3", "1.10"] {
            assert!(agent_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", "1.0 beta", "1@2", ".1", "a/b"] {
            assert!(agent_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_version_accepts_1x_and_sdk_sync() {
        assert_eq!(format_version(None, Some("0.1.0")).unwrap(), "1.0");
        assert_eq!(format_version(Some("1"), None).unwrap(), "1");
        assert_eq!(format_version(Some("1.0"), None).unwrap(), "1.0");
        assert_eq!(format_version(Some("1.2"), None).unwrap(), "1.2");
        assert_eq!(format_version(Some("0.2.0"), Some("0.2.0")).unwrap(), "1.0");
        assert!(format_version(Some("2.0"), Some("0.1.0")).is_err());
        assert!(format_version(Some("1.x"), None).is_err());
        assert!(format_version(Some("10"), None).is_err());
        assert!(format_version(Some("1."), None).is_err());
    }

    #[test]
    fn runtimes_are_the_kits_list() {
        assert!(runtime("python3.11").is_ok());
        assert!(runtime("node20").is_ok());
        assert!(runtime("python3.12").unwrap_err().contains("python3.11"));
    }

    #[test]
    fn relative_paths_are_normalised_or_refused() {
        assert_eq!(relative_path("ui").unwrap(), "ui");
        assert_eq!(relative_path("./dist/ui/").unwrap(), "dist/ui");
        assert_eq!(relative_path("a//b").unwrap(), "a/b");
        for bad in [
            "/etc",
            "../x",
            "a/../../b",
            "a\\b",
            "C:/x",
            ".",
            "./",
            "",
            "a\u{0}b",
        ] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn environment_entries_must_be_settable() {
        assert!(environment_entry("PORT", "8080").is_ok());
        assert!(environment_entry("my-var", "x").is_ok());
        assert!(environment_entry("", "x").is_err());
        assert!(environment_entry("A=B", "x").is_err());
        assert!(environment_entry("A", "x\0").is_err());
    }
}
