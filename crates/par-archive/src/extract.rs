//! Extraction into place: all of it, or nothing.
//!
//! The tree is written into a fresh private directory next to the destination and renamed
//! into place only once every entry is complete, so a reader of the destination (which is
//! named after the package's SHA-256) never sees a half-written package, and a crash or a
//! refused entry leaves nothing behind but, at worst, a dot-named staging directory.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use fs_err::os::unix::fs::OpenOptionsExt;
use fs_err::OpenOptions;
use std::os::unix::fs::PermissionsExt;
use tempfile::TempDir;

use crate::error::ArchiveError;
use crate::inspect::{io_error, Opened};
use crate::limits::{check_declared, Limits};
use crate::meter::Meter;
use crate::mode::DIR_MODE;

/// Safely extract `apkg` so that `dest` ends up as a complete directory tree, or does not
/// exist at all.
///
/// Extracts into a fresh private temporary directory created next to `dest` (same parent,
/// so rename is atomic), then renames it to `dest`. If `dest` already exists (another
/// process or an earlier run finished it: dest is content-addressed by sha256), the temp
/// dir is discarded and Ok is returned.
///
/// Every metadata check and the declared-size limits run before anything is written;
/// inflated bytes are counted again while streaming. Directories get mode 0o755; files
/// get their entry's permission bits without setuid/setgid/sticky and without group or
/// other write (0o644 when the entry stores no mode). Missing parents of `dest` are created.
pub fn extract_to(apkg: &Path, dest: &Path, limits: &Limits) -> Result<(), ArchiveError> {
    if exists(apkg, dest)? {
        return Ok(());
    }
    let mut opened = Opened::open(apkg, limits.max_entries)?;
    check_declared(apkg, opened.entries.iter().map(|e| &e.info), limits)?;
    let staging = make_staging(apkg, dest)?;
    write_tree(&mut opened, staging.path(), limits)?;
    publish(apkg, staging, dest)
}

/// Whether anything, even a dangling link, is at `path`: anything there must not be
/// replaced.
fn exists(apkg: &Path, path: &Path) -> Result<bool, ArchiveError> {
    match fs_err::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(apkg, e)),
    }
}

/// Creates the private (0o700) staging directory beside `dest`. It is removed when the
/// returned guard drops, which is what cleans up after any failure.
fn make_staging(apkg: &Path, dest: &Path) -> Result<TempDir, ArchiveError> {
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a directory name", dest.display()),
        )
    };
    let file_name = dest.file_name().ok_or_else(|| io_error(apkg, invalid()))?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs_err::create_dir_all(parent).map_err(|e| io_error(apkg, e))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(file_name);
    prefix.push(".partial-");
    tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(parent)
        .map_err(|e| {
            let message = format!("creating a staging directory in {}: {e}", parent.display());
            io_error(apkg, io::Error::new(e.kind(), message))
        })
}

/// Writes every entry under `root`, in archive order.
fn write_tree(opened: &mut Opened, root: &Path, limits: &Limits) -> Result<(), ArchiveError> {
    let mut meter = Meter::new(limits);
    let mut made = HashSet::new();
    for at in 0..opened.entries.len() {
        let name = &opened.entries[at].name;
        let (path, is_dir, mode) = (name.path.clone(), name.is_dir, opened.entries[at].info.mode);
        let parent_dirs = if is_dir {
            path.as_str()
        } else {
            parent_of(&path)
        };
        make_dirs(root, parent_dirs, &mut made).map_err(|e| io_error(&opened.path, e))?;
        if !is_dir {
            write_file(opened, at, &root.join(&path), mode, &mut meter)?;
        }
    }
    Ok(())
}

/// `a/b/c` gives `a/b`; a top-level name gives the empty path.
fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

/// Creates `rel` and its missing ancestors under `root`, each with mode 0o755 set
/// explicitly so the process umask does not decide it.
fn make_dirs(root: &Path, rel: &str, made: &mut HashSet<String>) -> io::Result<()> {
    if rel.is_empty() {
        return Ok(());
    }
    let ends = rel.match_indices('/').map(|(i, _)| i).chain([rel.len()]);
    for end in ends {
        let prefix = &rel[..end];
        if made.insert(prefix.to_owned()) {
            let dir: PathBuf = root.join(prefix);
            fs_err::create_dir(&dir)?;
            fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(DIR_MODE))?;
        }
    }
    Ok(())
}

/// Writes one file. `create_new` refuses to follow or reuse anything already at the path,
/// a second line of defence behind the duplicate and collision checks.
fn write_file(
    opened: &mut Opened,
    at: usize,
    target: &Path,
    mode: u32,
    meter: &mut Meter,
) -> Result<(), ArchiveError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)
        .map_err(|e| io_error(&opened.path, e))?;
    opened.inflate(at, meter, &mut file)?;
    let permissions = std::fs::Permissions::from_mode(mode);
    file.set_permissions(permissions)
        .map_err(|e| io_error(&opened.path, e))
}

/// Renames the finished tree to `dest`. Losing a race to another extraction of the same
/// package is success: the destination is content-addressed, so the winner's tree is ours.
fn publish(apkg: &Path, staging: TempDir, dest: &Path) -> Result<(), ArchiveError> {
    let root_mode = std::fs::Permissions::from_mode(DIR_MODE);
    fs_err::set_permissions(staging.path(), root_mode).map_err(|e| io_error(apkg, e))?;
    match fs_err::rename(staging.path(), dest) {
        Ok(()) => {
            // The tree now lives at `dest`; stop the guard from deleting it.
            let _published = staging.keep();
            Ok(())
        }
        Err(_) if exists(apkg, dest)? => Ok(()),
        Err(e) => Err(io_error(apkg, e)),
    }
}
