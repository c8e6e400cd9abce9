//! The chaos done around the runtime, each on its own schedule: the registry index flaps
//! and PostgreSQL (where usage is shipped) goes down and comes back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::index::{FlappingIndex, IndexMode};
use super::rng::Rng;
use crate::usage_postgres::pg_server::PgServer;

/// Sleeps `pause`, returning early (false) once `stop` is set.
async fn sleep_unless(stop: &AtomicBool, pause: Duration) -> bool {
    let until = Instant::now() + pause;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    !stop.load(Ordering::SeqCst)
}

/// Flaps the index until `stop`, then leaves it serving [`IndexMode::Base`]. Returns the
/// modes served, with counts.
pub(super) async fn flap_index(
    index: Arc<FlappingIndex>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> BTreeMap<String, u64> {
    let mut rng = Rng::new(seed);
    let mut served = BTreeMap::new();
    let modes = [
        IndexMode::Base,
        IndexMode::WithExtra,
        IndexMode::Unavailable,
        IndexMode::Broken,
        IndexMode::Down,
    ];
    while sleep_unless(&stop, rng.pause(1.0, 4.0)).await {
        let mode = *rng.pick(&modes);
        index.set(mode).await;
        *served.entry(format!("{mode:?}")).or_default() += 1;
    }
    index.set(IndexMode::Base).await;
    served
}

/// Kills PostgreSQL (as a crash: SIGKILL) after a while up, restarts it after a while
/// down, until `stop`; it is left running. Returns the number of outages.
pub(super) async fn flap_postgres(
    pg: Arc<Mutex<PgServer>>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> u64 {
    let mut rng = Rng::new(seed);
    let mut outages = 0;
    while sleep_unless(&stop, rng.pause(3.0, 10.0)).await {
        let pg_down = pg.clone();
        tokio::task::spawn_blocking(move || pg_down.lock().unwrap().kill())
            .await
            .unwrap();
        outages += 1;
        sleep_unless(&stop, rng.pause(1.0, 6.0)).await;
        let pg_up = pg.clone();
        tokio::task::spawn_blocking(move || pg_up.lock().unwrap().start())
            .await
            .unwrap();
    }
    outages
}

/// Usage rows PostgreSQL holds for `instance`, by outcome (empty while unreachable).
pub(super) async fn shipped_by_outcome(
    url: String,
    instance: &'static str,
) -> BTreeMap<String, u64> {
    tokio::task::spawn_blocking(move || {
        let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) else {
            return BTreeMap::new();
        };
        let sql = "SELECT outcome, count(*) FROM par_usage_records \
                   WHERE instance_id = $1 GROUP BY outcome";
        let rows = client.query(sql, &[&instance]).unwrap_or_default();
        rows.iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1) as u64))
            .collect()
    })
    .await
    .unwrap()
}
