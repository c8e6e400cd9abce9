//! `par`: a thin binary over the PAR crates. Parses the command line, builds validated
//! settings, and hands over to the library code; exit codes: 0 success, 1 failure,
//! 2 bad usage or settings (the client commands add 3, 4 and 5: docs/cli.md).

mod auth_settings;
mod cli;
mod client;
mod connection_settings;
mod env_names;
mod inspect;
mod logging;
mod network_settings;
mod output;
mod registry_settings;
mod runs_settings;
mod sandbox_settings;
mod serve;
mod settings;
mod source_settings;
mod usage;
mod usage_settings;
mod verify;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The jail launcher, started by the runtime itself: before anything starts a thread.
    if std::env::args_os().nth(1).as_deref() == Some(par_sandbox::launcher::SUBCOMMAND.as_ref()) {
        return ExitCode::from(par_sandbox::launcher::main() as u8);
    }
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Serve(args) => serve::main(*args),
        cli::Command::Inspect(args) => inspect::main(&args),
        cli::Command::Verify(args) => verify::main(&args),
        cli::Command::Usage(args) => match args.command {
            Some(cli::UsageCommand::Export(export)) => usage::export(&export),
            None => client::main(client::ClientCommand::Usage(args.query)),
        },
        cli::Command::Agents(args) => client::main(client::ClientCommand::Agents(args)),
        cli::Command::Invoke(args) => client::main(client::ClientCommand::Invoke(args)),
        cli::Command::Runs(args) => client::main(client::ClientCommand::Runs(args)),
        cli::Command::Load(args) => client::main(client::ClientCommand::Load(args)),
        cli::Command::Unload(args) => client::main(client::ClientCommand::Unload(args)),
    }
}
