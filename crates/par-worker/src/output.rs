//! Worker stdout/stderr, forwarded line by line into the runtime's log.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Longest line logged; the rest of an over-long line is dropped so a worker printing
/// without newlines cannot make the host buffer without bound.
pub const MAX_LINE: usize = 8 * 1024;

pub fn forward<R>(reader: R, label: String, stream: &'static str)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut line = Vec::with_capacity(256);
        while read_capped_line(&mut reader, &mut line).await {
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if !text.is_empty() {
                tracing::info!(target: "par::worker_output", package = %label, stream, "{text}");
            }
        }
    });
}

/// Reads up to the next newline into `line` (cleared first), keeping at most `MAX_LINE`
/// bytes. Returns false at end of stream with nothing read.
pub async fn read_capped_line<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> bool {
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
}
