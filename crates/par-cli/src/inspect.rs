//! `par inspect FILE.apkg [--json]`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use par_archive::{EntryInfo, Limits};
use par_manifest::{Dependencies, Manifest, ParseLimits};
use serde::Serialize;

use crate::cli::InspectArgs;

/// Largest side file (requirements, pyproject) read for the report.
const SIDE_FILE_LIMIT: u64 = 1024 * 1024;

#[derive(Serialize)]
pub(crate) struct Report {
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub entries: usize,
    pub manifest: Manifest,
    pub agents: Vec<AgentLine>,
    pub surfaces: Vec<&'static str>,
    pub dependencies: Dependencies,
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct AgentLine {
    pub id: String,
    pub public: bool,
    pub description: String,
}

pub(crate) fn main(args: &InspectArgs) -> ExitCode {
    match build_report(&args.file) {
        Ok(report) if args.json => crate::output::to_stdout(|out| {
            let json = serde_json::to_string_pretty(&report).expect("report serialises");
            writeln!(out, "{json}")
        }),
        Ok(report) => crate::output::to_stdout(|out| print_text(out, &report)),
        Err(e) => {
            eprintln!("par inspect: {}: invalid package: {e}", args.file.display());
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn build_report(file: &Path) -> Result<Report, String> {
    let limits = Limits::default();
    let size = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
    let sha256 = par_archive::sha256_file(file).map_err(|e| e.to_string())?;
    let entries = par_archive::list_entries(file, &limits).map_err(|e| e.to_string())?;
    let parse_limits = ParseLimits::default();
    let yaml = par_archive::read_entry(file, "agent.yaml", parse_limits.max_bytes as u64)
        .map_err(|e| e.to_string())?;
    let manifest = par_manifest::parse_manifest(&yaml, &parse_limits).map_err(|e| e.to_string())?;
    let side = |name: &str| read_side(file, &entries, name);
    let dependencies = par_manifest::resolve_dependencies(
        side("requirements.txt")?.as_deref(),
        side("pyproject.toml")?.as_deref(),
        &manifest,
    )
    .map_err(|e| e.to_string())?;
    Ok(Report {
        file: file.display().to_string(),
        size,
        sha256,
        entries: entries.len(),
        agents: agent_lines(&manifest),
        surfaces: manifest.surfaces(),
        warnings: warnings(&manifest, &entries),
        manifest,
        dependencies,
    })
}

fn read_side(file: &Path, entries: &[EntryInfo], name: &str) -> Result<Option<String>, String> {
    if !entries.iter().any(|e| e.name == name) {
        return Ok(None);
    }
    let bytes = par_archive::read_entry(file, name, SIDE_FILE_LIMIT).map_err(|e| e.to_string())?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| format!("{name} is not UTF-8"))
}

fn agent_lines(manifest: &Manifest) -> Vec<AgentLine> {
    let main = AgentLine {
        id: manifest.name.clone(),
        public: true,
        description: manifest.description.clone(),
    };
    let subs = manifest.sub_agents.iter().map(|s| AgentLine {
        id: s.name.clone(),
        public: s.public,
        description: s.description.clone(),
    });
    std::iter::once(main).chain(subs).collect()
}

fn warnings(manifest: &Manifest, entries: &[EntryInfo]) -> Vec<String> {
    let has = |name: &str| entries.iter().any(|e| e.name == name);
    let mut out = Vec::new();
    if has(".env") {
        out.push(".env is packaged: anyone with the file can read its values".to_string());
    }
    if has("setup.py") {
        out.push("setup.py is present: PAR never executes it".to_string());
    }
    if !manifest.runtime.starts_with("python") {
        out.push(format!(
            "runtime '{}' is not a Python runtime: PAR cannot run it",
            manifest.runtime
        ));
    }
    if manifest.entrypoint.is_none() {
        out.push(
            "no entrypoint: the package cannot be invoked, only its HTTP/UI surfaces served"
                .to_string(),
        );
    }
    out
}

fn print_text(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    let m = &r.manifest;
    writeln!(out, "{} {} ({})", m.name, m.agent_version, m.display_name)?;
    writeln!(
        out,
        "  file:         {} ({} bytes, {} entries)",
        r.file, r.size, r.entries
    )?;
    writeln!(out, "  sha256:       {}", r.sha256)?;
    writeln!(out, "  description:  {}", m.description)?;
    writeln!(out, "  runtime:      {}", m.runtime)?;
    if let Some(entry) = &m.entrypoint {
        writeln!(out, "  entrypoint:   {entry}")?;
    }
    writeln!(out, "  surfaces:     {}", r.surfaces.join(", "))?;
    writeln!(out, "  agents:")?;
    for a in &r.agents {
        let vis = if a.public { "public" } else { "private" };
        writeln!(out, "    {} [{vis}] {}", a.id, a.description)?;
    }
    writeln!(out, "  dependencies ({:?}):", r.dependencies.source)?;
    for d in &r.dependencies.requirements {
        writeln!(out, "    {d}")?;
    }
    for w in &r.warnings {
        writeln!(out, "  warning: {w}")?;
    }
    Ok(())
}
