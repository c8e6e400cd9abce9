//! The chaos done to workers and packages, one action at a time: SIGKILL a worker, freeze
//! one briefly (SIGSTOP, SIGCONT) or past the health timeout (replaced), hot-swap
//! kit-minimal to its other version, unload it and load it again. Each action that makes
//! failures legitimate opens a window for them first, and closes it once the package is
//! whole again (every worker up), so a failure after that is a real one.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::load::{Ledger, WindowKind};
use super::rng::Rng;
use super::WORKERS;
use crate::harness::{fixture, wait_for_load, wait_until, TestRuntime};
use crate::health::descendants;

/// The package that is hot-swapped, unloaded and loaded again.
pub(super) const SWAPPED: &str = "kit-minimal";
/// How long a package may take to be whole again after an action.
const RECOVERY: Duration = Duration::from_secs(90);

pub(super) struct WorkerChaos<'a> {
    rt: &'a TestRuntime,
    ledger: Arc<Ledger>,
    rng: Rng,
    /// Packages whose workers may be hit (all of them are under load).
    targets: Vec<&'static str>,
    /// The version of [`SWAPPED`] mounted, `None` while unloaded.
    swapped_version: Option<u8>,
    /// Actions done, by name.
    pub done: BTreeMap<&'static str, u64>,
}

/// Worker pids of the ready (not draining) version of package `name`.
pub(super) async fn ready_workers(rt: &TestRuntime, name: &str) -> Vec<u64> {
    let (_, body) = rt.get("/runtime/packages").await;
    let packages = body["packages"].as_array().cloned().unwrap_or_default();
    packages
        .iter()
        .find(|p| p["name"] == name && p["state"] == "ready")
        .and_then(|p| p["workers"].as_array())
        .map(|w| w.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// Waits until `name` runs its full set of workers, none of them in `gone`.
pub(super) async fn wait_whole(rt: &TestRuntime, name: &str, gone: &[u64]) -> Vec<u64> {
    let what = format!("{name} back to {WORKERS} workers without {gone:?}");
    wait_until(&what, RECOVERY, || async {
        let pids = ready_workers(rt, name).await;
        (pids.len() == WORKERS && !pids.iter().any(|p| gone.contains(p))).then_some(pids)
    })
    .await
}

fn signal(signal: &str, pids: &[u32]) {
    for pid in pids {
        // A process already gone (killed by the health check) is not an error here.
        let _ = Command::new("kill")
            .args([signal, &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Whether `pid` runs below the runtime (a worker it started, or one a package's zygote
/// forked, not yet reaped): the chaos never signals anything else, whatever a stale pid
/// may have become.
fn below(pid: u64, runtime: u32) -> bool {
    let mut pid = pid;
    for _ in 0..16 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after_name = stat.rsplit(')').next().unwrap_or("");
        let Some(parent) = after_name.split_whitespace().nth(1) else {
            return false;
        };
        match parent.parse::<u64>() {
            Ok(p) if p == u64::from(runtime) => return true,
            Ok(p) if p > 1 => pid = p,
            _ => return false,
        }
    }
    false
}

/// The worker and every process below it (in a jail: its init and the Python worker).
fn tree(pid: u64) -> Vec<u32> {
    let pid = u32::try_from(pid).unwrap();
    let mut all = vec![pid];
    all.extend(descendants(pid));
    all
}

impl<'a> WorkerChaos<'a> {
    pub(super) fn new(
        rt: &'a TestRuntime,
        ledger: Arc<Ledger>,
        seed: u64,
        targets: &[&'static str],
    ) -> Self {
        WorkerChaos {
            rt,
            ledger,
            rng: Rng::new(seed),
            targets: targets.to_vec(),
            swapped_version: Some(1),
            done: BTreeMap::new(),
        }
    }

    /// Waits a random short while, then does one random action.
    pub(super) async fn step(&mut self) {
        tokio::time::sleep(self.rng.pause(0.3, 2.5)).await;
        let action = match self.rng.below(100) {
            0..30 => "sigkill",
            30..50 => "freeze_brief",
            50..62 => "freeze_replaced",
            62..82 => "hot_swap",
            _ => "unload_load",
        };
        match action {
            "hot_swap" | "unload_load" if self.swapped_version.is_none() => self.load().await,
            "hot_swap" => self.hot_swap().await,
            "unload_load" => self.unload_load().await,
            _ => {
                let target = *self.rng.pick(&self.targets);
                let pids = wait_whole(self.rt, target, &[]).await;
                let victim = *self.rng.pick(&pids);
                if !below(victim, self.rt.pid()) {
                    // Exited since the report was read (a health check's kill): next time.
                    self.ledger
                        .note(format!("{target}'s worker {victim} already gone"));
                    return;
                }
                match action {
                    "sigkill" => self.sigkill(target, victim).await,
                    "freeze_brief" => self.freeze_brief(target, victim).await,
                    _ => self.freeze_replaced(target, victim).await,
                }
            }
        }
        *self.done.entry(action).or_default() += 1;
        self.ledger.note(format!("{action} done"));
    }

    /// SIGKILL to one process of the worker's tree, picked at random: the worker the
    /// runtime started, or (jailed) the jail's init or the Python process inside, as an
    /// OOM killer would. Each way, the runtime must see the worker gone and replace it.
    async fn sigkill(&mut self, target: &str, victim: u64) {
        let window = self.ledger.open(target, WindowKind::Fault);
        let killed = *self.rng.pick(&tree(victim));
        self.ledger
            .note(format!("SIGKILL {killed} of {target}'s worker {victim}"));
        signal("-KILL", &[killed]);
        wait_whole(self.rt, target, &[victim]).await;
        window.close();
    }

    /// Frozen for less than the health timeout: calls wait, then go on.
    async fn freeze_brief(&mut self, target: &str, victim: u64) {
        let window = self.ledger.open(target, WindowKind::Fault);
        let frozen = tree(victim);
        self.ledger
            .note(format!("SIGSTOP {target}'s worker {victim} briefly"));
        signal("-STOP", &frozen);
        tokio::time::sleep(self.rng.pause(0.1, 1.0)).await;
        signal("-CONT", &frozen);
        wait_whole(self.rt, target, &[]).await;
        window.close();
    }

    /// Frozen until the health check kills and replaces it.
    async fn freeze_replaced(&mut self, target: &str, victim: u64) {
        let window = self.ledger.open(target, WindowKind::Fault);
        let frozen = tree(victim);
        self.ledger
            .note(format!("SIGSTOP {target}'s worker {victim} until replaced"));
        signal("-STOP", &frozen);
        wait_whole(self.rt, target, &[victim]).await;
        signal("-CONT", &frozen);
        window.close();
    }

    /// Loads the other version of [`SWAPPED`] while it serves: nothing may fail.
    async fn hot_swap(&mut self) {
        let to = if self.swapped_version == Some(1) {
            2
        } else {
            1
        };
        self.load_version(to).await;
    }

    /// Unloads [`SWAPPED`]; loads it again after a pause (its calls get 404 meanwhile).
    async fn unload_load(&mut self) {
        let window = self.ledger.open(SWAPPED, WindowKind::Absent);
        self.ledger.note(format!("unload {SWAPPED}"));
        let r = self
            .rt
            .client
            .delete(self.rt.url(&format!("/runtime/packages/{SWAPPED}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            202,
            "unload: {}",
            r.text().await.unwrap_or_default()
        );
        self.swapped_version = None;
        tokio::time::sleep(self.rng.pause(0.2, 2.0)).await;
        self.load().await;
        window.close();
    }

    /// Loads a random version of [`SWAPPED`] after an unload.
    async fn load(&mut self) {
        let version = if self.rng.below(2) == 0 { 1 } else { 2 };
        self.load_version(version).await;
    }

    async fn load_version(&mut self, version: u8) {
        let file = if version == 1 {
            "kit-minimal"
        } else {
            "kit-minimal-v2"
        };
        // Going back to 1.0.0 from 2.0.0 is a downgrade, refused unless forced.
        let force = version == 1 && self.swapped_version == Some(2);
        let source = fixture(file).display().to_string();
        self.ledger.note(format!("load {file} (force {force})"));
        let (status, accepted) = self
            .rt
            .post_raw(
                "/runtime/packages",
                json!({"source": source, "force": force}).to_string(),
            )
            .await;
        assert_eq!(status, 202, "load {file}: {accepted}");
        let job = wait_for_load(self.rt, accepted["load_id"].as_u64().unwrap()).await;
        assert_eq!(job["state"], "ready", "load {file}: {job}");
        let want = format!("{version}.0.0");
        wait_until(&format!("{SWAPPED} {want} routed"), RECOVERY, || async {
            let (status, agent) = self.rt.get(&format!("/agents/{SWAPPED}")).await;
            (status == 200 && agent["version"] == want.as_str()).then_some(())
        })
        .await;
        wait_whole(self.rt, SWAPPED, &[]).await;
        self.swapped_version = Some(version);
    }

    /// Ends with [`SWAPPED`] mounted, as at the start.
    pub(super) async fn restore(&mut self) {
        if self.swapped_version.is_none() {
            self.load().await;
        }
    }
}
