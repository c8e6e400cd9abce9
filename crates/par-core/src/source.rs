//! Turning SOURCE arguments into package files. Local paths only for now; remote kinds
//! (`https://`, `s3://`) are recognised and refused with a clear reason.

use std::path::PathBuf;

use crate::error::{LoadError, LoadPhase};

/// One package file to load, with the digest the source demanded, if any.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub label: String,
    pub path: PathBuf,
    pub expected_sha256: Option<String>,
}

/// Splits `path#sha256=<hex>`; the digest must be 64 hex characters.
pub(crate) fn split_digest(source: &str) -> Result<(&str, Option<String>), String> {
    let Some((base, fragment)) = source.rsplit_once('#') else {
        return Ok((source, None));
    };
    let hex = fragment.strip_prefix("sha256=").ok_or_else(|| {
        format!("source '{source}': the only fragment allowed is #sha256=<64 hex>")
    })?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "source '{source}': #sha256= needs 64 hex characters"
        ));
    }
    Ok((base, Some(hex.to_ascii_lowercase())))
}

/// Expands one SOURCE into the package files it names.
pub(crate) fn expand(source: &str) -> Result<Vec<SourceFile>, LoadError> {
    let fail = |reason: String| LoadError::new(LoadPhase::Fetch, source, reason);
    let (base, digest) = split_digest(source).map_err(fail)?;
    if let Some((scheme, _)) = base.split_once("://") {
        return Err(fail(format!(
            "sources of kind '{scheme}://' are not supported by this build"
        )));
    }
    let path = PathBuf::from(base);
    if path.is_dir() {
        if digest.is_some() {
            return Err(fail("#sha256= applies to a file, not a directory".into()));
        }
        return list_dir(&path).map_err(|e| fail(e.to_string()));
    }
    if !path.is_file() {
        return Err(fail(format!(
            "no such file or directory: {}",
            path.display()
        )));
    }
    Ok(vec![SourceFile {
        label: base.to_string(),
        path,
        expected_sha256: digest,
    }])
}

fn list_dir(dir: &std::path::Path) -> std::io::Result<Vec<SourceFile>> {
    let mut files: Vec<PathBuf> = fs_err::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "apkg") && p.is_file())
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|path| SourceFile {
            label: path.display().to_string(),
            path,
            expected_sha256: None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_fragment_is_parsed_and_checked() {
        let hex = "A".repeat(64);
        let src = format!("x.apkg#sha256={hex}");
        let (base, digest) = split_digest(&src).unwrap();
        assert_eq!(base, "x.apkg");
        assert_eq!(digest.unwrap(), "a".repeat(64));
        assert!(split_digest("x.apkg#sha256=abc").is_err());
        assert!(split_digest("x.apkg#md5=abc").is_err());
        assert_eq!(split_digest("x.apkg").unwrap(), ("x.apkg", None));
    }

    #[test]
    fn directory_lists_only_apkg_files_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.apkg", "a.apkg", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let files = expand(dir.path().to_str().unwrap()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.apkg", "b.apkg"]);
    }

    #[test]
    fn missing_path_and_remote_kinds_are_clear_errors() {
        assert!(expand("/nope/x.apkg")
            .unwrap_err()
            .reason
            .contains("no such file"));
        assert!(expand("s3://b/k.apkg")
            .unwrap_err()
            .reason
            .contains("s3://"));
    }

    #[test]
    fn a_digest_must_be_64_hex_characters() {
        let not_hex = format!("x.apkg#sha256={}", "g".repeat(64));
        assert!(split_digest(&not_hex).unwrap_err().contains("64 hex"));
        let too_long = format!("x.apkg#sha256={}", "a".repeat(65));
        assert!(split_digest(&too_long).unwrap_err().contains("64 hex"));
        let other = split_digest("x.apkg#v=2").unwrap_err();
        assert!(other.contains("the only fragment allowed"), "{other}");
    }

    #[test]
    fn a_file_source_keeps_its_digest_and_drops_the_fragment_from_its_label() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.apkg");
        std::fs::write(&file, b"x").unwrap();
        let hex = "b".repeat(64);
        let files = expand(&format!("{}#sha256={hex}", file.display())).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, file);
        assert_eq!(files[0].label, file.display().to_string());
        assert_eq!(files[0].expected_sha256.as_deref(), Some(hex.as_str()));
    }

    #[test]
    fn a_digest_on_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = expand(&format!(
            "{}#sha256={}",
            dir.path().display(),
            "c".repeat(64)
        ))
        .unwrap_err();
        assert_eq!(err.phase, LoadPhase::Fetch);
        assert!(err.reason.contains("not a directory"), "{}", err.reason);
    }

    #[test]
    fn a_directory_skips_subfolders_named_like_packages() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nested.apkg")).unwrap();
        std::fs::write(dir.path().join("real.apkg"), b"x").unwrap();
        let files = expand(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(files.len(), 1);
        assert!(files[0].path.ends_with("real.apkg"));
        assert!(files[0].expected_sha256.is_none());
        assert_eq!(files[0].label, files[0].path.display().to_string());
    }

    #[test]
    fn https_sources_are_refused_by_this_build() {
        let err = expand("https://example.com/a.apkg").unwrap_err();
        assert_eq!(err.phase, LoadPhase::Fetch);
        assert_eq!(err.source_name, "https://example.com/a.apkg");
        assert!(err.reason.contains("'https://'"), "{}", err.reason);
    }
}
