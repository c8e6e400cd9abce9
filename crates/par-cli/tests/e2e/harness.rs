//! A real `par serve` process on port 0, its log captured, and helpers to call it.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository root.
pub(crate) use par_test_venv::workspace_root;

/// A fixture package built by `scripts/build-fixtures.py` with the real kits.
pub(crate) fn fixture(name: &str) -> PathBuf {
    let dir = std::env::var("PAR_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target/fixtures"));
    let path = dir.join(format!("{name}.apkg"));
    assert!(
        path.is_file(),
        "missing fixture {}: run scripts/test.sh (it builds fixtures)",
        path.display()
    );
    path
}

/// `PAR_UV`, else the repository's `.par-tools/bin/uv`, else `uv` on `PATH`.
pub(crate) use par_test_venv::uv;

/// A cache shared by tests, so environments are built once per run (they are keyed by
/// dependency set and locked, so sharing is exactly what production does).
pub(crate) fn shared_cache() -> PathBuf {
    workspace_root().join("target/par-test-cache")
}

pub(crate) struct TestRuntime {
    child: Child,
    /// Holds the default usage ledger's folder for the runtime's lifetime.
    _scratch: tempfile::TempDir,
    pub base: String,
    logs: Arc<Mutex<Vec<String>>>,
    pub client: reqwest::Client,
}

pub(crate) struct Builder {
    sources: Vec<String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    cache: PathBuf,
    usage_db: Option<PathBuf>,
    listen: String,
    /// Management-API sources as open as the operator's (see `default_source_policy`).
    open_sources: bool,
    /// The `par` executable (default: the one cargo built for these tests).
    binary: PathBuf,
}

impl Builder {
    /// Uses this usage ledger (default: a fresh one per runtime).
    pub(crate) fn usage_db(mut self, path: &Path) -> Self {
        self.usage_db = Some(path.to_path_buf());
        self
    }
    pub(crate) fn source(mut self, source: impl AsRef<Path>) -> Self {
        self.sources.push(source.as_ref().display().to_string());
        self
    }
    pub(crate) fn fixture(self, name: &str) -> Self {
        self.source(fixture(name))
    }
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    pub(crate) fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }
    pub(crate) fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }
    pub(crate) fn cache(mut self, dir: &Path) -> Self {
        self.cache = dir.to_path_buf();
        self
    }
    /// Keeps `par serve`'s own limits on management-API sources. Without this, tests
    /// load fixtures from anywhere and from loopback servers through the API (as before
    /// those limits existed): the harness adds `--source-roots /` and
    /// `--allow-private-sources true` unless a test sets either itself.
    pub(crate) fn default_source_policy(mut self) -> Self {
        self.open_sources = false;
        self
    }
    /// Runs this `par` executable instead of cargo's (e.g. a copy with other files
    /// beside it).
    pub(crate) fn binary(mut self, path: &Path) -> Self {
        self.binary = path.to_path_buf();
        self
    }
    /// Listens on this address (default `127.0.0.1:0`, a free port).
    pub(crate) fn listen(mut self, addr: &str) -> Self {
        self.listen = addr.into();
        self
    }

    /// Starts the binary and waits until it listens (not until it is ready).
    pub(crate) fn spawn(self) -> TestRuntime {
        let scratch = tempfile::tempdir().unwrap();
        let usage_db = self
            .usage_db
            .clone()
            .unwrap_or_else(|| scratch.path().join("usage.sqlite3"));
        let mut cmd = Command::new(&self.binary);
        cmd.arg("serve")
            .args(["--listen", &self.listen, "--log-format", "json"])
            .arg("--usage-db")
            .arg(&usage_db)
            .arg("--cache-dir")
            .arg(&self.cache)
            .arg("--uv")
            .arg(uv())
            .args(&self.args)
            .args(self.source_policy_args())
            // Tests stop runtimes often; the two-step drain has its own test.
            .args(if self.args.iter().any(|a| a == "--drain-grace") {
                &[][..]
            } else {
                &["--drain-grace", "0"][..]
            })
            .args(&self.sources)
            .env_remove("PACKAGES_URLS")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start par");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        pump(child.stdout.take().unwrap(), logs.clone(), Some(addr_tx));
        pump(child.stderr.take().unwrap(), logs.clone(), None);
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("par did not start listening");
        TestRuntime {
            child,
            _scratch: scratch,
            base: format!("http://{addr}"),
            logs,
            client: reqwest::Client::new(),
        }
    }

    /// Starts and waits for `/runtime/ready`.
    pub(crate) async fn start(self) -> TestRuntime {
        let rt = self.spawn();
        rt.wait_ready(Duration::from_secs(300)).await;
        rt
    }
}

impl Builder {
    fn source_policy_args(&self) -> Vec<&'static str> {
        let own = |flag: &str| self.args.iter().any(|a| a == flag);
        let mut args = Vec::new();
        if self.open_sources && !own("--source-roots") {
            args.extend(["--source-roots", "/"]);
        }
        if self.open_sources && !own("--allow-private-sources") {
            args.extend(["--allow-private-sources", "true"]);
        }
        args
    }
}

fn pump<R: std::io::Read + Send + 'static>(
    reader: R,
    logs: Arc<Mutex<Vec<String>>>,
    addr_tx: Option<std::sync::mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if let Some(tx) = &addr_tx {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["message"] == "listening" {
                        let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
                    }
                }
            }
            if std::env::var_os("PAR_TEST_ECHO_LOGS").is_some() {
                eprintln!("[par] {line}");
            }
            logs.lock().unwrap().push(line);
        }
    });
}

impl TestRuntime {
    pub(crate) fn builder() -> Builder {
        Builder {
            sources: Vec::new(),
            env: Vec::new(),
            args: Vec::new(),
            cache: shared_cache(),
            usage_db: None,
            listen: "127.0.0.1:0".into(),
            open_sources: true,
            binary: PathBuf::from(env!("CARGO_BIN_EXE_par")),
        }
    }

    pub(crate) async fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            if let Ok(r) = self.client.get(self.url("/runtime/ready")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                start.elapsed() < limit,
                "runtime not ready within {limit:?}; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `par serve` process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port` the runtime listens on.
    pub(crate) fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The Prometheus exposition text of `/metrics`.
    pub(crate) async fn metrics(&self) -> String {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200, "/metrics");
        r.text().await.unwrap()
    }

    pub(crate) async fn invoke(&self, id: &str, body: Value) -> (u16, Value) {
        self.post_raw(&format!("/agents/{id}/invoke"), body.to_string())
            .await
    }

    pub(crate) async fn post_raw(&self, path: &str, body: String) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `GET /runtime/usage{query}` once it holds `count` records (usage is written by a
    /// background writer, so a record lands shortly after its response).
    pub(crate) async fn usage_when(&self, query: &str, count: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, report) = self.get(&format!("/runtime/usage{query}")).await;
            assert_eq!(status, 200, "{report}");
            let found = report["records"].as_array().map_or(0, Vec::len);
            if found == count {
                return report;
            }
            assert!(
                found < count && Instant::now() < deadline,
                "usage{query}: {found} records, want {count}: {report}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The report of the package loaded from a source whose path ends with `suffix`.
    pub(crate) async fn package_report(&self, suffix: &str) -> Value {
        let (_, body) = self.get("/runtime/packages").await;
        body["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["source"].as_str().unwrap_or_default().ends_with(suffix))
            .cloned()
            .unwrap_or_else(|| panic!("no report for {suffix}: {body}"))
    }

    /// `DELETE /runtime/packages/{name}`: the answer's status.
    pub(crate) async fn unload(&self, name: &str) -> u16 {
        let url = self.url(&format!("/runtime/packages/{name}"));
        let response = self.client.delete(url).send().await.unwrap();
        response.status().as_u16()
    }

    pub(crate) fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains every one of `needles`, and returns that line.
    pub(crate) async fn wait_log(&self, needles: &[&str], limit: Duration) -> String {
        let what = format!("no log line with {needles:?}");
        wait_until(&what, limit, || async {
            self.logs
                .lock()
                .unwrap()
                .iter()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .cloned()
        })
        .await
    }

    /// Waits until the kit-async handler of a call sent with `{"announce": tag}` runs.
    pub(crate) async fn wait_handler_started(&self, tag: &str) {
        self.wait_log(
            &[&format!("handler started: {tag}")],
            Duration::from_secs(20),
        )
        .await;
    }

    /// Sends SIGTERM and waits for the exit status.
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.wait_exit(Duration::from_secs(30))
    }

    /// SIGKILL: the runtime gets no chance to clean up.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit on its own.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "par did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestRuntime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` every 50 ms until it returns `Some`, failing the test with `what` once
/// `limit` has passed: the one way tests wait for something to happen (never a fixed sleep).
pub(crate) async fn wait_until<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether process `pid` is running (a zombie still has /proc/<pid>; its state letter is Z).
pub(crate) fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"),
        Err(_) => false,
    }
}

/// Waits until none of `pids` runs.
pub(crate) async fn wait_dead(pids: &[u64], limit: Duration) {
    wait_until(
        &format!("processes {pids:?} still alive"),
        limit,
        || async { (!pids.iter().any(|p| alive(*p))).then_some(()) },
    )
    .await
}

/// What a fixture handler wrote to its `marker` file (`cancelled` or `finished`), waiting
/// up to `limit` for the file to exist and be written (it is created before it is written).
pub(crate) async fn marker_text(marker: &Path, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(marker).unwrap_or_default();
        if !text.is_empty() {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the handler wrote no marker within {limit:?}: neither cancelled nor finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The load job `id` once it is no longer `loading` (`GET /runtime/loads/{id}`).
pub(crate) async fn wait_for_load(rt: &TestRuntime, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, job) = rt.get(&format!("/runtime/loads/{id}")).await;
        assert_eq!(status, 200, "{job}");
        if job["state"] != "loading" {
            return job;
        }
        assert!(Instant::now() < deadline, "load {id} did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
