//! `par agents [ID]`: what a server serves.

use serde_json::Value;

use super::args::AgentsArgs;
use super::connection::{segment, Connection};
use super::error::ClientError;
use super::table::{cell, print, print_json, Table};

pub(super) async fn run(server: Connection, args: &AgentsArgs) -> Result<(), ClientError> {
    let answer = match &args.id {
        Some(id) => server.get(&format!("/agents/{}", segment(id))).await?,
        None => server.get("/agents").await?,
    };
    if server.json {
        return Ok(print_json(&answer)?);
    }
    let agents = match &args.id {
        Some(_) => vec![answer],
        None => answer["agents"].as_array().cloned().unwrap_or_default(),
    };
    Ok(print(&agents_table(&agents))?)
}

fn agents_table(agents: &[Value]) -> Table {
    let mut table = Table::new(&["ID", "PACKAGE", "VERSION", "SURFACES", "DESCRIPTION"]);
    for agent in agents {
        table.row(vec![
            cell(&agent["id"]),
            cell(&agent["package"]),
            cell(&agent["version"]),
            cell(&agent["surfaces"]),
            cell(&agent["description"]),
        ]);
    }
    table
}
