//! Which requirement strings a package may ask PAR to install.
//!
//! A package chooses *what* to install, never *how* or *from where*: pip options
//! (`-e`, `-r`, `--index-url`, ...), local paths and archives (which would build and run the
//! package's own `setup.py`), non-HTTPS URLs and `${VAR}` references (which the installer
//! would expand from PAR's environment) are refused. Normal PEP 508 specifiers, extras,
//! markers, `--hash=` pins and `name @ https://...` direct URLs are allowed.

/// Checks one requirement and returns it trimmed, or the reason it is refused.
pub(crate) fn check_requirement(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty".into());
    }
    if text.starts_with('-') {
        return Err(
            "pip options (such as -e, -r, --index-url) are not allowed: a package cannot change how or from where PAR installs".into(),
        );
    }
    if text.contains("${") {
        return Err("environment variable references are not allowed".into());
    }
    let (spec, options) = split_options(text);
    check_options(options)?;
    check_spec(spec)?;
    Ok(text.to_owned())
}

/// Splits `pkg==1 --hash=sha256:...` into the specifier and its trailing option tokens.
fn split_options(text: &str) -> (&str, Vec<&str>) {
    let start = text
        .match_indices(char::is_whitespace)
        .map(|(i, _)| i)
        .find(|&i| text[i..].trim_start().starts_with('-'));
    match start {
        Some(i) => (&text[..i], text[i..].split_whitespace().collect()),
        None => (text, Vec::new()),
    }
}

/// Hash pins only make installs stricter, so they are the one per-requirement option kept.
fn check_options(options: Vec<&str>) -> Result<(), String> {
    match options.into_iter().find(|o| !o.starts_with("--hash=")) {
        Some(other) => Err(format!(
            "per-requirement option {other:?} is not allowed (only --hash=...)"
        )),
        None => Ok(()),
    }
}

fn check_spec(spec: &str) -> Result<(), String> {
    refuse_local_or_bare_url(spec)?;
    let name_len = name_length(spec);
    let name = &spec[..name_len];
    if name.is_empty() || !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("does not start with a package name".into());
    }
    if is_archive_name(name) {
        return Err("local archives are not allowed".into());
    }
    check_after_name(skip_extras(spec[name_len..].trim_start()))
}

fn refuse_local_or_bare_url(spec: &str) -> Result<(), String> {
    let lower = spec.to_ascii_lowercase();
    if spec.starts_with(['.', '/', '~']) || lower.starts_with("file:") {
        return Err("local paths are not allowed".into());
    }
    let at = spec.find('@').unwrap_or(spec.len());
    if spec[..at].contains("://") {
        return Err("a direct URL must be written as 'name @ https://...'".into());
    }
    Ok(())
}

/// Length of the leading PEP 508 name (`[A-Za-z0-9._-]`, starting alphanumeric).
fn name_length(spec: &str) -> usize {
    if !spec.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return 0;
    }
    spec.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(spec.len())
}

fn is_archive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// Skips an `[extra,...]` group; a missing `]` is left for the installer to report.
fn skip_extras(rest: &str) -> &str {
    if !rest.starts_with('[') {
        return rest;
    }
    match rest.find(']') {
        Some(end) => rest[end + 1..].trim_start(),
        None => rest,
    }
}

/// What may follow the name: nothing, a version specifier, markers or a direct URL.
fn check_after_name(rest: &str) -> Result<(), String> {
    match rest.chars().next() {
        None => Ok(()),
        Some('@') => check_direct_url(rest[1..].trim_start()),
        Some('(' | '<' | '>' | '=' | '!' | '~' | ';') => Ok(()),
        Some(_) => Err("is not a requirement specifier (expected name[extras] <op> version, markers or '@ URL')".into()),
    }
}

fn check_direct_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("git+https://") {
        return Ok(());
    }
    Err("a direct URL must use https:// or git+https:// (local files and plain http are not allowed)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_specifiers_are_allowed_and_trimmed() {
        for ok in [
            "requests",
            "fastapi>=0.112.0",
            "uvicorn[standard]==0.30.1",
            "pydantic >= 2, < 3",
            "numpy~=1.26; python_version >= \"3.10\"",
            "tomli ; python_version < '3.11'",
            "a.b_c-d===1.0",
            "pkg (>=1.0)",
            "pkg @ https://example.com/pkg-1.0-py3-none-any.whl",
            "pkg[x] @ git+https://github.com/o/r@v1",
            "pkg==1.0 --hash=sha256:abcd --hash=sha256:ef01",
        ] {
            assert!(
                check_requirement(ok).is_ok(),
                "{ok}: {:?}",
                check_requirement(ok)
            );
        }
        assert_eq!(
            check_requirement("  requests==2.0  ").unwrap(),
            "requests==2.0"
        );
    }

    #[test]
    fn options_paths_and_redirects_are_refused() {
        let cases = [
            ("-e .", "pip options"),
            ("-r other.txt", "pip options"),
            ("--index-url https://evil.example/simple", "pip options"),
            ("--extra-index-url=https://x", "pip options"),
            ("-c constraints.txt", "pip options"),
            (".", "local paths"),
            ("./vendor/pkg", "local paths"),
            ("../pkg", "local paths"),
            ("/abs/pkg", "local paths"),
            ("~/pkg", "local paths"),
            ("file:///tmp/pkg", "local paths"),
            ("pkg @ file:///tmp/pkg", "https://"),
            ("pkg @ http://example.com/p.whl", "https://"),
            ("pkg @ ./local", "https://"),
            ("https://example.com/p.whl", "name @ https://"),
            ("git+https://github.com/o/r", "name @ https://"),
            ("vendor/pkg", "not a requirement"),
            ("pkg-1.0.tar.gz", "archives"),
            ("pkg.whl", "archives"),
            ("pkg==1 --global-option=build_ext", "--global-option"),
            ("pkg @ https://x/${TOKEN}", "environment variable"),
        ];
        for (line, expected) in cases {
            let err = check_requirement(line).unwrap_err();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}
