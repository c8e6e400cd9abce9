//! Writing a command's output: a reader that closed the pipe (`par inspect F | head`) is
//! not an error, so every command exits quietly (status 0) when its output goes away,
//! instead of panicking as `println!` does.

use std::io::{self, Write};
use std::process::ExitCode;

/// Runs `print` against locked stdout and flushes; a closed pipe ends the command quietly.
pub(crate) fn to_stdout(print: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> ExitCode {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match print(&mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("par: cannot write output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// True when `error` (a message from an I/O error deeper down) is a closed pipe.
pub(crate) fn is_broken_pipe(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::BrokenPipe
}
