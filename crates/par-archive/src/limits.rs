//! Size budgets for an archive and the check of the sizes its headers *declare*.
//!
//! Declared sizes are only a first, cheap filter: an attacker writes whatever numbers they
//! like into the headers, so the bytes are counted again while inflating (see `meter`).

use std::path::Path;

use crate::error::{ArchiveError, LimitKind};
use crate::inspect::EntryInfo;

const MIB: u64 = 1024 * 1024;

/// Entries that inflate to less than this are exempt from the ratio limit: tiny files such
/// as an empty `__init__.py` or a run of spaces compress far better than 200:1 and are
/// harmless at that size.
pub(crate) const RATIO_EXEMPT_BYTES: u64 = 64 * 1024;

/// How much an archive may hold. The defaults are far above what a real agent package
/// needs and far below what would hurt the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Number of entries (files and directories), default 10,000.
    pub max_entries: usize,
    /// Inflated size of one entry, default 256 MiB.
    pub max_entry_bytes: u64,
    /// Sum of the inflated sizes of all entries, default 1 GiB.
    pub max_total_bytes: u64,
    /// Inflated bytes per compressed byte of one entry, default 200; entries under 64 KiB
    /// inflated are exempt.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 10_000,
            max_entry_bytes: 256 * MIB,
            max_total_bytes: 1024 * MIB,
            max_ratio: 200,
        }
    }
}

/// Whether `inflated` bytes from `compressed` bytes breaks a ratio limit. `None` means no
/// ratio limit (reading one bounded entry into memory needs none).
pub(crate) fn ratio_exceeded(max_ratio: Option<u64>, inflated: u64, compressed: u64) -> bool {
    match max_ratio {
        Some(ratio) => {
            inflated >= RATIO_EXEMPT_BYTES && inflated > ratio.saturating_mul(compressed)
        }
        None => false,
    }
}

/// Refuses the archive when the sizes its headers declare already break a limit, before
/// any byte is inflated or written.
pub(crate) fn check_declared<'a>(
    archive: &Path,
    entries: impl IntoIterator<Item = &'a EntryInfo>,
    limits: &Limits,
) -> Result<(), ArchiveError> {
    let mut total: u64 = 0;
    for entry in entries {
        total = total.saturating_add(entry.size);
        let broken = declared_breach(entry, total, limits);
        if let Some((kind, value, max)) = broken {
            return Err(ArchiveError::Limit {
                archive: archive.to_owned(),
                entry: entry.name.clone(),
                kind,
                value,
                max,
            });
        }
    }
    Ok(())
}

/// The first limit one entry's declared sizes break, as (kind, value, limit).
fn declared_breach(
    entry: &EntryInfo,
    total: u64,
    limits: &Limits,
) -> Option<(LimitKind, u64, u64)> {
    if entry.size > limits.max_entry_bytes {
        return Some((LimitKind::EntryBytes, entry.size, limits.max_entry_bytes));
    }
    if total > limits.max_total_bytes {
        return Some((LimitKind::TotalBytes, total, limits.max_total_bytes));
    }
    if ratio_exceeded(Some(limits.max_ratio), entry.size, entry.compressed_size) {
        let ratio = entry.size / entry.compressed_size.max(1);
        return Some((LimitKind::Ratio, ratio, limits.max_ratio));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64, compressed_size: u64) -> EntryInfo {
        EntryInfo {
            name: "f".into(),
            size,
            compressed_size,
            is_dir: false,
            mode: 0o644,
        }
    }

    fn breach(entries: &[EntryInfo], limits: &Limits) -> Option<LimitKind> {
        match check_declared(Path::new("x.apkg"), entries, limits) {
            Ok(()) => None,
            Err(ArchiveError::Limit { kind, .. }) => Some(kind),
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn defaults_match_the_documented_numbers() {
        let l = Limits::default();
        assert_eq!(l.max_entries, 10_000);
        assert_eq!(l.max_entry_bytes, 256 * 1024 * 1024);
        assert_eq!(l.max_total_bytes, 1024 * 1024 * 1024);
        assert_eq!(l.max_ratio, 200);
    }

    #[test]
    fn declared_entry_size_over_limit_is_refused() {
        let limits = Limits {
            max_entry_bytes: 100,
            ..Limits::default()
        };
        assert_eq!(breach(&[entry(100, 100)], &limits), None);
        assert_eq!(
            breach(&[entry(101, 101)], &limits),
            Some(LimitKind::EntryBytes)
        );
    }

    #[test]
    fn declared_total_over_limit_is_refused() {
        let limits = Limits {
            max_total_bytes: 150,
            ..Limits::default()
        };
        assert_eq!(breach(&[entry(75, 75), entry(75, 75)], &limits), None);
        let three = [entry(75, 75), entry(75, 75), entry(1, 1)];
        assert_eq!(breach(&three, &limits), Some(LimitKind::TotalBytes));
    }

    #[test]
    fn declared_ratio_applies_only_from_64_kib() {
        let limits = Limits::default();
        let small = RATIO_EXEMPT_BYTES - 1;
        assert_eq!(breach(&[entry(small, 1)], &limits), None);
        assert_eq!(
            breach(&[entry(RATIO_EXEMPT_BYTES, 1)], &limits),
            Some(LimitKind::Ratio)
        );
        let at_limit = entry(200 * 1000, 1000);
        assert_eq!(breach(&[at_limit], &limits), None);
        let over = entry(200 * 1000 + 1, 1000);
        assert_eq!(breach(&[over], &limits), Some(LimitKind::Ratio));
    }

    #[test]
    fn zero_compressed_bytes_cannot_hide_a_large_entry() {
        assert!(ratio_exceeded(Some(200), RATIO_EXEMPT_BYTES, 0));
        assert!(!ratio_exceeded(None, u64::MAX, 0));
    }
}
