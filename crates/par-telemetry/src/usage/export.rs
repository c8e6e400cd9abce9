//! Export formats for `par usage export`: CSV (RFC 4180) and JSON Lines.

use std::io::{BufWriter, Write};
use std::str::FromStr;

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use super::{UsageError, UsageRecord};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// A header row, then one row per record; `reported` is a JSON object in one cell.
    /// Fields are quoted when needed and kept verbatim: no spreadsheet-formula escaping,
    /// so the export round-trips exactly.
    Csv,
    /// One JSON object per line, as in `GET /runtime/usage`.
    Jsonl,
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" => Ok(ExportFormat::Jsonl),
            other => Err(format!(
                "unknown export format {other:?} (expected csv or jsonl)"
            )),
        }
    }
}

const CSV_HEADER: [&str; 13] = [
    "request_id",
    "caller_subject",
    "caller_client_id",
    "tenant",
    "agent",
    "version",
    "started_at",
    "duration_ms",
    "outcome",
    "bytes_in",
    "bytes_out",
    "reported",
    "caller_agent",
];

/// Writes records one at a time in a format.
pub(crate) struct Exporter<W: Write> {
    format: ExportFormat,
    out: BufWriter<W>,
    written: u64,
}

impl<W: Write> Exporter<W> {
    pub(crate) fn start(format: ExportFormat, out: W) -> Result<Self, UsageError> {
        let mut exporter = Exporter {
            format,
            out: BufWriter::new(out),
            written: 0,
        };
        if format == ExportFormat::Csv {
            exporter.csv_row(CSV_HEADER.iter().map(|name| (*name).to_owned()))?;
        }
        Ok(exporter)
    }

    pub(crate) fn write(&mut self, record: &UsageRecord) -> Result<(), UsageError> {
        match self.format {
            ExportFormat::Csv => self.csv_row(csv_fields(record))?,
            ExportFormat::Jsonl => {
                serde_json::to_writer(&mut self.out, record).map_err(std::io::Error::from)?;
                self.out.write_all(b"\n")?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Flushes and returns the number of records written.
    pub(crate) fn finish(mut self) -> Result<u64, UsageError> {
        self.out.flush()?;
        Ok(self.written)
    }

    fn csv_row(&mut self, fields: impl IntoIterator<Item = String>) -> std::io::Result<()> {
        for (index, field) in fields.into_iter().enumerate() {
            if index > 0 {
                self.out.write_all(b",")?;
            }
            self.out.write_all(csv_escape(&field).as_bytes())?;
        }
        self.out.write_all(b"\r\n")
    }
}

fn csv_fields(record: &UsageRecord) -> [String; 13] {
    let optional = |value: &Option<String>| value.clone().unwrap_or_default();
    [
        record.request_id.clone(),
        optional(&record.caller_subject),
        optional(&record.caller_client_id),
        optional(&record.tenant),
        record.agent.clone(),
        record.version.clone(),
        record.started_at.format(&Rfc3339).unwrap_or_default(),
        record.duration_ms.to_string(),
        record.outcome.clone(),
        record.bytes_in.to_string(),
        record.bytes_out.to_string(),
        serde_json::Value::Object(record.reported.clone()).to_string(),
        optional(&record.caller_agent),
    ]
}

/// RFC 4180: a field with a comma, quote, line break or edge space is quoted, with
/// quotes doubled.
fn csv_escape(field: &str) -> std::borrow::Cow<'_, str> {
    let needs_quotes =
        field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ');
    if needs_quotes {
        format!("\"{}\"", field.replace('"', "\"\"")).into()
    } else {
        field.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_escape("plain"), "plain");
        assert_eq!(csv_escape("a,b"), "\"a,b\"");
        assert_eq!(csv_escape("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_escape("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_escape("cr\r"), "\"cr\r\"");
        assert_eq!(csv_escape(" pad"), "\" pad\"");
    }

    #[test]
    fn formats_parse_from_cli_words() {
        assert_eq!("csv".parse::<ExportFormat>(), Ok(ExportFormat::Csv));
        assert_eq!("jsonl".parse::<ExportFormat>(), Ok(ExportFormat::Jsonl));
        assert!("xml".parse::<ExportFormat>().is_err());
    }
}
