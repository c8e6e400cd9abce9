//! Archive builders for the tests: `zip::ZipWriter` for ordinary archives, and a small
//! hand-written zip encoder (`RawEntry`, `raw_zip`) for the archives no honest writer
//! produces: names it would refuse, headers that disagree, entries that share bytes.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

pub(crate) const UNIX_FILE: u32 = 0o100_644 << 16;
pub(crate) const UNIX_DIR: u32 = (0o040_755 << 16) | 0x10;
/// "Version made by": Unix (3), spec 2.0.
const MADE_BY_UNIX: u16 = (3 << 8) | 20;
const UTF8_FLAG: u16 = 0x0800;

/// A scratch directory holding the archive under test.
pub(crate) struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes `bytes` as `name` in the scratch directory.
    pub(crate) fn apkg(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs_err::write(&path, bytes).unwrap();
        path
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Names of everything directly inside `dir`, sorted.
pub(crate) fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Options for a deflated file entry with the given permission bits.
pub(crate) fn deflated(perms: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(perms)
}

/// Builds an archive with `zip::ZipWriter`; `build` adds the entries.
pub(crate) fn zip_with(
    build: impl FnOnce(&mut ZipWriter<Cursor<Vec<u8>>>) -> zip::result::ZipResult<()>,
) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    build(&mut writer).unwrap();
    writer.finish().unwrap().into_inner()
}

/// An archive of deflated files with mode 0o644.
pub(crate) fn zip_files(files: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with(|w| {
        for (name, data) in files {
            w.start_file(*name, deflated(0o644))?;
            w.write_all(data)?;
        }
        Ok(())
    })
}

/// The raw deflate stream for `data`, taken from an archive the zip crate wrote.
pub(crate) fn deflate(data: &[u8]) -> Vec<u8> {
    let bytes = zip_files(&[("x", data)]);
    let mut archive = ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut raw = archive.by_index_raw(0).unwrap();
    let mut out = Vec::new();
    raw.read_to_end(&mut out).unwrap();
    out
}

/// One entry of a hand-built archive. Fields left at their defaults describe an honest
/// stored file; tests change the one field under test.
#[derive(Clone)]
pub(crate) struct RawEntry {
    /// Name in the central directory.
    pub name: Vec<u8>,
    /// Name in the local header; `None` means the same as `name`.
    pub local_name: Option<Vec<u8>>,
    /// Bytes as stored in the archive (already deflated when `method` is 8).
    pub data: Vec<u8>,
    /// Declared inflated size.
    pub size: u64,
    pub crc: u32,
    pub method: u16,
    /// Method written in the local header; `None` means the same as `method`.
    pub local_method: Option<u16>,
    pub flags: u16,
    pub made_by: u16,
    pub external_attr: u32,
    /// Declared compressed size; `None` means `data.len()`.
    pub compressed_size: Option<u32>,
    /// Point this central record at entry `k`'s local header instead of writing one.
    pub share_local_of: Option<usize>,
    /// Extra fields of the central record.
    pub central_extra: Vec<u8>,
}

impl RawEntry {
    /// A stored file holding `data`.
    pub(crate) fn file(name: impl AsRef<[u8]>, data: &[u8]) -> RawEntry {
        let name = name.as_ref().to_vec();
        let flags = if name.is_ascii() { 0 } else { UTF8_FLAG };
        RawEntry {
            name,
            local_name: None,
            data: data.to_vec(),
            size: data.len() as u64,
            crc: crc32(data),
            method: 0,
            local_method: None,
            flags,
            made_by: MADE_BY_UNIX,
            external_attr: UNIX_FILE,
            compressed_size: None,
            share_local_of: None,
            central_extra: Vec::new(),
        }
    }

    /// A directory entry (`name` should end with `/`).
    pub(crate) fn dir(name: &str) -> RawEntry {
        RawEntry {
            external_attr: UNIX_DIR,
            ..RawEntry::file(name, b"")
        }
    }

    /// A deflated file holding `data`.
    pub(crate) fn deflated(name: &str, data: &[u8]) -> RawEntry {
        RawEntry {
            method: 8,
            data: deflate(data),
            ..RawEntry::file(name, data)
        }
    }

    pub(crate) fn with_attr(mut self, external_attr: u32) -> RawEntry {
        self.external_attr = external_attr;
        self
    }
}

/// Encodes `entries` as a zip archive: local records in order, then the central directory.
pub(crate) fn raw_zip(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets: Vec<u32> = Vec::new();
    for entry in entries {
        match entry.share_local_of {
            Some(k) => offsets.push(offsets[k]),
            None => {
                offsets.push(out.len() as u32);
                write_local(&mut out, entry);
            }
        }
    }
    let directory_start = out.len() as u32;
    for (entry, offset) in entries.iter().zip(&offsets) {
        write_central(&mut out, entry, *offset);
    }
    let directory_size = out.len() as u32 - directory_start;
    write_end(
        &mut out,
        entries.len() as u16,
        directory_size,
        directory_start,
    );
    out
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Version needed, flags, method, time, date, crc, sizes: shared by both header kinds.
fn put_common(out: &mut Vec<u8>, entry: &RawEntry, method: u16) {
    put16(out, 20);
    put16(out, entry.flags);
    put16(out, method);
    put16(out, 0); // time
    put16(out, 0x21); // 1980-01-01
    put32(out, entry.crc);
    put32(
        out,
        entry.compressed_size.unwrap_or(entry.data.len() as u32),
    );
    put32(out, entry.size as u32);
}

fn write_local(out: &mut Vec<u8>, entry: &RawEntry) {
    let name = entry.local_name.as_ref().unwrap_or(&entry.name);
    put32(out, 0x0403_4b50);
    put_common(out, entry, entry.local_method.unwrap_or(entry.method));
    put16(out, name.len() as u16);
    put16(out, 0);
    out.extend_from_slice(name);
    out.extend_from_slice(&entry.data);
}

fn write_central(out: &mut Vec<u8>, entry: &RawEntry, offset: u32) {
    put32(out, 0x0201_4b50);
    put16(out, entry.made_by);
    put_common(out, entry, entry.method);
    put16(out, entry.name.len() as u16);
    put16(out, entry.central_extra.len() as u16);
    put16(out, 0); // comment
    put16(out, 0); // disk
    put16(out, 0); // internal attributes
    put32(out, entry.external_attr);
    put32(out, offset);
    out.extend_from_slice(&entry.name);
    out.extend_from_slice(&entry.central_extra);
}

/// An Info-ZIP Unicode Path extra field (0x7075) claiming `name` for an entry whose
/// header name is `header_name`.
pub(crate) fn unicode_path_extra(header_name: &[u8], name: &str) -> Vec<u8> {
    let mut field = Vec::new();
    put16(&mut field, 0x7075);
    put16(&mut field, (1 + 4 + name.len()) as u16);
    field.push(1);
    put32(&mut field, crc32(header_name));
    field.extend_from_slice(name.as_bytes());
    field
}

fn write_end(out: &mut Vec<u8>, count: u16, size: u32, start: u32) {
    put32(out, 0x0605_4b50);
    put16(out, 0);
    put16(out, 0);
    put16(out, count);
    put16(out, count);
    put32(out, size);
    put32(out, start);
    put16(out, 0);
}

/// CRC-32 (IEEE), bit by bit: slow and obviously right, which is what a test wants.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[test]
fn the_raw_encoder_writes_archives_the_zip_crate_reads() {
    let bytes = raw_zip(&[
        RawEntry::file("a.txt", b"hello"),
        RawEntry::deflated("b.txt", b"world"),
    ]);
    let mut archive = ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut text = String::new();
    archive
        .by_name("b.txt")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "world");
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}
