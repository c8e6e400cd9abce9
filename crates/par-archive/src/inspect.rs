//! Opening an archive and checking every entry's metadata before any byte is inflated:
//! names, types, encryption, compression method, duplicates and collisions, agreement
//! between central and local headers, and overlap between entries.
//!
//! Everything downstream (listing, reading one entry, extracting) works on the [`Opened`]
//! value this produces, from the same open file handle, so what was checked is what is read.

use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use fs_err::File;
use zip::ZipArchive;

use crate::checks::{central_records, check_entries, check_names_together, check_overlaps};
use crate::error::ArchiveError;
use crate::limits::{check_declared, Limits};
use crate::meter::Meter;
use crate::names::EntryName;

/// The zip crate's reader over an open archive file.
pub(crate) type Zip = ZipArchive<BufReader<File>>;

/// One entry of an archive, as listed by [`list_entries`](crate::list_entries).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryInfo {
    /// The name as written in the archive; directories end with `/`.
    pub name: String,
    /// Inflated size declared by the central directory (checked again while inflating).
    pub size: u64,
    /// Compressed size declared by the central directory.
    pub compressed_size: u64,
    pub is_dir: bool,
    /// The permission bits extraction gives this entry (see `extract_to`).
    pub mode: u32,
}

/// An entry that passed every metadata check.
#[derive(Debug)]
pub(crate) struct Checked {
    /// Index in the zip crate's view of the archive.
    pub(crate) index: usize,
    pub(crate) name: EntryName,
    pub(crate) info: EntryInfo,
}

/// An archive whose metadata passed every check, with its reader still open.
pub(crate) struct Opened {
    pub(crate) path: PathBuf,
    zip: Zip,
    pub(crate) entries: Vec<Checked>,
}

/// Open an archive and validate every entry's *metadata* (names, types, duplicates,
/// overlap, declared sizes vs limits) without inflating. Returns the entries.
pub fn list_entries(apkg: &Path, limits: &Limits) -> Result<Vec<EntryInfo>, ArchiveError> {
    let opened = Opened::open(apkg, limits.max_entries)?;
    check_declared(apkg, opened.entries.iter().map(|e| &e.info), limits)?;
    Ok(opened.entries.into_iter().map(|e| e.info).collect())
}

impl Opened {
    /// Opens `apkg` and runs every check that needs no inflating, except the size limits,
    /// which differ between callers.
    pub(crate) fn open(apkg: &Path, max_entries: usize) -> Result<Opened, ArchiveError> {
        let file = File::open(apkg).map_err(|e| io_error(apkg, e))?;
        // A second handle for positional reads of raw headers; it shares no cursor state
        // that matters, because `pread` ignores the cursor.
        let raw = file.try_clone().map_err(|e| io_error(apkg, e))?;
        let zip = ZipArchive::new(BufReader::new(file)).map_err(|source| ArchiveError::NotZip {
            archive: apkg.to_owned(),
            source,
        })?;
        let records = central_records(apkg, &raw, &zip, max_entries)?;
        let (entries, spans) = check_entries(apkg, &raw, &zip, &records)?;
        check_names_together(apkg, &entries)?;
        check_overlaps(apkg, &entries, &spans, zip.central_directory_start())?;
        Ok(Opened {
            path: apkg.to_owned(),
            zip,
            entries,
        })
    }

    /// Streams entry `at` (an index into `entries`) through `meter` into `out`, then checks
    /// that exactly the declared number of bytes came out.
    pub(crate) fn inflate(
        &mut self,
        at: usize,
        meter: &mut Meter,
        out: &mut impl Write,
    ) -> Result<(), ArchiveError> {
        let Checked { index, info, .. } = &self.entries[at];
        let read_error = |source| ArchiveError::Read {
            archive: self.path.clone(),
            entry: info.name.clone(),
            source,
        };
        let mut data = self
            .zip
            .by_index(*index)
            .map_err(|e| read_error(io::Error::other(e)))?;
        let actual = meter
            .copy(&mut data, out, info.compressed_size)
            .map_err(|e| e.into_archive_error(&self.path, &info.name))?;
        if actual != info.size {
            return Err(ArchiveError::SizeMismatch {
                archive: self.path.clone(),
                entry: info.name.clone(),
                declared: info.size,
                actual,
            });
        }
        Ok(())
    }
}

pub(crate) fn io_error(apkg: &Path, source: io::Error) -> ArchiveError {
    ArchiveError::Io {
        archive: apkg.to_owned(),
        source,
    }
}
