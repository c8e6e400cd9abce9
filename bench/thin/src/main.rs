//! The benchmark baseline: the thinnest HTTP → worker path we can write.
//!
//! One axum route hands the raw request body to one `par_worker::Worker` (the same crate,
//! worker program, extracted package and Python as PAR) and splices the result into PAR's
//! success envelope. Nothing else: no routing table, body checks, admission gate, metrics,
//! request ids, call log or usage records. PAR's invoke path measured beside it shows what
//! the runtime's features cost. It also serves a folder of static files the plain way
//! (read the file, send it), as the baseline for PAR's UI surface.

mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use par_worker::{Worker, WorkerSpec};

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// The package's environment Python (`<cache>/envs/<environment>/bin/python`).
    #[arg(long)]
    python: PathBuf,
    /// The extracted package (`<cache>/packages/<sha256>/`).
    #[arg(long)]
    root: PathBuf,
    /// `module:function`, as in `agent.yaml`.
    #[arg(long, default_value = "src.main:handler")]
    entrypoint: String,
    /// Threads for sync handlers (PAR's default).
    #[arg(long, default_value_t = 32)]
    threads: usize,
    /// Folder served under `/ui/`.
    #[arg(long)]
    ui: Option<PathBuf>,
    /// Scratch folder for the worker program.
    #[arg(long)]
    scratch: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let script = par_worker::script::materialize(&args.scratch).with_context(|| {
        format!(
            "writing the worker program under {}",
            args.scratch.display()
        )
    })?;
    let worker = Worker::spawn(&spec(&args, script))
        .await
        .context("starting the worker")?;
    let state = routes::State {
        worker: Arc::new(worker),
        ui: args.ui,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, routes::app(state)).await?;
    Ok(())
}

/// The environment PAR gives a worker, minus the package's `.env` (the bench agents
/// need none).
fn spec(args: &Args, script: PathBuf) -> WorkerSpec {
    let venv = args
        .python
        .parent()
        .and_then(|b| b.parent())
        .unwrap_or(&args.root);
    let path = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        venv.join("bin").display()
    );
    WorkerSpec {
        program: par_worker::child::Program {
            label: "thin".into(),
            python: args.python.clone(),
            script,
            package_root: args.root.clone(),
            env: vec![
                ("PATH".into(), path),
                ("VIRTUAL_ENV".into(), venv.display().to_string()),
                ("PYTHONUNBUFFERED".into(), "1".into()),
                ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ],
            cwd: args.root.clone(),
            startup_timeout: Duration::from_secs(60),
            jail: None,
            log_budget: par_worker::log_budget::LogBudget::unlimited("thin"),
        },
        entrypoint: args.entrypoint.clone(),
        max_frame: 64 * 1024 * 1024,
        threads: args.threads,
    }
}
