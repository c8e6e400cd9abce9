//! `par invoke ID [JSON | @FILE | -] [--stream]`: call an agent; with `--stream`, print
//! each Server-Sent Event the moment it arrives.

use std::io::{Read, Write};

use reqwest::Method;
use serde_json::{json, Value};

use super::args::InvokeArgs;
use super::connection::{segment, Connection};
use super::error::ClientError;
use super::table::print_json;

pub(super) async fn run(server: Connection, args: &InvokeArgs) -> Result<(), ClientError> {
    let payload = read_payload(args.payload.as_deref())?;
    let request = server
        .request(
            Method::POST,
            &format!("/agents/{}/invoke", segment(&args.id)),
        )
        .header("content-type", "application/json")
        .body(payload.to_string());
    if args.stream {
        let request = request.header("accept", "text/event-stream");
        return stream(&server, request).await;
    }
    let answer = server.json(request).await?;
    if server.json {
        return Ok(print_json(&answer)?);
    }
    let mut out = std::io::stdout().lock();
    let pretty = serde_json::to_string_pretty(&answer["data"]).unwrap_or_default();
    writeln!(out, "{pretty}")?;
    Ok(out.flush()?)
}

/// The payload argument: inline JSON, `@FILE`, `-` (stdin), or `{}` when absent. It must
/// be a JSON object, as the server requires.
fn read_payload(argument: Option<&str>) -> Result<Value, ClientError> {
    let text = match argument {
        None => return Ok(json!({})),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| ClientError::Usage(format!("cannot read stdin: {e}")))?;
            text
        }
        Some(arg) => match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| ClientError::Usage(format!("cannot read {path}: {e}")))?,
            None => arg.to_string(),
        },
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| ClientError::Usage(format!("the payload is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ClientError::Usage(
            "the payload must be a JSON object".into(),
        ));
    }
    Ok(value)
}

/// Reads the event stream chunk by chunk and prints every complete event at once.
async fn stream(server: &Connection, request: reqwest::RequestBuilder) -> Result<(), ClientError> {
    let mut response = server.send(request).await?;
    let mut pending = String::new();
    let mut finished = false;
    while let Some(chunk) = response.chunk().await.map_err(|e| server.unreachable(&e))? {
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let raw: String = pending.drain(..end + 2).collect();
            if let Some(event) = Event::parse(&raw) {
                finished |= event.print(server.json)?;
            }
        }
    }
    if finished {
        Ok(())
    } else {
        Err(ClientError::Failed(
            "the stream ended before its last event".into(),
        ))
    }
}

/// One Server-Sent Event: its name (`message` when unnamed) and data.
struct Event {
    name: String,
    data: String,
}

impl Event {
    /// None for comments and heartbeats (no data).
    fn parse(raw: &str) -> Option<Event> {
        let mut name = "message".to_string();
        let mut data: Vec<&str> = Vec::new();
        for line in raw.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim().to_string();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        (!data.is_empty()).then(|| Event {
            name,
            data: data.join("\n"),
        })
    }

    /// Prints the event; true when it ends the stream (`done`), an error for `error`.
    fn print(&self, json: bool) -> Result<bool, ClientError> {
        let data: Value = serde_json::from_str(&self.data).unwrap_or(json!(self.data));
        if json {
            print_json(&json!({"event": self.name, "data": data}))?;
        }
        match self.name.as_str() {
            "done" => Ok(true),
            "error" => Err(ClientError::Failed(format!(
                "{}: {} (the stream ended with an error)",
                data["code"].as_str().unwrap_or("error"),
                data["error"].as_str().unwrap_or(&self.data)
            ))),
            _ if json => Ok(false),
            _ => {
                print_json(&data)?;
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_and_heartbeats_skipped() {
        let event = Event::parse("event: done\ndata: {}\n\n").unwrap();
        assert_eq!((event.name.as_str(), event.data.as_str()), ("done", "{}"));
        let item = Event::parse("data: {\"n\":3}\n\n").unwrap();
        assert_eq!(
            (item.name.as_str(), item.data.as_str()),
            ("message", "{\"n\":3}")
        );
        assert!(Event::parse(": heartbeat\n\n").is_none());
    }

    #[test]
    fn payloads_must_be_json_objects() {
        assert_eq!(read_payload(None).unwrap(), json!({}));
        assert_eq!(read_payload(Some(r#"{"a":1}"#)).unwrap(), json!({"a": 1}));
        assert!(matches!(
            read_payload(Some("[1]")),
            Err(ClientError::Usage(_))
        ));
        assert!(matches!(
            read_payload(Some("{nope")),
            Err(ClientError::Usage(_))
        ));
        assert!(matches!(
            read_payload(Some("@/nonexistent/payload.json")),
            Err(ClientError::Usage(_))
        ));
    }
}
