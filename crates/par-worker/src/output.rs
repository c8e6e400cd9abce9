//! Worker stdout/stderr, forwarded line by line into the runtime's log, within the
//! package's log budget.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::log_budget::LogBudget;

/// Longest line logged; the rest of an over-long line is dropped (and the line says how
/// much) so a worker printing without newlines cannot make the host buffer without bound.
pub const MAX_LINE: usize = 8 * 1024;

pub fn forward<R>(reader: R, label: String, stream: &'static str, budget: Arc<LogBudget>)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut line = Vec::with_capacity(256);
        while let Some(cut) = read_capped_line(&mut reader, &mut line).await {
            let Some(text) = printable(&line, cut) else {
                continue;
            };
            if budget.admit() {
                tracing::info!(target: "par::worker_output", package = %label, stream, "{text}");
            }
        }
    });
}

/// The line as logged: trailing whitespace trimmed, a cut line marked; `None` if blank.
pub fn printable(line: &[u8], cut: usize) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    if text.is_empty() {
        return None;
    }
    if cut == 0 {
        return Some(text.to_string());
    }
    Some(format!("{text} [{cut} more bytes cut]"))
}

/// Reads up to the next newline into `line` (cleared first), keeping at most `MAX_LINE`
/// bytes. Returns how many bytes of the line were cut, or `None` at end of stream with
/// nothing read.
pub async fn read_capped_line<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> Option<usize> {
    line.clear();
    let mut saw_any = false;
    let mut cut = 0;
    loop {
        let chunk = match reader.fill_buf().await {
            Ok(chunk) if !chunk.is_empty() => chunk,
            _ => return saw_any.then_some(cut),
        };
        saw_any = true;
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..take.min(room)]);
        cut += take.saturating_sub(room);
        reader.consume(take);
        if done {
            return Some(cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caps_long_lines_and_splits_on_newlines() {
        let mut input = vec![b'x'; MAX_LINE * 3];
        input.extend_from_slice(b"\nshort\n");
        let mut reader = BufReader::new(&input[..]);
        let mut line = Vec::new();
        let cut = read_capped_line(&mut reader, &mut line).await;
        assert_eq!(cut, Some(MAX_LINE * 2 + 1));
        assert_eq!(line.len(), MAX_LINE);
        let shown = printable(&line, cut.unwrap()).unwrap();
        assert!(shown.ends_with(&format!("[{} more bytes cut]", MAX_LINE * 2 + 1)));
        assert_eq!(read_capped_line(&mut reader, &mut line).await, Some(0));
        assert_eq!(line, b"short\n");
        assert_eq!(read_capped_line(&mut reader, &mut line).await, None);
    }
}
