//! A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, then
//! `postgres` as a child process on a free loopback port, killed when dropped.
//!
//! The binaries come from `PAR_POSTGRES_BIN` (`scripts/install-postgres.sh` prints it);
//! without it the test fails, it is not skipped. PostgreSQL refuses to run as root, so
//! under root both programs run as the `postgres` user (else `nobody`) through
//! `Command::uid`, which execs them directly: killing the child kills the server.
//! Also used by par-cli's end-to-end tests (included by path).

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh server gets to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    owner: Option<(u32, u32)>,
    child: Option<Child>,
}

/// The directory holding `initdb` and `postgres`.
pub(crate) fn bin_dir() -> PathBuf {
    let Some(dir) = std::env::var_os("PAR_POSTGRES_BIN") else {
        panic!(
            "PAR_POSTGRES_BIN is not set: these tests need a real PostgreSQL server. Run \
             `export PAR_POSTGRES_BIN=$(bash scripts/install-postgres.sh)` (scripts/test.sh does)"
        );
    };
    let dir = PathBuf::from(dir);
    for program in ["initdb", "postgres"] {
        assert!(
            dir.join(program).is_file(),
            "PAR_POSTGRES_BIN={}: no {program} there",
            dir.display()
        );
    }
    dir
}

impl PgServer {
    /// A new cluster (superuser `par`, trust authentication), not started yet.
    pub(crate) fn init() -> PgServer {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("par-pg-")
            .tempdir()
            .unwrap();
        let owner = unprivileged_owner();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let server = PgServer {
            bin,
            dir,
            port: free_port(),
            owner,
            child: None,
        };
        let status = server
            .command("initdb")
            .args([
                "--auth=trust",
                "-U",
                "par",
                "--no-sync",
                "-E",
                "UTF8",
                "--no-locale",
            ])
            .arg("-D")
            .arg(server.data())
            .stdout(Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed: {status}");
        server
    }

    /// A started cluster.
    pub(crate) fn start_new() -> PgServer {
        let mut server = PgServer::init();
        server.start();
        server
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://par@127.0.0.1:<port>/postgres`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://par@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server with `extra` settings (`-c name=value` pairs) and waits until it
    /// accepts connections. Retries while a killed predecessor's backends still exit.
    pub(crate) fn start_with(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "already running");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let mut child = self.spawn(extra);
            if self.wait_ready(&mut child, deadline) {
                self.child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "postgres did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub(crate) fn start(&mut self) {
        self.start_with(&[]);
    }

    /// SIGKILL, as a crash: no shutdown checkpoint, connections cut.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A client on the server (from a thread outside any async runtime).
    pub(crate) fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).expect("connect to test server")
    }

    /// Writes a file into the data directory, owned by the server's user, mode 0600.
    pub(crate) fn write_private(&self, name: &str, contents: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.data().join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
        path
    }

    fn spawn(&self, extra: &[&str]) -> Child {
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.data())
            .arg("-k")
            .arg(self.dir.path())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]);
        for setting in extra {
            command.args(["-c", setting]);
        }
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn postgres")
    }

    fn wait_ready(&self, child: &mut Child, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            if ready(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        // A directory the server's user can enter, whoever runs the tests.
        command.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid);
        }
        command
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Up when it answers a plain-text login, even with a refusal from `pg_hba.conf` (a test
/// may allow only TLS), but not while it is still starting.
fn ready(port: u16) -> bool {
    let url = format!("postgres://par@127.0.0.1:{port}/postgres?connect_timeout=1");
    match postgres::Client::connect(&url, postgres::NoTls) {
        Ok(mut client) => client.simple_query("SELECT 1").is_ok(),
        Err(error) => error
            .code()
            .is_some_and(|code| *code != postgres::error::SqlState::CANNOT_CONNECT_NOW),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `(uid, gid)` of the user the server runs as when we are root; `None` otherwise.
fn unprivileged_owner() -> Option<(u32, u32)> {
    // /proc/self belongs to the effective user.
    if std::fs::metadata("/proc/self").ok()?.uid() != 0 {
        return None;
    }
    ["postgres", "nobody"].iter().find_map(|name| ids_of(name))
}

fn ids_of(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}
