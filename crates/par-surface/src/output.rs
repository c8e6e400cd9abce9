//! The app process's stdout/stderr, forwarded line by line into the runtime's log, with
//! the last lines of stderr kept for startup error reports.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

/// Longest line logged; the rest of an over-long line is dropped so a process printing
/// without newlines cannot make the host buffer without bound.
const MAX_LINE: usize = 8 * 1024;
/// Lines of stderr kept for error reports (an import error's traceback fits).
const TAIL_LINES: usize = 40;

/// The last lines of one stream, and whether the stream has ended.
#[derive(Clone)]
pub struct Tail {
    lines: Arc<Mutex<VecDeque<String>>>,
    closed: watch::Receiver<bool>,
}

impl Tail {
    /// Waits (at most `limit`) for the stream to end, so the tail is complete.
    pub async fn finished(&self, limit: std::time::Duration) {
        let mut closed = self.closed.clone();
        let _ = tokio::time::timeout(limit, closed.wait_for(|c| *c)).await;
    }

    pub fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().expect("tail poisoned");
        lines.iter().cloned().collect()
    }
}

/// Forwards `reader` into the log as `target: par::surface_output` events, and keeps its
/// last lines.
pub fn forward<R>(reader: R, label: String, stream: &'static str) -> Tail
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let lines = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let (closed_tx, closed) = watch::channel(false);
    let tail = Tail {
        lines: lines.clone(),
        closed,
    };
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut line = Vec::with_capacity(256);
        while read_capped_line(&mut reader, &mut line).await {
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if text.is_empty() {
                continue;
            }
            tracing::info!(target: "par::surface_output", package = %label, stream, "{text}");
            let mut kept = lines.lock().expect("tail poisoned");
            if kept.len() == TAIL_LINES {
                kept.pop_front();
            }
            kept.push_back(text.to_string());
        }
        let _ = closed_tx.send(true);
    });
    tail
}

/// Reads up to the next newline into `line` (cleared first), keeping at most `MAX_LINE`
/// bytes. Returns false at end of stream with nothing read.
async fn read_capped_line<R: AsyncBufReadExt + Unpin>(reader: &mut R, line: &mut Vec<u8>) -> bool {
    line.clear();
    let mut saw_any = false;
    loop {
        let chunk = match reader.fill_buf().await {
            Ok(chunk) if !chunk.is_empty() => chunk,
            _ => return saw_any,
        };
        saw_any = true;
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..take.min(room)]);
        reader.consume(take);
        if done {
            return true;
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
        assert!(read_capped_line(&mut reader, &mut line).await);
        assert_eq!(line.len(), MAX_LINE);
        assert!(read_capped_line(&mut reader, &mut line).await);
        assert_eq!(line, b"short\n");
        assert!(!read_capped_line(&mut reader, &mut line).await);
    }

    #[tokio::test]
    async fn keeps_only_the_last_lines() {
        let input: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = forward(
            std::io::Cursor::new(input.into_bytes()),
            "t".into(),
            "stderr",
        );
        tail.finished(std::time::Duration::from_secs(5)).await;
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last().unwrap(), "line 99");
    }
}
