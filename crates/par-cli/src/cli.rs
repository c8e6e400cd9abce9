//! Command-line definitions. Every `serve` setting is a flag and an environment variable
//! (the flag wins), defined in `settings/table.rs`; `--config` adds a TOML file below both.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::client::args as client;
use crate::env_names as env;
pub(crate) use crate::settings::ServeArgs;

#[derive(Debug, Parser)]
#[command(
    name = "par",
    version,
    about = "PAR: serve Pixell agent packages (APKG) over HTTP"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start the runtime, load every SOURCE, serve HTTP.
    Serve(Box<ServeArgs>),
    /// Print a package's manifest, agents, surfaces, dependencies, size and sha256.
    Inspect(InspectArgs),
    /// Check a package: exit 0 only when every requested check passes.
    Verify(VerifyArgs),
    /// A running server's usage (`par usage`), or a ledger file's records
    /// (`par usage export --format csv|jsonl`).
    Usage(UsageArgs),
    /// List the agents a running server serves, or show one.
    Agents(client::AgentsArgs),
    /// Call an agent of a running server: `par invoke ID [JSON | @FILE | -] [--stream]`.
    Invoke(client::InvokeArgs),
    /// List your durable runs on a running server, or show one.
    Runs(client::RunsArgs),
    /// Load a package into a running server and follow its phases (a local .apkg is
    /// uploaded; URLs and server paths are fetched by the server).
    Load(client::LoadArgs),
    /// Unload a package from a running server (every version, or one).
    Unload(client::UnloadArgs),
}

/// `par usage [QUERY]` asks a running server; `par usage export` reads the ledger file.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct UsageArgs {
    #[command(subcommand)]
    pub command: Option<UsageCommand>,
    #[command(flatten)]
    pub query: client::UsageQueryArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsageCommand {
    /// Write usage records to stdout.
    Export(UsageExportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct UsageExportArgs {
    /// `csv` or `jsonl`.
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// The usage ledger (default as for `par serve`).
    #[arg(long, env = env::USAGE_DB)]
    pub usage_db: Option<String>,
    /// Only this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// RFC 3339 start (inclusive).
    #[arg(long)]
    pub from: Option<String>,
    /// RFC 3339 end (exclusive).
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    pub file: PathBuf,
    /// Expected sha256 of the file (64 hex characters).
    #[arg(long)]
    pub sha256: Option<String>,
    /// Detached OpenPGP signature (.sig or .asc).
    #[arg(long, requires = "key")]
    pub signature: Option<PathBuf>,
    /// Public key to check the signature with.
    #[arg(long, requires = "signature")]
    pub key: Option<PathBuf>,
}
