//! `--source-roots` and `--allow-private-sources`: what a management-API caller may name
//! as a source. The operator's own sources are never limited by them.
//!
//! Default roots: the directories of the startup sources (a file's folder, a folder
//! itself), so a package next to the ones given at startup can be loaded by path; not
//! the cache directory (uploads take their own route, and nothing else there is for a
//! caller to name). With no local startup source and no roots, local paths are refused.

use std::path::{Path, PathBuf};

use crate::env_names as env;
use crate::settings::ServeArgs;

pub(crate) fn resolve(
    s: &ServeArgs,
    sources: &[String],
    errors: &mut Vec<String>,
) -> par_core::SourcePolicy {
    let roots = match &s.source_roots {
        Some(roots) => roots.clone(),
        None => startup_dirs(sources),
    };
    let allow_private = s.allow_private_sources.expect("a default");
    par_core::SourcePolicy::new(&roots, allow_private).unwrap_or_else(|e| {
        errors.push(format!("--source-roots / {}: {e}", env::SOURCE_ROOTS));
        par_core::SourcePolicy::default()
    })
}

/// The folders of the local startup sources that exist.
fn startup_dirs(sources: &[String]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = sources
        .iter()
        .filter(|s| !s.contains("://"))
        .map(|s| Path::new(s.split('#').next().unwrap_or(s)))
        .filter_map(|p| match p.is_dir() {
            true => Some(p.to_path_buf()),
            false if p.is_file() => p.parent().map(|d| match d.as_os_str().is_empty() {
                true => PathBuf::from("."),
                false => d.to_path_buf(),
            }),
            false => None,
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_sources_give_their_folders() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.apkg");
        std::fs::write(&file, b"x").unwrap();
        let sources = [
            file.display().to_string(),
            format!("{}#sha256={}", file.display(), "a".repeat(64)),
            dir.path().display().to_string(),
            "https://example.com/x.apkg".to_string(),
            "/nope/x.apkg".to_string(),
        ];
        assert_eq!(startup_dirs(&sources), [dir.path().to_path_buf()]);
    }
}
