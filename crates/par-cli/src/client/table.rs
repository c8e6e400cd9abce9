//! Human output: aligned columns, and JSON printed as the server sent it.

use std::io::Write;

use serde_json::Value;

/// Longest cell shown; longer text (descriptions, errors) is cut with an ellipsis.
const MAX_CELL: usize = 60;

pub(super) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(header: &[&'static str]) -> Self {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(super) fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| shorten(&c)).collect());
    }

    pub(super) fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        write_line(out, &header, &widths)?;
        for row in &self.rows {
            write_line(out, row, &widths)?;
        }
        Ok(())
    }
}

fn write_line(out: &mut dyn Write, cells: &[String], widths: &[usize]) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell); // no trailing blanks after the last column
        } else {
            line.push_str(&format!("{cell:<width$}  "));
        }
    }
    writeln!(out, "{}", line.trim_end())
}

fn shorten(text: &str) -> String {
    let one_line = text.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= MAX_CELL {
        return one_line;
    }
    let kept: String = one_line.chars().take(MAX_CELL - 1).collect();
    format!("{kept}…")
}

/// A JSON value as a cell: strings bare, null as `-`, lists joined by commas.
pub(super) fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(cell).collect();
            if parts.is_empty() {
                "-".into()
            } else {
                parts.join(",")
            }
        }
        other => other.to_string(),
    }
}

/// `value` as one line of JSON (`--json` output).
pub(super) fn print_json(value: &Value) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()
}

/// Writes a table to stdout.
pub(super) fn print(table: &Table) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    table.write(&mut out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_line_up_and_long_cells_are_cut() {
        let mut table = Table::new(&["ID", "DESCRIPTION"]);
        table.row(vec!["echo".into(), "x".repeat(100)]);
        table.row(vec!["echo-upper".into(), "short\nline".into()]);
        let mut out = Vec::new();
        table.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ID          DESCRIPTION");
        assert!(lines[1].ends_with('…') && lines[1].chars().count() == 12 + MAX_CELL);
        assert_eq!(lines[2], "echo-upper  short line");
    }

    #[test]
    fn json_values_become_cells() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(["invoke", "rest"])), "invoke,rest");
        assert_eq!(cell(&json!(3)), "3");
    }
}
