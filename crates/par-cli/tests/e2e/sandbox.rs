//! The process jail (`--sandbox strict`, the default): a hostile package tries every way
//! out while a well-behaved one beside it keeps serving; killing the runtime leaves no
//! jailed process; the jail also works for an unprivileged runtime.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{fixture, TestRuntime};

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"),
        Err(_) => false,
    }
}

/// Every process below `pid`, by walking `/proc/*/task/*/children`.
pub(crate) fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut pending = vec![pid];
    while let Some(p) = pending.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in text.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(child);
                pending.push(child);
            }
        }
    }
    found
}

async fn attempt(rt: &TestRuntime, body: Value) -> Value {
    call(rt, "kit-escape", body).await
}

/// Invokes `agent` (one of kit-escape's names) and answers its data.
async fn call(rt: &TestRuntime, agent: &str, body: Value) -> Value {
    let (status, reply) = rt.invoke(agent, body.clone()).await;
    assert_eq!(status, 200, "{agent} {body}: {reply}");
    reply["data"].clone()
}

async fn refused(rt: &TestRuntime, body: Value) -> Value {
    let data = attempt(rt, body.clone()).await;
    assert_eq!(data["escaped"], false, "escaped with {body}: {data}");
    // The neighbour keeps serving after every attempt.
    let (status, reply) = rt.invoke("kit-minimal", json!({"n": 1})).await;
    assert_eq!(status, 200, "kit-minimal after {body}: {reply}");
    data
}

#[tokio::test]
async fn a_hostile_package_is_refused_every_escape_while_its_neighbour_serves() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("usage.sqlite3");
    let settings = dir.path().join("par.toml");
    std::fs::write(&settings, "max-pids = 64\nmax-disk-mb = 16\n").unwrap();
    let canary = dir.path().join("canary.txt");
    std::fs::write(&canary, "host temp file").unwrap();
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-escape")
        .usage_db(&ledger)
        .args(&["--config", settings.to_str().unwrap()])
        .start()
        .await;
    let minimal = rt.package_report("kit-minimal.apkg").await;
    let escape = rt.package_report("kit-escape.apkg").await;
    assert_eq!(escape["state"], "ready", "{escape}");
    assert_eq!(escape["sandbox"]["mode"], "strict", "{escape}");
    assert_eq!(escape["sandbox"]["network"], "egress", "{escape}");
    assert_eq!(escape["sandbox"]["limits"]["pids"]["max"], 64, "{escape}");
    assert_eq!(
        escape["sandbox"]["limits"]["disk_mb"]["max"], 16,
        "{escape}"
    );
    let by = escape["sandbox"]["limits"]["pids"]["by"].as_str().unwrap();
    assert!(by == "cgroup" || by == "rlimit", "{escape}");

    let who = attempt(&rt, json!({"try": "identity"})).await;
    assert_eq!(who["uid"], 1000, "{who}");
    assert_eq!(who["user"], "agent", "{who}");
    assert_eq!(who["hostname"], "sandbox", "{who}");
    assert!(
        who["proxy"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{who}"
    );

    // Files: another package's secrets by cache path, the runtime's files, the host.
    let cache = crate::harness::shared_cache();
    let sha = minimal["sha256"].as_str().unwrap();
    let other_env = cache.join("packages").join(sha).join(".env");
    assert!(
        other_env.exists(),
        "the test's premise: {}",
        other_env.display()
    );
    for path in [
        other_env.as_path(),
        ledger.as_path(),
        settings.as_path(),
        canary.as_path(),
        Path::new("/root/.bashrc"),
        Path::new("/etc/shadow"),
        Path::new(env!("CARGO_BIN_EXE_par")),
    ] {
        refused(&rt, json!({"try": "read_file", "path": path})).await;
    }
    refused(
        &rt,
        json!({"try": "list_dir", "path": "/root", "allowed": [".pyenv"]}),
    )
    .await;
    refused(
        &rt,
        json!({"try": "list_dir", "path": "/home", "allowed": []}),
    )
    .await;

    // Processes: other workers and the runtime are invisible and out of reach.
    let neighbour = minimal["workers"][0].as_u64().unwrap();
    let runtime = u64::from(rt.pid());
    for file in ["environ", "cwd/.env", "cmdline"] {
        let path = format!("/proc/{neighbour}/{file}");
        refused(&rt, json!({"try": "read_file", "path": path})).await;
    }
    refused(
        &rt,
        json!({"try": "signal", "pids": [neighbour, runtime], "kill": true}),
    )
    .await;
    // Visible: the jail's PID 1, the package's own zygote and the worker itself.
    let seen = refused(&rt, json!({"try": "processes", "max": 3})).await;
    assert!(
        !seen["processes"].to_string().contains("serve"),
        "the runtime is visible: {seen}"
    );
    let parent = refused(
        &rt,
        json!({"try": "ppid", "runtime_pids": [runtime, neighbour]}),
    )
    .await;
    // The jail's PID 1, or the package's zygote (the jail's PID 2) that forked the worker.
    let ppid = parent["ppid"].as_u64().unwrap();
    assert!(ppid == 1 || ppid == 2, "{parent}");

    // System calls the seccomp filter refuses.
    for name in ["ptrace", "unshare", "mount"] {
        let data = refused(&rt, json!({"try": name})).await;
        assert_eq!(data["errno"], "EPERM", "{name}: {data}");
    }

    // Limits: processes and disk.
    let bomb = refused(&rt, json!({"try": "fork_bomb", "limit": 5000})).await;
    let forked = bomb["forked"].as_u64().unwrap();
    assert!((1..64).contains(&forked), "{bomb}");
    let fill = refused(&rt, json!({"try": "fill_disk", "limit_mb": 200})).await;
    // Writable, but only up to --max-disk-mb.
    let written = fill["written_mb"].as_u64().unwrap();
    assert!((8..=16).contains(&written), "{fill}");
    let root = escape["sha256"]
        .as_str()
        .map(|s| cache.join("packages").join(s))
        .unwrap();
    let fill = refused(&rt, json!({"try": "fill_disk", "dir": root, "limit_mb": 1})).await;
    assert_eq!(
        fill["written_mb"], 0,
        "the package root is writable: {fill}"
    );

    // Network: no way to the runtime's port (loopback in the jail is the jail's own).
    let port = rt.addr().rsplit(':').next().unwrap().to_string();
    refused(
        &rt,
        json!({"try": "connect", "host": "127.0.0.1", "port": port}),
    )
    .await;

    // The hostile package is still up too: nothing it did took it or the runtime down.
    let who = attempt(&rt, json!({"try": "identity"})).await;
    assert_eq!(who["uid"], 1000);
}

#[tokio::test]
async fn the_seccomp_allowlist_lets_ordinary_work_through_and_refuses_the_rest() {
    let rt = TestRuntime::builder()
        .fixture("kit-escape")
        .fixture("kit-minimal")
        .start()
        .await;
    let report = rt.package_report("kit-escape.apkg").await;
    let seccomp = &report["sandbox"]["seccomp"];
    assert_eq!(seccomp["filter"], "allowlist", "{report}");
    assert_eq!(seccomp["unlisted_errno"], "ENOSYS", "{report}");
    assert_eq!(seccomp["denied_errno"], "EPERM", "{report}");
    assert!(seccomp["allowed"].as_u64().unwrap() > 100, "{report}");

    // Threads, subprocess, multiprocessing, asyncio sockets, FIFOs, mmap: all allowed.
    let data = attempt(&rt, json!({"try": "workout"})).await;
    assert_eq!(
        data["done"],
        json!({"threads": 285, "subprocess": "42", "multiprocessing": 6,
               "asyncio": "ping", "mmap": "mapped"}),
        "{data}"
    );
    // Unlisted: ENOSYS (unfiltered, these arguments would give EFAULT or EINVAL).
    // Denied: EPERM.
    for (name, errno) in [
        ("io_uring_setup", "ENOSYS"),
        ("perf_event_open", "EPERM"),
        ("add_key", "EPERM"),
        ("bpf", "EPERM"),
        ("kexec_load", "EPERM"),
        ("userfaultfd", "EPERM"),
    ] {
        let data = refused(&rt, json!({"try": "syscall", "name": name})).await;
        assert_eq!(data["errno"], errno, "{name}: {data}");
    }
}

/// A TOML file in a temp dir, passed with `--config`.
fn config_file(dir: &Path, text: &str) -> String {
    let path = dir.join("par.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn two_packages_get_the_limits_their_operator_tables_give_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "max-pids = 64\nmax-disk-mb = 32\n\
         [packages.kit-escape]\nmax-pids = 16\nmax-disk-mb = 8\nmax-open-files = 100\n\
         [packages.kit-escape-twin]\nmax-pids = 48\nmax-disk-mb = 24\nmax-open-files = 300\n\
         network = \"none\"\n",
    );
    let rt = TestRuntime::builder()
        .fixture("kit-escape")
        .fixture("kit-escape-twin")
        .args(&["--config", &config])
        .start()
        .await;
    let mut measured = Vec::new();
    for (name, pids, disk, files, network) in [
        ("kit-escape", 16, 8, 100, "egress"),
        ("kit-escape-twin", 48, 24, 300, "none"),
    ] {
        let report = rt.package_report(&format!("{name}.apkg")).await;
        let sandbox = &report["sandbox"];
        assert_eq!(sandbox["network"], network, "{report}");
        let limits = &sandbox["limits"];
        assert_eq!(limits["pids"]["max"], pids, "{report}");
        assert_eq!(limits["disk_mb"]["max"], disk, "{report}");
        assert_eq!(limits["open_files"]["max"], files, "{report}");

        let who = call(&rt, name, json!({"try": "identity"})).await;
        assert_eq!(who["nofile"], files, "{name}: {who}");
        let bomb = call(&rt, name, json!({"try": "fork_bomb", "limit": 5000})).await;
        let forked = bomb["forked"].as_u64().unwrap();
        assert!(forked < pids, "{name}: {bomb}");
        let fill = call(&rt, name, json!({"try": "fill_disk", "limit_mb": 100})).await;
        let written = fill["written_mb"].as_u64().unwrap();
        assert!(written <= disk && written + 4 >= disk, "{name}: {fill}");
        measured.push(forked);
    }
    // The twin's larger allowance is real: it forked more than kit-escape could.
    assert!(measured[1] > 16, "{measured:?}");
}

/// Where the host lets the runtime create cgroups (root on this machine: cgroup v1
/// `pids` and `memory`; v2 where delegated), each jail gets its own group with the
/// package's limits and the report says `cgroup`; elsewhere it says `rlimit` and
/// `runtime`.
#[tokio::test]
async fn jails_get_their_own_cgroups_where_the_host_allows_and_the_report_says_how() {
    let dir = tempfile::tempdir().unwrap();
    let memory: u64 = 96 << 20;
    let config = config_file(
        dir.path(),
        &format!(
            "[packages.kit-escape]\nmax-pids = 24\nmax-disk-mb = 400\n\
             worker-memory-limit = {memory}\n"
        ),
    );
    let rt = TestRuntime::builder()
        .fixture("kit-escape")
        .args(&["--config", &config])
        .start()
        .await;
    let report = rt.package_report("kit-escape.apkg").await;
    let sandbox = &report["sandbox"];
    let limits = &sandbox["limits"];
    assert_eq!(limits["memory_bytes"]["max"], memory, "{report}");
    let Some(version) = sandbox["cgroup"].as_str() else {
        assert_eq!(limits["pids"]["by"], "rlimit", "{report}");
        assert_eq!(limits["memory_bytes"]["by"], "runtime", "{report}");
        return;
    };
    assert_eq!(limits["pids"]["by"], "cgroup", "{report}");
    assert_eq!(limits["memory_bytes"]["by"], "cgroup", "{report}");

    // The worker sits in its jail's group (a fresh worker's launcher's own, or the
    // zygote's launcher's for a forked one), which holds the package's limits.
    let worker = report["workers"][0].as_u64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{worker}/cgroup")).unwrap();
    let group = |controller: &str| -> std::path::PathBuf {
        let line = own
            .lines()
            .find(|l| match version {
                "v2" => l.starts_with("0::"),
                _ => l.split(':').nth(1) == Some(controller),
            })
            .unwrap_or_else(|| panic!("no {controller} line in {own}"));
        let path = line.splitn(3, ':').nth(2).unwrap();
        let leaf = path.rsplit('/').next().unwrap();
        assert!(leaf.starts_with("par-"), "{own}");
        let mount = match version {
            "v2" => "/sys/fs/cgroup/unified".to_string(),
            _ => format!("/sys/fs/cgroup/{controller}"),
        };
        let mount = Path::new(&mount);
        let mount = if version == "v2" && !mount.exists() {
            Path::new("/sys/fs/cgroup")
        } else {
            mount
        };
        mount.join(path.trim_start_matches('/'))
    };
    let read = |dir: std::path::PathBuf, file: &str| {
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read(group("pids"), "pids.max"), "24");
    let memory_file = match version {
        "v2" => "memory.max",
        _ => "memory.limit_in_bytes",
    };
    assert_eq!(read(group("memory"), memory_file), memory.to_string());

    // Enforced by the kernel: a fork bomb stops below pids.max, and files in the work
    // dir (a tmpfs: its pages are charged to the group, not to any process's resident
    // memory, so the runtime's own accounting would never see them) cannot grow past the
    // memory limit: the write fails or the group's OOM killer ends the worker.
    let bomb = attempt(&rt, json!({"try": "fork_bomb", "limit": 5000})).await;
    assert!(bomb["forked"].as_u64().unwrap() < 24, "{bomb}");
    let (status, reply) = rt
        .invoke("kit-escape", json!({"try": "fill_disk", "limit_mb": 300}))
        .await;
    if status == 200 {
        let written = reply["data"]["written_mb"].as_u64().unwrap();
        assert!(written < 96, "{reply}");
    } else {
        // The group's OOM killer ended the jail's processes: the call failed as a crash.
        assert_eq!(status, 502, "{reply}");
        assert_eq!(reply["code"], "worker_crashed", "{reply}");
    }
    // Either way the package serves again.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _) = rt.invoke("kit-escape", json!({"try": "identity"})).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "kit-escape did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn killing_the_runtime_leaves_no_jailed_process() {
    let mut rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("sdk-http")
        .start()
        .await;
    let report = rt.package_report("sdk-http.apkg").await;
    assert_eq!(report["sandbox"]["mode"], "strict", "{report}");
    let jailed = descendants(rt.pid());
    // Each jailed process is three: launcher, the jail's PID 1 and Python.
    assert!(jailed.len() >= 6, "{jailed:?}");
    rt.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<u32> = jailed.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jailed processes survived: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn bad_sandbox_settings_exit_2_naming_them() {
    for (args, named) in [
        (["--sandbox", "maybe"], "PAR_SANDBOX"),
        (["--network", "bridge"], "PAR_NETWORK"),
        (["--max-pids", "2"], "PAR_MAX_PIDS"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_par"))
            .arg("serve")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn sandbox_off_warns_at_startup_and_in_the_report() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--sandbox", "off"])
        .start()
        .await;
    let report = rt.package_report("kit-minimal.apkg").await;
    assert_eq!(report["sandbox"]["mode"], "off", "{report}");
    assert!(report["sandbox"]["warning"].is_string(), "{report}");
    assert!(rt.logs().contains("sandbox off"), "{}", rt.logs());
}

/// The whole runtime as an ordinary user (`nobody`): unprivileged user namespaces.
#[tokio::test]
async fn strict_works_for_an_unprivileged_runtime() {
    if !nix_is_root() {
        return; // already unprivileged: the other tests cover it
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // Everything the runtime reads must be readable by `nobody`: copies in a temp dir.
    let bin = home.join("par");
    std::fs::copy(env!("CARGO_BIN_EXE_par"), &bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_par-jail"), home.join("par-jail")).unwrap();
    let uv = home.join("uv");
    std::fs::copy(crate::harness::uv().canonicalize().unwrap(), &uv).unwrap();
    let pkg = home.join("kit-minimal.apkg");
    std::fs::copy(fixture("kit-minimal"), &pkg).unwrap();
    let status = std::process::Command::new("chown")
        .args(["-R", "nobody", home.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(home, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut child = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--usage-db",
            "off",
        ])
        .arg("--cache-dir")
        .arg(home.join("cache"))
        .arg("--uv")
        .arg(&uv)
        .arg(&pkg)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("UV_CACHE_DIR", home.join("uv-cache"))
        // The system interpreter: the pyenv ones live under /root, closed to nobody.
        .env("UV_PYTHON_PREFERENCE", "only-system")
        .env("UV_OFFLINE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let body = loop {
        let r = client
            .post(format!("http://{addr}/agents/kit-minimal/invoke"))
            .json(&json!({"where": true}))
            .send()
            .await;
        if let Ok(r) = r {
            if r.status() == 200 {
                break r.json::<Value>().await.unwrap();
            }
        }
        assert!(
            Instant::now() < deadline,
            "kit-minimal never served as nobody"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let packages: Value = client
        .get(format!("http://{addr}/runtime/packages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let exes = crate::launcher::executables_below(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let small = home.join("par-jail").canonicalize().unwrap();
    assert!(exes.contains(&small), "{exes:?}");
    assert!(
        body["data"]["home"]
            .as_str()
            .unwrap()
            .starts_with(home.to_str().unwrap()),
        "{body}"
    );
    let sandbox = &packages["packages"][0]["sandbox"];
    assert_eq!(sandbox["mode"], "strict", "{packages}");
    assert_eq!(sandbox["limits"]["pids"]["by"], "rlimit", "{packages}");
    // An ordinary user may create no cgroups on this kind of host: rlimits only.
    assert!(sandbox["cgroup"].is_null(), "{packages}");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// Reads the JSON log until the `listening` line; stderr is drained in a thread.
fn listening_addr(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("[par as nobody] {line}");
        }
    });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["message"] == "listening" {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("par as nobody did not start listening")
}

/// A loopback HTTP server answering every request with `body`; counts connections.
async fn canary(body: &'static str) -> (u16, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, hits)
}

#[tokio::test]
async fn egress_goes_through_the_metered_proxy_and_only_where_allowed() {
    let (allowed, allowed_hits) = canary("hello from outside").await;
    let (forbidden, forbidden_hits) = canary("you should not see this").await;
    let rt = TestRuntime::builder()
        .fixture("kit-escape")
        .fixture("kit-minimal")
        .args(&["--egress-allow", &format!("127.0.0.1:{allowed}")])
        .start()
        .await;
    let fetch = |port: u16| json!({"try": "fetch", "url": format!("http://127.0.0.1:{port}/")});
    let data = attempt(&rt, fetch(allowed)).await;
    assert_eq!(data["status"], 200, "{data}");
    assert_eq!(data["body"], "hello from outside", "{data}");
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 1);
    // Loopback without an allow pattern, and the cloud metadata address: refused by the
    // proxy (403), never connected to.
    let data = refused(&rt, fetch(forbidden)).await;
    assert_eq!(data["status"], 403, "{data}");
    let metadata = json!({"try": "fetch", "url": "http://169.254.169.254/latest/meta-data/"});
    let data = refused(&rt, metadata).await;
    assert_eq!(data["status"], 403, "{data}");
    assert_eq!(forbidden_hits.load(Ordering::SeqCst), 0);
    let text = rt.metrics().await;
    for line in [
        "par_egress_connections_total{package=\"kit-escape\",outcome=\"ok\"} 1",
        "par_egress_connections_total{package=\"kit-escape\",outcome=\"refused\"} 2",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(
        text.contains("par_egress_bytes_total{package=\"kit-escape\",direction=\"down\"}"),
        "{text}"
    );
    let report = rt.package_report("kit-escape.apkg").await;
    assert_eq!(report["sandbox"]["network"], "egress", "{report}");
}

#[tokio::test]
async fn a_package_on_network_none_reaches_nothing() {
    let (port, hits) = canary("unreachable").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("par.toml");
    std::fs::write(&config, "[packages.kit-escape]\nnetwork = \"none\"\n").unwrap();
    let rt = TestRuntime::builder()
        .fixture("kit-escape")
        .fixture("kit-minimal")
        .args(&["--config", config.to_str().unwrap()])
        .args(&["--egress-allow", &format!("127.0.0.1:{port}")])
        .start()
        .await;
    let body = json!({"try": "fetch", "url": format!("http://127.0.0.1:{port}/")});
    let data = refused(&rt, body).await;
    assert!(data["status"].is_null(), "no proxy answered: {data}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    let report = rt.package_report("kit-escape.apkg").await;
    assert_eq!(report["sandbox"]["network"], "none", "{report}");
}

#[tokio::test]
async fn httpx_works_through_the_proxy_and_its_bytes_land_on_the_calls_usage_record() {
    let body = "hello from outside";
    let (allowed, hits) = canary(body).await;
    let rt = TestRuntime::builder()
        .fixture("kit-escape")
        .args(&["--egress-allow", &format!("127.0.0.1:{allowed}")])
        .start()
        .await;
    let url = format!("http://127.0.0.1:{allowed}/");
    let data = attempt(&rt, json!({"try": "fetch_httpx", "url": url})).await;
    assert_eq!(
        (&data["status"], &data["body"]),
        (&json!(200), &json!(body)),
        "{data}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // A package cannot write the runtime's own usage keys.
    let data = attempt(&rt, json!({"try": "forge_usage"})).await;
    assert_eq!(data["escaped"], false, "{data}");

    let usage = rt.usage_when("?agent=kit-escape", 2).await;
    let records = usage["records"].as_array().unwrap();
    let reported = |i: usize| records[i]["reported"].clone();
    let (fetched, forged) = if reported(0)["tokens"] == 1 {
        (reported(1), reported(0))
    } else {
        (reported(0), reported(1))
    };
    // Up: at least the request line; down: at least the canary's body.
    let up = fetched["par.egress_bytes_up"].as_u64().unwrap_or(0);
    let down = fetched["par.egress_bytes_down"].as_u64().unwrap_or(0);
    assert!(up >= 20 && down >= body.len() as u64, "{usage}");
    assert_eq!(forged["tokens"], 1, "{usage}");
    assert!(forged.get("par.egress_bytes_up").is_none(), "{usage}");
}

/// Asks kit-escape to leave a sleeping process behind; its pid.
async fn leave_child(rt: &TestRuntime, how: &str) -> u32 {
    let (status, body) = rt
        .invoke("kit-escape", json!({"try": "spawn", "how": how}))
        .await;
    assert_eq!(status, 200, "{body}");
    let pid = body["data"]["pid"].as_u64().unwrap() as u32;
    assert!(alive(pid), "{how} child {pid} not running");
    pid
}

fn wait_gone(pids: &[u32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            Instant::now() < deadline,
            "{what}: still running {:?}",
            pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn without_the_sandbox_forked_children_die_at_unload_and_at_shutdown() {
    let start = || {
        TestRuntime::builder()
            .fixture("kit-escape")
            .args(&["--sandbox", "off"])
            .start()
    };
    let rt = start().await;
    let left = vec![
        leave_child(&rt, "plain").await,
        leave_child(&rt, "double").await,
    ];
    let r = rt
        .client
        .delete(rt.url("/runtime/packages/kit-escape"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    wait_gone(&left, "after unload");
    drop(rt);

    let mut rt = start().await;
    let left = vec![
        leave_child(&rt, "plain").await,
        leave_child(&rt, "double").await,
    ];
    assert!(rt.terminate().success());
    wait_gone(&left, "after shutdown");
}
