//! Client commands against a running `par serve`: `par agents`, `invoke`, `runs`, `load`,
//! `unload`, `usage`. Each prints a human table (or JSON with `--json`) and exits with a
//! documented code (docs/cli.md): 0 ok, 1 the server refused or the call failed, 2 bad
//! usage, 3 the server cannot be reached, 4 not found, 5 credentials refused.

mod agents;
pub(crate) mod args;
mod connection;
mod error;
mod invoke;
mod load;
mod runs;
mod table;
mod usage;

use std::process::ExitCode;

pub(crate) use args::ClientCommand;
use connection::Connection;
pub(crate) use error::ClientError;

/// Runs one client command to completion on a small single-threaded runtime.
pub(crate) fn main(command: ClientCommand) -> ExitCode {
    let name = command.name();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ClientError::OutputClosed) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("par {name}: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn run(command: ClientCommand) -> Result<(), ClientError> {
    match command {
        ClientCommand::Agents(args) => agents::run(Connection::new(&args.server)?, &args).await,
        ClientCommand::Invoke(args) => invoke::run(Connection::new(&args.server)?, &args).await,
        ClientCommand::Runs(args) => runs::run(Connection::new(&args.server)?, &args).await,
        ClientCommand::Load(args) => load::run(Connection::new(&args.server)?, &args).await,
        ClientCommand::Unload(args) => load::unload(Connection::new(&args.server)?, &args).await,
        ClientCommand::Usage(args) => usage::run(Connection::new(&args.server)?, &args).await,
    }
}
