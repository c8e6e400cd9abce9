//! The app process's stdout/stderr, forwarded line by line into the runtime's log, with
//! the last lines of stderr kept for startup error reports.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, BufReader};
use tokio::sync::watch;

// Lines are read with the worker's capped reader: an over-long line is cut at
// `par_worker::output::MAX_LINE` so a process printing without newlines cannot make the
// host buffer without bound.
use par_worker::log_budget::LogBudget;
use par_worker::output::{printable, read_capped_line};
/// Lines of stderr kept for error reports (an import error's traceback fits).
const TAIL_LINES: usize = 40;

/// The last lines of one stream, and whether the stream has ended.
#[derive(Clone)]
pub(crate) struct Tail {
    lines: Arc<Mutex<VecDeque<String>>>,
    closed: watch::Receiver<bool>,
}

impl Tail {
    /// Waits (at most `limit`) for the stream to end, so the tail is complete.
    pub(crate) async fn finished(&self, limit: std::time::Duration) {
        let mut closed = self.closed.clone();
        let _ = tokio::time::timeout(limit, closed.wait_for(|c| *c)).await;
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().expect("tail poisoned");
        lines.iter().cloned().collect()
    }
}

/// Forwards `reader` into the log as `target: par::surface_output` events (within the
/// package's log budget), and keeps its last lines.
pub(crate) fn forward<R>(
    reader: R,
    label: String,
    stream: &'static str,
    budget: Arc<LogBudget>,
) -> Tail
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
        while let Some(cut) = read_capped_line(&mut reader, &mut line).await {
            let Some(text) = printable(&line, cut) else {
                continue;
            };
            if budget.admit() {
                tracing::info!(target: "par::surface_output", package = %label, stream, "{text}");
            }
            // The tail is kept whatever the budget: it is bounded, and a startup error
            // report needs it.
            let mut kept = lines.lock().expect("tail poisoned");
            if kept.len() == TAIL_LINES {
                kept.pop_front();
            }
            kept.push_back(text);
        }
        let _ = closed_tx.send(true);
    });
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_only_the_last_lines() {
        let input: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = forward(
            std::io::Cursor::new(input.into_bytes()),
            "t".into(),
            "stderr",
            LogBudget::unlimited("t"),
        );
        tail.finished(std::time::Duration::from_secs(5)).await;
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last().unwrap(), "line 99");
    }
}
