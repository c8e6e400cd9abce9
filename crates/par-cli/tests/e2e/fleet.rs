//! The fleet: three `par serve` replicas on 127.0.0.2, .3 and .4 following one registry
//! index and shipping usage to one PostgreSQL, behind a real HAProxy that health-checks
//! `/runtime/ready`. Under steady load: a new index converges on every replica, a rolling
//! restart loses no request, a frozen replica is taken out of rotation, and PostgreSQL's
//! usage rows equal the successful calls the load generator counted, exactly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::RwLock;

use crate::harness::TestRuntime;
use crate::registry::Registry;
use crate::usage_postgres::pg_server::PgServer;

/// How long a replica answers 503 on `/runtime/ready` before closing its listener: well
/// over HAProxy's detection time (`inter` × `fall` below), so no new request reaches it.
const DRAIN_GRACE: &str = "2";
const REPLICAS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
const AGENT: &str = "kit-minimal";

/// A free port on `host` (bound once and released; the replica binds it next).
fn free_port(host: &str) -> u16 {
    std::net::TcpListener::bind((host, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One replica: how to start it (again) and, while it runs, the runtime.
struct Replica {
    name: String,
    listen: String,
    ledger: PathBuf,
    index: String,
    postgres: String,
    runtime: Option<TestRuntime>,
}

impl Replica {
    fn new(n: usize, host: &str, ledgers: &Path, index: &str, postgres: &str) -> Replica {
        Replica {
            name: format!("r{n}"),
            listen: format!("{host}:{}", free_port(host)),
            ledger: ledgers.join(format!("r{n}.sqlite3")),
            index: index.into(),
            postgres: postgres.into(),
            runtime: None,
        }
    }

    async fn start(&mut self) {
        let runtime = TestRuntime::builder()
            .listen(&self.listen)
            .usage_db(&self.ledger)
            .env("PAR_USAGE_POSTGRES_URL", &self.postgres)
            .args(&["--registry-index", &self.index, "--poll-interval", "0.3"])
            .args(&["--usage-ship-interval", "0.2", "--instance-id", &self.name])
            .args(&["--drain-grace", DRAIN_GRACE])
            .start()
            .await;
        self.runtime = Some(runtime);
    }

    fn runtime(&self) -> &TestRuntime {
        self.runtime.as_ref().expect("replica is running")
    }

    /// SIGTERM, then waits for the exit (off the async workers: it blocks).
    async fn stop(&mut self) {
        let mut runtime = self.runtime.take().expect("replica is running");
        let status = tokio::task::spawn_blocking(move || runtime.terminate())
            .await
            .unwrap();
        assert!(status.success(), "{} exited with {status}", self.name);
    }

    fn signal(&self, signal: &str) {
        let pid = self.runtime().pid().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }
}

/// Debian's HAProxy in the foreground, with a CSV stats page to read server states from.
struct Balancer {
    child: Child,
    base: String,
    stats: String,
    _dir: tempfile::TempDir,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Balancer {
    fn start(replicas: &[Replica]) -> Balancer {
        let dir = tempfile::tempdir().unwrap();
        let (port, stats_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        let servers: String = replicas
            .iter()
            .map(|r| format!("  server {} {} check\n", r.name, r.listen))
            .collect();
        // `http-server-close`: no idle server connection is reused, so a replica closing
        // its listener never meets a request on a connection it is tearing down.
        // `retry-on conn-failure` retries only requests that never reached a replica.
        let config = format!(
            "global\n  maxconn 512\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  \
             timeout server 30s\n  timeout check 500ms\n  retries 3\n  option redispatch\n  \
             retry-on conn-failure\n  option http-server-close\n\
             frontend fleet\n  bind 127.0.0.1:{port}\n  default_backend par\n\
             backend par\n  option httpchk GET /runtime/ready\n  http-check expect status 200\n  \
             default-server inter 200ms fall 2 rise 2\n{servers}\
             listen stats\n  bind 127.0.0.1:{stats_port}\n  stats enable\n  stats uri /stats\n"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(haproxy())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start haproxy");
        Balancer {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stats: format!("http://127.0.0.1:{stats_port}/stats;csv"),
            _dir: dir,
        }
    }

    /// HAProxy's view of one server: `UP`, `DOWN`, `UP 1/2`...
    async fn server_state(&self, server: &str) -> String {
        let Ok(response) = reqwest::get(&self.stats).await else {
            return "no stats yet".into();
        };
        let csv = response.text().await.unwrap_or_default();
        csv.lines()
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|cols| cols.len() > 17 && cols[0] == "par" && cols[1] == server)
            .map_or_else(|| "unknown".into(), |cols| cols[17].to_string())
    }

    async fn wait_state(&self, server: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = self.server_state(server).await;
            if state == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy: {server} is {state}, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn haproxy() -> PathBuf {
    let path = PathBuf::from("/usr/sbin/haproxy");
    assert!(
        path.is_file(),
        "no /usr/sbin/haproxy: scripts/ensure-system-tools.sh installs Debian's haproxy"
    );
    path
}

/// Steady load through the balancer: a few clients invoking in a loop. Every request holds
/// the gate's read side, so `pause` (the write side) returns once none is in flight.
struct Load {
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    gate: Arc<RwLock<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(base: &str, clients: usize) -> Load {
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(RwLock::new(()));
        let url = format!("{base}/agents/{AGENT}/invoke");
        let tasks = (0..clients)
            .map(|_| {
                let (ok, failures, gate, url) =
                    (ok.clone(), failures.clone(), gate.clone(), url.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    loop {
                        let _held = gate.read().await;
                        let failure = match client.post(&url).json(&json!({"n": 1})).send().await {
                            Ok(r) if r.status() == 200 => {
                                ok.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                            Ok(r) => {
                                format!("{} {}", r.status(), r.text().await.unwrap_or_default())
                            }
                            Err(e) => e.to_string(),
                        };
                        failures.lock().unwrap().push(failure);
                    }
                })
            })
            .collect();
        Load {
            ok,
            failures,
            gate,
            tasks,
        }
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until `more` further calls succeeded: proof that load flows.
    async fn wait_for_calls(&self, more: u64) {
        let target = self.ok() + more;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.ok() < target {
            self.assert_no_failures();
            assert!(Instant::now() < deadline, "load stalled at {}", self.ok());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn assert_no_failures(&self) {
        let failures = self.failures.lock().unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
    }

    /// Stops the clients once no request is in flight; returns the successful count.
    async fn stop(self) -> u64 {
        let _quiet = self.gate.write().await;
        for task in &self.tasks {
            task.abort();
        }
        self.assert_no_failures();
        self.ok()
    }
}

/// Rows PostgreSQL holds for the load's agent, and how many of them are not `ok`.
async fn shipped_rows(url: String) -> (i64, i64) {
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let sql = "SELECT count(*), count(*) FILTER (WHERE outcome <> 'ok') \
                   FROM par_usage_records WHERE agent = $1";
        client
            .query_one(sql, &[&AGENT])
            .map(|row| (row.get(0), row.get(1)))
            .unwrap_or((0, 0))
    })
    .await
    .unwrap()
}

/// Waits until every replica serves `kit-minimal` 2.0.0 and the added `twin-a`.
async fn wait_converged(replicas: &[Replica]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for replica in replicas {
        let rt = replica.runtime();
        loop {
            let (status, agent) = rt.get(&format!("/agents/{AGENT}")).await;
            let (added, _) = rt.get("/agents/twin-a").await;
            if status == 200 && agent["version"] == "2.0.0" && added == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not converge: {status} {agent}, twin-a {added}",
                replica.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_converge_roll_and_bill_exactly() {
    let pg = tokio::task::spawn_blocking(PgServer::start_new)
        .await
        .unwrap();
    let postgres = pg.url();
    let registry = Registry::start().await;
    for fixture in ["kit-minimal", "kit-minimal-v2", "twin-a"] {
        registry.put_fixture(fixture);
    }
    registry.index(&[("kit-minimal", "1.0.0", "kit-minimal")]);
    let index = format!("{}/index.json", registry.base);
    let ledgers = tempfile::tempdir().unwrap();
    let mut replicas: Vec<Replica> = REPLICAS
        .iter()
        .enumerate()
        .map(|(i, host)| Replica::new(i + 1, host, ledgers.path(), &index, &postgres))
        .collect();
    for replica in &mut replicas {
        replica.start().await;
    }
    let balancer = Balancer::start(&replicas);
    for replica in &replicas {
        balancer.wait_state(&replica.name, "UP").await;
    }
    let load = Load::start(&balancer.base, 4);
    load.wait_for_calls(50).await;

    // A new index: one package upgraded, one added. Every replica converges under load.
    registry.index(&[
        ("kit-minimal", "2.0.0", "kit-minimal-v2"),
        ("twin-a", "1.0.0", "twin-a"),
    ]);
    wait_converged(&replicas).await;
    load.wait_for_calls(50).await;

    // A rolling restart, one replica at a time.
    for replica in &mut replicas {
        replica.stop().await;
        balancer.wait_state(&replica.name, "DOWN").await;
        load.wait_for_calls(20).await;
        replica.start().await;
        balancer.wait_state(&replica.name, "UP").await;
        load.wait_for_calls(20).await;
    }
    wait_converged(&replicas).await;

    // A frozen replica: once the health checks take it out, nothing fails. The load pauses
    // across the freeze itself, so no call is left hanging inside the frozen process.
    let frozen = &replicas[1];
    {
        let _paused = load.gate.write().await;
        frozen.signal("-STOP");
        balancer.wait_state(&frozen.name, "DOWN").await;
    }
    load.wait_for_calls(100).await;
    {
        let _paused = load.gate.write().await;
        frozen.signal("-CONT");
        balancer.wait_state(&frozen.name, "UP").await;
    }
    load.wait_for_calls(50).await;

    let answered = load.stop().await;
    // Every replica ships its ledger; the totals must meet the count exactly.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (rows, not_ok) = shipped_rows(postgres.clone()).await;
        assert_eq!(not_ok, 0, "usage rows with a failed outcome");
        assert!(
            rows <= answered as i64,
            "{rows} usage rows for {answered} answered calls"
        );
        if rows == answered as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "usage rows stuck at {rows} of {answered}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
