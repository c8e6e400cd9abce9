//! Log output: JSON lines for machines, or pretty text for people; the filter can be
//! changed while running (`PUT /runtime/log-level`).

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use par_http::LogControl;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer};

use par_core::redact::Redactor;

use crate::cli::LogFormat;
use crate::env_names as env;

/// Lines waiting for the writer thread; a full queue makes loggers wait (no line is lost).
/// The queue's slots are allocated up front, so it is kept modest.
const QUEUE_LINES: usize = 4096;
/// How long shutdown waits for queued lines to be written.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// Installs the global subscriber and returns the handle that changes its filter, and the
/// guard that writes out queued lines when dropped (keep it until the process ends).
/// Every line passes through `redactor` before it is written.
pub(crate) fn init(format: Option<LogFormat>, redactor: Redactor) -> (LogControl, LogGuard) {
    let (queue, lines) = mpsc::sync_channel(QUEUE_LINES);
    std::thread::Builder::new()
        .name("par-log".into())
        .spawn(move || write_lines(lines, redactor))
        .expect("log writer thread");
    let filter = EnvFilter::try_from_env(env::LOG_LEVEL).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let output = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(QueuedStdout(queue.clone()))
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(QueuedStdout(queue.clone()))
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .init();
    let control: LogControl = Arc::new(move |level: &str| {
        let filter =
            EnvFilter::try_new(level).map_err(|e| format!("bad log filter '{level}': {e}"))?;
        handle.reload(filter).map_err(|e| e.to_string())
    });
    (control, LogGuard(queue))
}

enum Message {
    Line(Vec<u8>),
    /// Write out everything queued before this, then answer.
    Flush(SyncSender<()>),
}

/// Writes queued lines out when dropped.
pub(crate) struct LogGuard(SyncSender<Message>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        let (done, flushed) = mpsc::sync_channel(1);
        if self.0.send(Message::Flush(done)).is_ok() {
            let _ = flushed.recv_timeout(FLUSH_WAIT);
        }
    }
}

/// After a write the writer sleeps this long and then takes what arrived, instead of
/// blocking on the queue: a steady stream of lines (one per call) is written in batches
/// without a wake of this thread per line, which cost a lone caller two context switches
/// per call. A queue found empty after the pause is waited on again (no wake-ups while
/// nothing is logged); a line may reach stdout this much later.
const LINGER: Duration = Duration::from_millis(5);

/// The writer thread: redaction and the `write(2)` happen here, off the request path, and
/// a burst of lines shares one write.
fn write_lines(lines: Receiver<Message>, redactor: Redactor) {
    // Not locked for the thread's life: anything else printing to stdout must not hang.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    while let Ok(first) = lines.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            write_message(&mut out, &redactor, message);
            // The queue is empty: flush, pause, and go on if lines came meanwhile.
            next = lines.try_recv().ok().or_else(|| {
                let _ = out.flush();
                std::thread::sleep(LINGER);
                lines.try_recv().ok()
            });
        }
    }
}

fn write_message(out: &mut impl Write, redactor: &Redactor, message: Message) {
    match message {
        Message::Line(line) => {
            let text = String::from_utf8_lossy(&line);
            let _ = out.write_all(redactor.redact(&text).as_bytes());
        }
        Message::Flush(done) => {
            let _ = out.flush();
            let _ = done.send(());
        }
    }
}

/// Hands out one buffer per log event; the whole buffer is queued on drop and redacted by
/// the writer thread, so a secret split across `write` calls is still caught.
struct QueuedStdout(SyncSender<Message>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueuedStdout {
    type Writer = QueuedLine;

    fn make_writer(&'a self) -> Self::Writer {
        QueuedLine {
            queue: self.0.clone(),
            buffer: Vec::with_capacity(256),
        }
    }
}

struct QueuedLine {
    queue: SyncSender<Message>,
    buffer: Vec<u8>,
}

impl std::io::Write for QueuedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for QueuedLine {
    fn drop(&mut self) {
        let line = std::mem::take(&mut self.buffer);
        let _ = self.queue.send(Message::Line(line));
    }
}
