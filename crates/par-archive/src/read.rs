//! Reading one small file out of an archive without extracting it, for the manifest and
//! dependency files the runtime inspects before deciding to install a package.

use std::path::Path;

use crate::error::{ArchiveError, LimitKind};
use crate::inspect::Opened;
use crate::meter::Meter;

/// Never reserve more than this up front: the declared size is only a claim.
const MAX_PREALLOCATION: u64 = 1024 * 1024;

/// Read one file entry fully into memory (used for agent.yaml, requirements.txt,
/// pyproject.toml without extracting). Errors if absent (ArchiveError::MissingEntry) or if
/// its inflated size exceeds max_bytes (counted while inflating, not trusted from headers).
///
/// The whole archive's metadata is checked first, as for extraction, so a package that
/// would be refused at install time is refused here too. Size limits other than
/// `max_bytes` are not applied: they belong to extraction.
pub fn read_entry(apkg: &Path, name: &str, max_bytes: u64) -> Result<Vec<u8>, ArchiveError> {
    let mut opened = Opened::open(apkg, usize::MAX)?;
    let missing = || ArchiveError::MissingEntry {
        archive: apkg.to_owned(),
        entry: name.to_owned(),
    };
    let at = opened
        .entries
        .iter()
        .position(|e| !e.info.is_dir && e.info.name == name)
        .ok_or_else(missing)?;
    let declared = opened.entries[at].info.size;
    if declared > max_bytes {
        return Err(ArchiveError::Limit {
            archive: apkg.to_owned(),
            entry: name.to_owned(),
            kind: LimitKind::EntryBytes,
            value: declared,
            max: max_bytes,
        });
    }
    let mut out = Vec::with_capacity(declared.min(MAX_PREALLOCATION) as usize);
    opened.inflate(at, &mut Meter::single(max_bytes), &mut out)?;
    Ok(out)
}
