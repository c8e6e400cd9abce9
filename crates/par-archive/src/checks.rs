//! The metadata checks behind [`Opened::open`](crate::inspect::Opened::open): each entry
//! on its own (name, encryption, method, type, local header), then the entries together
//! (duplicates, collisions, files used as parents, overlapping bytes).

use std::ops::Range;
use std::path::Path;

use fs_err::File;
use zip::read::ZipArchiveMetadata;

use crate::error::{display_name, ArchiveError};
use crate::inspect::{io_error, Checked, EntryInfo, Zip};
use crate::mode::{check_type, file_permissions, unix_mode, DIR_MODE};
use crate::names::{parse_name, EntryName};
use crate::raw::{read_central_records, read_local_header, CentralRecord};
use crate::tree::{check_tree, TreeProblem};

/// General-purpose flag bits for traditional (bit 0) and strong (bit 6) encryption.
const ENCRYPTION_FLAGS: u16 = 0x0001 | 0x0040;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATE: u16 = 8;

fn malformed(apkg: &Path, detail: String) -> ArchiveError {
    ArchiveError::Malformed {
        archive: apkg.to_owned(),
        detail,
    }
}

/// Reads the central directory's own records (at most `max_entries`) and makes sure the
/// zip crate saw the same entries: it silently keeps only the last of duplicate names, and
/// reads only as many records as the end record counts while other readers go by the
/// directory's size.
pub(crate) fn central_records(
    apkg: &Path,
    raw: &File,
    zip: &Zip,
    max_entries: usize,
) -> Result<Vec<CentralRecord>, ArchiveError> {
    let too_many = |count| ArchiveError::TooManyEntries {
        archive: apkg.to_owned(),
        count,
        max: max_entries,
    };
    if zip.len() > max_entries {
        return Err(too_many(zip.len()));
    }
    // Duplicates hide records from `zip.len()`; reading one record past the limit is
    // enough to refuse.
    let start = zip.central_directory_start();
    let bound = max_entries.saturating_add(1);
    let records = read_central_records(raw, start, bound).map_err(|e| io_error(apkg, e))?;
    if records.len() > max_entries {
        return Err(too_many(records.len()));
    }
    if zip.has_duplicate_names() {
        return Err(match first_duplicate(&records) {
            Some(entry) => ArchiveError::Duplicate {
                archive: apkg.to_owned(),
                entry,
            },
            None => malformed(apkg, "entries share a name given by an extra field".into()),
        });
    }
    if records.len() != zip.len() {
        let detail = format!(
            "the end record counts {} entries, the directory holds {}",
            zip.len(),
            records.len()
        );
        return Err(malformed(apkg, detail));
    }
    Ok(records)
}

fn first_duplicate(records: &[CentralRecord]) -> Option<String> {
    let mut seen = std::collections::HashSet::with_capacity(records.len());
    let dup = records.iter().find(|r| !seen.insert(r.name.as_slice()))?;
    Some(display_name(&dup.name))
}

/// Checks each entry on its own; returns the entries and the byte range each occupies.
pub(crate) fn check_entries(
    apkg: &Path,
    raw: &File,
    zip: &Zip,
    records: &[CentralRecord],
) -> Result<(Vec<Checked>, Vec<Range<u64>>), ArchiveError> {
    let metadata = zip.metadata();
    let mut entries = Vec::with_capacity(records.len());
    let mut spans = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let sizes = crate_view(apkg, &metadata, index, record)?;
        let (name, info) = check_record(apkg, record, &sizes)?;
        spans.push(local_span(apkg, raw, record, &sizes, &info.name)?);
        entries.push(Checked { index, name, info });
    }
    Ok((entries, spans))
}

/// The zip crate's reading of entry `index`, after checking it is the entry of `record`:
/// the crate replaces a name with an Info-ZIP Unicode Path extra field when one is present,
/// and then the name it would extract differs from the one that was checked.
fn crate_view(
    apkg: &Path,
    metadata: &ZipArchiveMetadata,
    index: usize,
    record: &CentralRecord,
) -> Result<Sizes, ArchiveError> {
    let entry = metadata
        .entry(index)
        .map_err(|source| ArchiveError::NotZip {
            archive: apkg.to_owned(),
            source,
        })?;
    if entry.name_raw() != record.name.as_slice() {
        let (name, replaced) = (display_name(&record.name), display_name(entry.name_raw()));
        let detail = format!("entry {name:?}: name replaced by {replaced:?} from an extra field");
        return Err(malformed(apkg, detail));
    }
    Ok(Sizes {
        header_start: entry.header_start(),
        compressed: entry.compressed_size(),
        inflated: entry.size(),
    })
}

/// What the zip crate read from the central directory (with any Zip64 fields applied).
struct Sizes {
    header_start: u64,
    compressed: u64,
    inflated: u64,
}

/// Checks one central record's name, flags, method and type.
fn check_record(
    apkg: &Path,
    record: &CentralRecord,
    sizes: &Sizes,
) -> Result<(EntryName, EntryInfo), ArchiveError> {
    let archive = apkg.to_owned();
    let entry = display_name(&record.name);
    let name = parse_name(&record.name).map_err(|problem| ArchiveError::UnsafeName {
        archive: archive.clone(),
        entry: entry.clone(),
        problem,
    })?;
    if record.flags & ENCRYPTION_FLAGS != 0 {
        return Err(ArchiveError::Encrypted { archive, entry });
    }
    if !matches!(record.method, METHOD_STORED | METHOD_DEFLATE) {
        let method = record.method;
        return Err(ArchiveError::UnsupportedCompression {
            archive,
            entry,
            method,
        });
    }
    let mode = unix_mode(record.external_attr);
    let mut type_ok = check_type(mode, name.is_dir);
    if type_ok.is_ok() && name.is_dir && sizes.inflated > 0 {
        type_ok = Err("directory entry with data");
    }
    if let Err(reason) = type_ok {
        return Err(ArchiveError::UnsupportedType {
            archive,
            entry,
            reason,
            mode,
        });
    }
    let info = EntryInfo {
        name: name.name.clone(),
        size: sizes.inflated,
        compressed_size: sizes.compressed,
        is_dir: name.is_dir,
        mode: if name.is_dir {
            DIR_MODE
        } else {
            file_permissions(mode)
        },
    };
    Ok((name, info))
}

/// Reads the entry's local header, refuses it unless it agrees with the central record,
/// and returns the bytes the entry occupies: from its local header to the end of its data.
fn local_span(
    apkg: &Path,
    raw: &File,
    record: &CentralRecord,
    sizes: &Sizes,
    entry: &str,
) -> Result<Range<u64>, ArchiveError> {
    let fail = |detail: String| ArchiveError::LocalHeader {
        archive: apkg.to_owned(),
        entry: entry.to_owned(),
        detail,
    };
    let local = read_local_header(raw, sizes.header_start).map_err(|p| fail(p.to_string()))?;
    if local.name != record.name {
        let local_name = display_name(&local.name);
        return Err(fail(format!(
            "name {local_name:?} differs from the central directory's"
        )));
    }
    if local.method != record.method {
        let (local, central) = (local.method, record.method);
        return Err(fail(format!(
            "compression method {local} differs from the central directory's {central}"
        )));
    }
    match local.data_start.checked_add(sizes.compressed) {
        Some(end) => Ok(sizes.header_start..end),
        None => Err(fail("data end lies beyond any file".into())),
    }
}

/// Applies the rules that concern the set of names rather than one name.
pub(crate) fn check_names_together(apkg: &Path, entries: &[Checked]) -> Result<(), ArchiveError> {
    let names: Vec<&EntryName> = entries.iter().map(|e| &e.name).collect();
    let archive = apkg.to_owned();
    check_tree(&names).map_err(|problem| match problem {
        TreeProblem::Duplicate { entry } => ArchiveError::Duplicate { archive, entry },
        TreeProblem::Collision { entry, other } => ArchiveError::CaseCollision {
            archive,
            entry,
            other,
        },
        TreeProblem::ParentIsFile { entry, parent } => ArchiveError::ParentIsFile {
            archive,
            entry,
            parent,
        },
    })
}

/// Refuses entries whose bytes overlap another entry's or the central directory. Overlap
/// is how a 15 KB file lists thousands of entries that all inflate the same bomb.
pub(crate) fn check_overlaps(
    apkg: &Path,
    entries: &[Checked],
    spans: &[Range<u64>],
    directory_start: u64,
) -> Result<(), ArchiveError> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| (spans[i].start, spans[i].end));
    let overlap = |entry: usize, other: String| ArchiveError::Overlap {
        archive: apkg.to_owned(),
        entry: entries[entry].info.name.clone(),
        other,
    };
    for pair in order.windows(2) {
        let (first, second) = (pair[0], pair[1]);
        if spans[first].end > spans[second].start {
            return Err(overlap(
                second,
                format!("entry {:?}", entries[first].info.name),
            ));
        }
    }
    // Sorted and disjoint spans end in increasing order, so the last one reaches furthest.
    match order.last() {
        Some(&last) if spans[last].end > directory_start => {
            Err(overlap(last, "the central directory".into()))
        }
        _ => Ok(()),
    }
}
