//! Chaos soak: `par serve` under steady load while workers are killed (SIGKILL) and frozen
//! (SIGSTOP/SIGCONT, briefly or until the health check replaces them), a package is
//! hot-swapped between versions, unloaded and loaded again, the registry index flaps
//! (new index, 503, broken document, listener down) and PostgreSQL crashes and returns.
//!
//! Verdicts:
//! * every call is answered, and every failure is one the chaos explains: 502
//!   `worker_crashed` or 504 `timeout` for a call that overlapped a kill or freeze of its
//!   package's worker, 404 `agent_not_found` for a call to the package while unloaded.
//!   Anything else (no answer, a 500, 503, a body without a code) fails the test.
//! * once the load stops, the runtime's processes are back to the workers it had after
//!   warm-up, and its descriptors, threads and resident memory are flat.
//! * usage: every HTTP invoke leaves exactly one usage record whatever its answer (the
//!   route starts a `CallRecord` before anything else and writes it once, with `ok` or
//!   the error code; see `par-core/src/metering.rs`), and the load never hangs up on a
//!   call (no `client_closed`). So the ledger's totals equal the calls answered, its
//!   errors the non-200 answers, and PostgreSQL, after the shipper catches up on the
//!   outages, holds the same rows with the same outcomes, code by code.
//!
//! `PAR_CHAOS_SECS` sets how long the chaos lasts (default 140: the CI smoke version);
//! `PAR_CHAOS_SEED` replays a schedule (the seed is printed). `scripts/chaos-soak.sh`
//! runs the 30-minute soak and prints the figures (lines starting with `chaos:`).

mod faults;
mod index;
mod load;
mod outages;
mod resources;
mod rng;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faults::{ready_workers, wait_whole, WorkerChaos, SWAPPED};
use index::{FlappingIndex, BASE, EXTRA};
use load::{Ledger, Load};
use resources::Resources;

use crate::harness::{wait_until, TestRuntime};
use crate::usage_postgres::pg_server::PgServer;

/// Worker processes per package (`--workers`): a kill leaves one serving.
pub(crate) const WORKERS: usize = 2;
/// The agent each load client calls.
const CLIENTS: &[&str] = &[
    "kit-async",
    "kit-async",
    "kit-async",
    SWAPPED,
    SWAPPED,
    "twin-a",
];
/// Packages whose workers are killed and frozen.
const TARGETS: &[&str] = &["kit-async", SWAPPED, "twin-a"];
const INSTANCE: &str = "chaos";
/// Bounds on what the runtime may hold at the end beyond what it held after warm-up.
const FD_SLACK: usize = 16;
const THREAD_SLACK: usize = 16;
const RSS_SLACK_KIB: u64 = 64 * 1024;
/// How often a long run prints where it is (calls so far, resources).
const PROGRESS: Duration = Duration::from_secs(60);
/// How long the runtime gets to settle (workers restarted, idle threads gone) at the end.
const SETTLE: Duration = Duration::from_secs(90);

fn chaos_duration() -> Duration {
    let secs = std::env::var("PAR_CHAOS_SECS")
        .map_or(140, |s| s.parse().expect("PAR_CHAOS_SECS: whole seconds"));
    Duration::from_secs(secs)
}

fn seed() -> u64 {
    std::env::var("PAR_CHAOS_SEED").map_or_else(
        |_| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.unwrap().as_nanos() as u64
        },
        |s| s.parse().expect("PAR_CHAOS_SEED: a number"),
    )
}

async fn start_runtime(index: &FlappingIndex, postgres: &str) -> TestRuntime {
    let workers = WORKERS.to_string();
    let rt = TestRuntime::builder()
        .fixture("kit-async")
        .fixture(SWAPPED)
        .env("PAR_USAGE_POSTGRES_URL", postgres)
        .args(&["--registry-index", &index.url(), "--poll-interval", "0.5"])
        .args(&["--usage-ship-interval", "0.2", "--instance-id", INSTANCE])
        .args(&["--workers", &workers, "--call-timeout", "10"])
        .args(&[
            "--worker-health-interval",
            "0.5",
            "--worker-health-timeout",
            "3",
        ])
        // Kills are the point here: crash-loop protection has its own test.
        .args(&["--crash-loop-threshold", "1000000"])
        .start()
        .await;
    for name in TARGETS {
        wait_whole(&rt, name, &[]).await;
    }
    rt
}

/// Waits until the runtime holds no more than it did at `start` (processes exactly).
async fn settle(rt: &TestRuntime, start: Resources) -> Resources {
    let what = format!("the runtime back to its warm-up resources ({start})");
    let end = wait_until(&what, SETTLE, || async {
        let now = Resources::sample(rt.pid());
        let flat = now.processes == start.processes
            && now.fds <= start.fds + FD_SLACK
            && now.threads <= start.threads + THREAD_SLACK;
        flat.then_some(now)
    })
    .await;
    assert!(
        end.rss_kib <= start.rss_kib + RSS_SLACK_KIB,
        "resident memory grew from {start} to {end}"
    );
    end
}

/// The ledger's `(calls, errors)` once it holds `answered` calls.
async fn ledger_totals(rt: &TestRuntime, answered: u64) -> (u64, u64) {
    let what = format!("{answered} usage records in the ledger");
    wait_until(&what, Duration::from_secs(30), || async {
        let (status, usage) = rt.get("/runtime/usage?limit=1").await;
        assert_eq!(status, 200, "{usage}");
        let calls = usage["totals"]["calls"].as_u64().unwrap();
        assert!(
            calls <= answered,
            "{calls} usage records for {answered} answers"
        );
        let errors = usage["totals"]["errors"].as_u64().unwrap();
        (calls == answered).then_some((calls, errors))
    })
    .await
}

/// PostgreSQL's rows by outcome once they add up to `answered` (the shipper catches up on
/// whatever piled up during the last outage).
async fn shipped(postgres: &str, answered: u64) -> BTreeMap<String, u64> {
    let what = format!("{answered} usage rows in PostgreSQL");
    wait_until(&what, Duration::from_secs(120), || async {
        let rows = outages::shipped_by_outcome(postgres.to_string(), INSTANCE).await;
        (rows.values().sum::<u64>() == answered).then_some(rows)
    })
    .await
}

/// Log lines naming an unexplained failure's request, and the warnings and errors other
/// than the registry's and the usage shipper's (the flapping makes plenty of those).
fn log_about(rt: &TestRuntime, unexplained: &[(String, String)]) -> String {
    let ids: Vec<&str> = unexplained
        .iter()
        .map(|(_, id)| id.as_str())
        .filter(|id| !id.is_empty())
        .collect();
    let noise = [
        "par_core::registry",
        "par_registry::",
        "par_telemetry::usage::ship",
    ];
    rt.logs()
        .lines()
        .filter(|l| {
            ids.iter().any(|id| l.contains(id))
                || ((l.contains("\"WARN\"") || l.contains("\"ERROR\""))
                    && !noise.iter().any(|n| l.contains(n)))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_answers_every_call_leaks_nothing_and_bills_every_answer() {
    let (duration, seed) = (chaos_duration(), seed());
    println!(
        "chaos: seed {seed}, {} s (PAR_CHAOS_SEED={seed} PAR_CHAOS_SECS={} to repeat)",
        duration.as_secs(),
        duration.as_secs()
    );
    let pg = tokio::task::spawn_blocking(PgServer::start_new)
        .await
        .unwrap();
    let postgres = pg.url();
    let index = Arc::new(FlappingIndex::start().await);
    let rt = start_runtime(&index, &postgres).await;

    let ledger = Arc::new(Ledger::default());
    let load = Load::start(&rt.base, ledger.clone(), CLIENTS, seed);
    wait_until("warm-up calls", Duration::from_secs(60), || async {
        (ledger.answered() >= 200).then_some(())
    })
    .await;
    let start = Resources::sample(rt.pid());

    let stop = Arc::new(AtomicBool::new(false));
    let index_flaps = tokio::spawn(outages::flap_index(index.clone(), stop.clone(), seed ^ 1));
    let pg = Arc::new(Mutex::new(pg));
    let pg_outages = tokio::spawn(outages::flap_postgres(pg.clone(), stop.clone(), seed ^ 2));
    let mut chaos = WorkerChaos::new(&rt, ledger.clone(), seed ^ 3, TARGETS);
    let began = Instant::now();
    let mut next_report = PROGRESS;
    while began.elapsed() < duration {
        chaos.step().await;
        if began.elapsed() >= next_report {
            next_report += PROGRESS;
            let now = Resources::sample(rt.pid());
            let (secs, answered) = (began.elapsed().as_secs(), ledger.answered());
            println!("chaos: at {secs} s: {answered} calls answered; {now}");
        }
    }
    stop.store(true, Ordering::SeqCst);
    chaos.restore().await;
    let index_flaps = index_flaps.await.unwrap();
    let pg_outages = pg_outages.await.unwrap();
    wait_until(
        &format!("{EXTRA} unloaded"),
        Duration::from_secs(60),
        || async { ready_workers(&rt, EXTRA).await.is_empty().then_some(()) },
    )
    .await;
    for name in BASE {
        wait_whole(&rt, name, &[]).await;
    }
    load.stop().await;

    let answers = ledger.answers.lock().unwrap().clone();
    println!(
        "chaos: actions {:?}, index {index_flaps:?}, postgres outages {pg_outages}",
        chaos.done
    );
    println!("chaos: answers {answers:?}");
    // The chaos must have happened: workers killed, frozen until replaced, swapped.
    for action in ["sigkill", "freeze_replaced", "hot_swap"] {
        assert!(
            chaos.done.contains_key(action),
            "no {action} in {:?}",
            chaos.done
        );
    }
    let unexplained = ledger.unexplained();
    assert!(
        unexplained.is_empty(),
        "failures no chaos explains:\n{}\nthe runtime's log about them:\n{}",
        unexplained
            .iter()
            .map(|(what, _)| what.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        log_about(&rt, &unexplained)
    );

    let end = settle(&rt, start).await;
    println!("chaos: resources after warm-up: {start}");
    println!("chaos: resources at the end:    {end}");

    let answered = ledger.answered();
    let outcomes = ledger.by_outcome();
    let errors: u64 = outcomes
        .iter()
        .filter(|(o, _)| *o != "ok")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        ledger_totals(&rt, answered).await,
        (answered, errors),
        "ledger totals"
    );
    let rows = shipped(&postgres, answered).await;
    assert_eq!(rows, outcomes, "PostgreSQL rows by outcome");
    let metrics = rt.metrics().await;
    assert!(
        metrics.contains("par_usage_records_dropped_total 0\n"),
        "usage records dropped"
    );
    println!(
        "chaos: usage: {answered} answered calls = {answered} ledger records \
              ({errors} errors) = {answered} PostgreSQL rows, by outcome {rows:?}"
    );
}
