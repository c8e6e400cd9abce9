//! `GET /openapi.json` of a real `par serve` with real packages: a valid OpenAPI 3.1
//! document (openapi-spec-validator) that the server keeps to when schemathesis calls
//! every operation with generated requests. Both tools come from
//! `scripts/install-api-tools.sh` (scripts/test.sh runs it; `PAR_API_TOOLS` names the
//! bin directory).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{workspace_root, TestRuntime};

/// Bounds that keep the run short in CI; the seed makes a failure reproducible.
const SEED: &str = "20261204";
const MAX_EXAMPLES: &str = "12";

fn api_tools() -> PathBuf {
    let dir = std::env::var_os("PAR_API_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            let tools = std::env::var_os("PAR_TOOLS")?;
            Some(PathBuf::from(tools).join("api-tools/bin"))
        })
        .unwrap_or_else(|| workspace_root().join(".par-tools/api-tools/bin"));
    assert!(
        dir.join("st").is_file(),
        "no schemathesis in {}: run scripts/install-api-tools.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

async fn served() -> TestRuntime {
    TestRuntime::builder()
        .source(workspace_root().join("target/examples/echo.apkg"))
        .fixture("kit-schema")
        .start()
        .await
}

#[tokio::test]
async fn the_document_describes_every_route_and_each_agents_input() {
    let rt = served().await;
    let (status, doc) = rt.get("/openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/runtime/health",
        "/runtime/packages",
        "/runtime/usage",
        "/agents/{id}/invoke",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    let schema_op = &doc["paths"]["/agents/kit-schema/invoke"]["post"];
    let declared = &schema_op["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(declared["required"], json!(["text"]), "{schema_op}");
    let count = &doc["paths"]["/agents/schema-count/invoke"]["post"]["requestBody"];
    assert_eq!(
        count["content"]["application/json"]["schema"]["required"],
        json!(["numbers"])
    );
    let echo = &doc["paths"]["/agents/echo/invoke"]["post"]["requestBody"];
    assert_eq!(
        count_keys(echo),
        2,
        "an agent without a schema takes any object: {echo}"
    );
    assert!(doc["paths"]["/agents/mini-secret/invoke"].is_null());

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), doc.to_string()).unwrap();
    let out = Command::new(api_tools().join("openapi-spec-validator"))
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn count_keys(body: &Value) -> usize {
    body.as_object().map_or(0, |o| o.len())
}

/// Every operation but `shutdown` (it would stop the server under test), `disable` (a
/// disabled agent answers 503 `disabled` by design, which would fail later invokes) and
/// the package apps' own routes (their answers are the package's, not PAR's).
#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let rt = served().await;
    let reports = tempfile::tempdir().unwrap();
    let out = Command::new(api_tools().join("st"))
        .args(["run", &rt.url("/openapi.json")])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"])
        // One worker: hypothesis's lambda descriptions call `ast.parse`, which CPython 3.11
        // can fail with "AST constructor recursion depth mismatch" from two threads at once.
        .args(["--seed", SEED, "--max-examples", MAX_EXAMPLES, "--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--exclude-operation-id", "shutdown"])
        .args(["--exclude-operation-id", "disable_agent"])
        .args(["--exclude-path-regex", r"^/agents/\{id\}(/ui)?/\{path\}$"])
        .args(["--exclude-operation-id", "package_app_root"])
        .args(["--request-timeout", "30", "--no-color"])
        .arg("--report-dir")
        .arg(reports.path())
        // Its cache folder (.schemathesis) goes there too, not into the source tree.
        .current_dir(reports.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis:\n{text}");
    assert!(text.contains("passed"), "{text}");
    let (status, health) = rt.get("/runtime/health").await;
    assert_eq!(status, 200, "the server survived the run: {health}");
}
