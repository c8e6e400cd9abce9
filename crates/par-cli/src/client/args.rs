//! Command-line arguments of the client commands.

use clap::Args;

/// The client commands, each talking to a running server (their help is in cli.rs).
#[derive(Debug)]
pub(crate) enum ClientCommand {
    Agents(AgentsArgs),
    Invoke(InvokeArgs),
    Runs(RunsArgs),
    Load(LoadArgs),
    Unload(UnloadArgs),
    Usage(UsageQueryArgs),
}

impl ClientCommand {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ClientCommand::Agents(_) => "agents",
            ClientCommand::Invoke(_) => "invoke",
            ClientCommand::Runs(_) => "runs",
            ClientCommand::Load(_) => "load",
            ClientCommand::Unload(_) => "unload",
            ClientCommand::Usage(_) => "usage",
        }
    }
}

/// Where the server is and how to talk to it; every client command has these.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "PAR_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Bearer token or API key sent as `Authorization: Bearer`.
    #[arg(long, env = "PAR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AgentsArgs {
    /// One agent's id (also `id@version`).
    pub id: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub(crate) struct InvokeArgs {
    /// The agent's id (also `id@version`).
    pub id: String,
    /// The payload: a JSON object, `@FILE` to read it from a file, or `-` for stdin
    /// (default `{}`).
    pub payload: Option<String>,
    /// Ask for Server-Sent Events and print each item as it arrives.
    #[arg(long)]
    pub stream: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RunsArgs {
    /// One run's id.
    pub id: Option<String>,
    /// Only runs of this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only runs in this status (queued, running, succeeded, failed, cancelled, interrupted).
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many runs.
    #[arg(long)]
    pub limit: Option<u32>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// A local .apkg (uploaded), or a source the server fetches itself: https://, s3://,
    /// or a path on the server's machine.
    pub source: String,
    /// Expected sha256 of the package.
    #[arg(long)]
    pub sha256: Option<String>,
    /// Keep the other versions of the package mounted.
    #[arg(long)]
    pub keep_others: bool,
    /// Allow loading a lower version than the active one.
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for the load to finish.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UnloadArgs {
    /// The package's name.
    pub name: String,
    /// Only this version.
    pub version: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UsageQueryArgs {
    /// Only this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// RFC 3339 start (inclusive).
    #[arg(long)]
    pub from: Option<String>,
    /// RFC 3339 end (exclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Totals by agent, caller or day.
    #[arg(long, value_parser = ["agent", "caller", "day"])]
    pub group_by: Option<String>,
    /// At most this many records.
    #[arg(long)]
    pub limit: Option<u32>,
    #[command(flatten)]
    pub server: ServerArgs,
}
