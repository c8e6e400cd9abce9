//! The crate's one error type. Every message starts with the archive's path and, where one
//! entry is to blame, names that entry (Debug-quoted, so control characters and invalid
//! UTF-8 in a hostile name are shown escaped instead of reaching a terminal or a log raw).

use std::path::PathBuf;

/// Why an archive was refused or could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// A filesystem call failed; the source comes from `fs-err` and names the exact file.
    #[error("{}: {source}", archive.display())]
    Io {
        archive: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not a zip archive, or its end records are damaged or truncated.
    #[error("{}: not a readable zip archive: {source}", archive.display())]
    NotZip {
        archive: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },

    /// The central directory is inconsistent in a way no zip writer produces.
    #[error("{}: malformed central directory: {detail}", archive.display())]
    Malformed { archive: PathBuf, detail: String },

    #[error("{}: entry {entry:?}: unsafe name: {problem}", archive.display())]
    UnsafeName {
        archive: PathBuf,
        entry: String,
        problem: NameProblem,
    },

    #[error("{}: entry {entry:?} appears more than once", archive.display())]
    Duplicate { archive: PathBuf, entry: String },

    #[error(
        "{}: entry {entry:?} collides with {other:?} when case and Unicode normalisation are ignored",
        archive.display()
    )]
    CaseCollision {
        archive: PathBuf,
        entry: String,
        other: String,
    },

    #[error("{}: entry {entry:?} lies under {parent:?}, which is a file", archive.display())]
    ParentIsFile {
        archive: PathBuf,
        entry: String,
        parent: String,
    },

    /// Links, devices, fifos, sockets and entries whose mode contradicts their name.
    #[error("{}: entry {entry:?}: {reason} (mode {mode:#o})", archive.display())]
    UnsupportedType {
        archive: PathBuf,
        entry: String,
        reason: &'static str,
        mode: u32,
    },

    #[error(
        "{}: entry {entry:?}: compression method {method} is not stored (0) or deflate (8)",
        archive.display()
    )]
    UnsupportedCompression {
        archive: PathBuf,
        entry: String,
        method: u16,
    },

    #[error("{}: entry {entry:?} is encrypted", archive.display())]
    Encrypted { archive: PathBuf, entry: String },

    /// The entry's local header is missing, damaged or disagrees with the central directory.
    #[error("{}: entry {entry:?}: local header: {detail}", archive.display())]
    LocalHeader {
        archive: PathBuf,
        entry: String,
        detail: String,
    },

    #[error("{}: entry {entry:?} overlaps {other}", archive.display())]
    Overlap {
        archive: PathBuf,
        entry: String,
        other: String,
    },

    #[error("{}: {count} entries, more than the limit of {max}", archive.display())]
    TooManyEntries {
        archive: PathBuf,
        /// Entries counted; counting may stop one past the limit.
        count: usize,
        max: usize,
    },

    /// A size limit was exceeded, either as declared in the headers or while inflating.
    #[error("{}: entry {entry:?}: {kind} {value} exceeds the limit of {max}", archive.display())]
    Limit {
        archive: PathBuf,
        entry: String,
        kind: LimitKind,
        value: u64,
        max: u64,
    },

    #[error(
        "{}: entry {entry:?} inflated to {actual} bytes but declares {declared}",
        archive.display()
    )]
    SizeMismatch {
        archive: PathBuf,
        entry: String,
        declared: u64,
        actual: u64,
    },

    #[error("{}: no file entry named {entry:?}", archive.display())]
    MissingEntry { archive: PathBuf, entry: String },

    /// Inflating or checksumming the entry's data failed: corrupt or forged data.
    #[error("{}: entry {entry:?}: cannot read data: {source}", archive.display())]
    Read {
        archive: PathBuf,
        entry: String,
        #[source]
        source: std::io::Error,
    },
}

/// What is wrong with an entry name. Names are refused, never repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("empty name")]
    Empty,
    #[error("not valid UTF-8")]
    InvalidUtf8,
    #[error("absolute path")]
    Absolute,
    #[error("drive letter")]
    DriveLetter,
    #[error("backslash")]
    Backslash,
    #[error("control character")]
    ControlCharacter,
    #[error("empty path component")]
    EmptyComponent,
    #[error("`.` component")]
    CurrentDir,
    #[error("`..` component")]
    ParentDir,
}

/// Which size budget an entry broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Inflated bytes of one entry.
    EntryBytes,
    /// Inflated bytes of all entries together (counted up to and including this one).
    TotalBytes,
    /// Inflated bytes per compressed byte of one entry.
    Ratio,
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitKind::EntryBytes => "inflated size",
            LimitKind::TotalBytes => "total inflated size",
            LimitKind::Ratio => "compression ratio",
        })
    }
}

/// How hostile names appear in messages: lossy UTF-8, later Debug-escaped by the formats.
pub(crate) fn display_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}
