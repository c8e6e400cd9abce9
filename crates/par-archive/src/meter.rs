//! Counts inflated bytes while they stream and stops at the first byte over budget.
//!
//! This is the check that holds when the headers lie: a deflate stream can inflate to far
//! more than its declared size, so the decision is made on what actually comes out of the
//! decompressor, chunk by chunk, before the chunk is written anywhere.

use std::io::{self, Read, Write};
use std::path::Path;

use crate::error::{ArchiveError, LimitKind};
use crate::limits::{ratio_exceeded, Limits};

const CHUNK: usize = 64 * 1024;

/// The running budget of one extraction (or of one `read_entry`).
#[derive(Debug)]
pub(crate) struct Meter {
    max_entry: u64,
    max_total: u64,
    max_ratio: Option<u64>,
    total: u64,
}

/// Why a metered copy stopped.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// Inflating failed: corrupt data, bad checksum, or more bytes than declared.
    Read(io::Error),
    /// The destination refused the bytes.
    Write(io::Error),
    Limit {
        kind: LimitKind,
        value: u64,
        max: u64,
    },
}

impl Meter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Meter {
            max_entry: limits.max_entry_bytes,
            max_total: limits.max_total_bytes,
            max_ratio: Some(limits.max_ratio),
            total: 0,
        }
    }

    /// A budget for reading one entry into memory: `max_bytes` bounds the allocation, so no
    /// ratio limit is needed.
    pub(crate) fn single(max_bytes: u64) -> Self {
        Meter {
            max_entry: max_bytes,
            max_total: max_bytes,
            max_ratio: None,
            total: 0,
        }
    }

    /// Copies one entry's inflated bytes to `writer`, charging each chunk before writing it.
    /// Returns the number of bytes copied.
    pub(crate) fn copy(
        &mut self,
        reader: &mut impl Read,
        writer: &mut impl Write,
        compressed: u64,
    ) -> Result<u64, CopyError> {
        let mut buf = vec![0u8; CHUNK];
        let mut copied: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(copied),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
            };
            copied = copied.saturating_add(n as u64);
            self.charge(n as u64, copied, compressed)?;
            writer.write_all(&buf[..n]).map_err(CopyError::Write)?;
        }
    }

    /// Adds `n` bytes to the running total and checks every budget.
    fn charge(&mut self, n: u64, entry_bytes: u64, compressed: u64) -> Result<(), CopyError> {
        self.total = self.total.saturating_add(n);
        let limit = |kind, value, max| Err(CopyError::Limit { kind, value, max });
        if entry_bytes > self.max_entry {
            return limit(LimitKind::EntryBytes, entry_bytes, self.max_entry);
        }
        if self.total > self.max_total {
            return limit(LimitKind::TotalBytes, self.total, self.max_total);
        }
        if ratio_exceeded(self.max_ratio, entry_bytes, compressed) {
            let ratio = entry_bytes / compressed.max(1);
            return limit(LimitKind::Ratio, ratio, self.max_ratio.unwrap_or_default());
        }
        Ok(())
    }
}

impl CopyError {
    pub(crate) fn into_archive_error(self, archive: &Path, entry: &str) -> ArchiveError {
        let (archive, entry) = (archive.to_owned(), entry.to_owned());
        match self {
            CopyError::Read(source) => ArchiveError::Read {
                archive,
                entry,
                source,
            },
            CopyError::Write(source) => ArchiveError::Io { archive, source },
            CopyError::Limit { kind, value, max } => ArchiveError::Limit {
                archive,
                entry,
                kind,
                value,
                max,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that yields `len` zero bytes whatever any header says: the shape of a
    /// deflate bomb as seen after the decompressor.
    fn zeros(len: u64) -> impl Read {
        io::repeat(0).take(len)
    }

    fn limit_kind(result: Result<u64, CopyError>) -> Option<LimitKind> {
        match result {
            Ok(_) => None,
            Err(CopyError::Limit { kind, .. }) => Some(kind),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn counts_the_bytes_that_actually_stream() {
        let mut meter = Meter::single(1000);
        let mut out = Vec::new();
        let copied = meter.copy(&mut zeros(1000), &mut out, 10);
        assert_eq!(copied.unwrap(), 1000);
        assert_eq!(out.len(), 1000);
    }

    #[test]
    fn stops_an_entry_over_its_limit_without_writing_the_excess() {
        let mut meter = Meter::single(100_000);
        let mut out = Vec::new();
        let kind = limit_kind(meter.copy(&mut zeros(10 * 1024 * 1024), &mut out, 10));
        assert_eq!(kind, Some(LimitKind::EntryBytes));
        assert!(out.len() as u64 <= 100_000);
    }

    #[test]
    fn total_limit_spans_entries() {
        let limits = Limits {
            max_total_bytes: 150_000,
            max_ratio: u64::MAX,
            ..Limits::default()
        };
        let mut meter = Meter::new(&limits);
        let mut sink = io::sink();
        assert_eq!(
            limit_kind(meter.copy(&mut zeros(100_000), &mut sink, 1)),
            None
        );
        let second = meter.copy(&mut zeros(100_000), &mut sink, 1);
        assert_eq!(limit_kind(second), Some(LimitKind::TotalBytes));
    }

    #[test]
    fn ratio_is_checked_on_streamed_bytes() {
        let mut meter = Meter::new(&Limits::default());
        let mut sink = io::sink();
        // 1,000 compressed bytes may inflate to 200,000, not to 10 MiB.
        let kind = limit_kind(meter.copy(&mut zeros(10 * 1024 * 1024), &mut sink, 1000));
        assert_eq!(kind, Some(LimitKind::Ratio));
        let mut meter = Meter::new(&Limits::default());
        assert_eq!(
            limit_kind(meter.copy(&mut zeros(200_000), &mut sink, 1000)),
            None
        );
    }

    #[test]
    fn small_entries_are_exempt_from_the_ratio() {
        let mut meter = Meter::new(&Limits::default());
        let kind = limit_kind(meter.copy(&mut zeros(60_000), &mut io::sink(), 1));
        assert_eq!(kind, None);
    }
}
