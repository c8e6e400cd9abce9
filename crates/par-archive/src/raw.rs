//! Reads zip header bytes directly, for the facts the zip crate hides or rewrites: the
//! central directory's own name bytes (the crate substitutes an Info-ZIP Unicode Path extra
//! field when present, and keeps only the last of duplicate names), the raw compression
//! method, and each entry's local header.
//!
//! Reads are positional (`pread`), so they never move the file cursor the zip crate uses.

use std::io;

use fs_err::os::unix::fs::FileExt;
use fs_err::File;

const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
/// Fixed part of a local file header; the name follows at offset 30.
const LOCAL_FIXED: usize = 30;
/// Fixed part of a central directory record; the name follows at offset 46.
const CENTRAL_FIXED: usize = 46;

/// One central directory record, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CentralRecord {
    pub(crate) name: Vec<u8>,
    pub(crate) flags: u16,
    pub(crate) method: u16,
    pub(crate) external_attr: u32,
}

/// The parts of a local file header this crate cross-checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalHeader {
    pub(crate) name: Vec<u8>,
    pub(crate) method: u16,
    /// Absolute offset of the entry's (compressed) data.
    pub(crate) data_start: u64,
}

/// Why a local header could not be used.
#[derive(Debug)]
pub(crate) enum LocalProblem {
    Unreadable(io::Error),
    BadSignature(u32),
}

impl std::fmt::Display for LocalProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalProblem::Unreadable(e) => write!(f, "truncated or unreadable: {e}"),
            LocalProblem::BadSignature(sig) => write!(f, "bad signature {sig:#010x}"),
        }
    }
}

fn le16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn read_vec(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// Walks the central directory from `start` while records carry the central signature,
/// reading at most `max` records.
pub(crate) fn read_central_records(
    file: &File,
    start: u64,
    max: usize,
) -> io::Result<Vec<CentralRecord>> {
    let mut records = Vec::new();
    let mut offset = start;
    while records.len() < max && has_signature(file, offset, CENTRAL_SIGNATURE)? {
        let fixed = read_vec(file, offset, CENTRAL_FIXED)?;
        let name_len = usize::from(le16(&fixed, 28));
        let extra_len = u64::from(le16(&fixed, 30));
        let comment_len = u64::from(le16(&fixed, 32));
        records.push(CentralRecord {
            name: read_vec(file, offset + CENTRAL_FIXED as u64, name_len)?,
            flags: le16(&fixed, 8),
            method: le16(&fixed, 10),
            external_attr: le32(&fixed, 38),
        });
        offset += CENTRAL_FIXED as u64 + name_len as u64 + extra_len + comment_len;
    }
    Ok(records)
}

/// Whether the four bytes at `offset` are `signature`; end of file counts as "no".
fn has_signature(file: &File, offset: u64, signature: u32) -> io::Result<bool> {
    let mut buf = [0u8; 4];
    match file.read_exact_at(&mut buf, offset) {
        Ok(()) => Ok(u32::from_le_bytes(buf) == signature),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads the local file header at `offset`.
pub(crate) fn read_local_header(file: &File, offset: u64) -> Result<LocalHeader, LocalProblem> {
    let fixed = read_vec(file, offset, LOCAL_FIXED).map_err(LocalProblem::Unreadable)?;
    let signature = le32(&fixed, 0);
    if signature != LOCAL_SIGNATURE {
        return Err(LocalProblem::BadSignature(signature));
    }
    let name_len = usize::from(le16(&fixed, 26));
    let extra_len = u64::from(le16(&fixed, 28));
    let name_at = offset + LOCAL_FIXED as u64;
    let name = read_vec(file, name_at, name_len).map_err(LocalProblem::Unreadable)?;
    Ok(LocalHeader {
        name,
        method: le16(&fixed, 8),
        data_start: name_at + name_len as u64 + extra_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        let file = File::open(tmp.path()).unwrap();
        (tmp, file)
    }

    fn local_header(name: &[u8], extra: &[u8], method: u16) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&LOCAL_SIGNATURE.to_le_bytes());
        h.extend_from_slice(&[20, 0, 0, 0]);
        h.extend_from_slice(&method.to_le_bytes());
        h.extend_from_slice(&[0; 16]);
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        h.extend_from_slice(name);
        h.extend_from_slice(extra);
        h
    }

    #[test]
    fn reads_name_method_and_data_offset_of_a_local_header() {
        let mut bytes = b"junk".to_vec();
        bytes.extend(local_header(b"agent.yaml", b"xyz", 8));
        bytes.extend_from_slice(b"data");
        let (_tmp, file) = file_with(&bytes);
        let header = read_local_header(&file, 4).unwrap();
        assert_eq!(header.name, b"agent.yaml");
        assert_eq!(header.method, 8);
        assert_eq!(header.data_start, 4 + 30 + 10 + 3);
    }

    #[test]
    fn a_wrong_signature_or_a_short_file_is_reported() {
        let (_tmp, file) = file_with(&local_header(b"a", b"", 0));
        assert!(matches!(
            read_local_header(&file, 1),
            Err(LocalProblem::BadSignature(_))
        ));
        assert!(matches!(
            read_local_header(&file, 20),
            Err(LocalProblem::Unreadable(_))
        ));
        let cut = &local_header(b"long-name", b"", 0)[..33];
        let (_tmp2, short) = file_with(cut);
        assert!(matches!(
            read_local_header(&short, 0),
            Err(LocalProblem::Unreadable(_))
        ));
    }

    #[test]
    fn central_walk_stops_at_the_first_other_signature() {
        let mut record = CENTRAL_SIGNATURE.to_le_bytes().to_vec();
        record.extend_from_slice(&[0; 4]);
        record.extend_from_slice(&0x0800u16.to_le_bytes()); // flags
        record.extend_from_slice(&8u16.to_le_bytes()); // method
        record.extend_from_slice(&[0; 16]);
        record.extend_from_slice(&1u16.to_le_bytes()); // name length
        record.extend_from_slice(&[0; 8]);
        record.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        record.extend_from_slice(&[0; 4]);
        record.push(b'x');
        let mut bytes = [record.clone(), record].concat();
        bytes.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        let (_tmp, file) = file_with(&bytes);
        let records = read_central_records(&file, 0, usize::MAX).unwrap();
        let expected = CentralRecord {
            name: b"x".to_vec(),
            flags: 0x0800,
            method: 8,
            external_attr: 0o100644 << 16,
        };
        assert_eq!(records, vec![expected.clone(), expected]);
        assert_eq!(read_central_records(&file, 0, 1).unwrap().len(), 1);
    }
}
