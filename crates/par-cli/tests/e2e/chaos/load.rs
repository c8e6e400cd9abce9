//! Steady load and its ledger: clients invoke agents the whole time, every answer is
//! recorded (status and error code), and each failure is judged against the windows in
//! which the chaos made that failure legitimate.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::rng::Rng;

/// Each client waits this long between calls: steady load, not a benchmark (the machine
/// is shared, and a saturated CPU would only measure the scheduler).
const PAUSE: Duration = Duration::from_millis(25);
/// Far above `--call-timeout`: a call the runtime never answers fails as a hang.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a failure may happen during a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WindowKind {
    /// A worker of the package was killed or frozen: calls in flight on it end in 502
    /// `worker_crashed` (killed, or replaced by the health check) or 504 `timeout`.
    Fault,
    /// The package was unloaded: calls get 404 `agent_not_found`.
    Absent,
}

struct Window {
    agent: String,
    kind: WindowKind,
    start: Instant,
    end: Option<Instant>,
}

/// One answer that was not a 200, or a request that got no answer at all.
#[derive(Debug)]
pub(super) struct Failure {
    pub agent: String,
    pub start: Instant,
    pub end: Instant,
    /// `"<status> <code>"`, or `"no answer: <error>"`.
    pub what: String,
    /// The error body's `request_id`, to find the call in the runtime's log.
    pub request_id: String,
}

impl Failure {
    fn answered(&self) -> Option<(u16, &str)> {
        let (status, code) = self.what.split_once(' ')?;
        Some((status.parse().ok()?, code))
    }
}

/// Everything the load saw, the windows the chaos opened and what it did when.
pub(super) struct Ledger {
    /// Answers by `"<status> <code>"` (`"200 ok"` for successes).
    pub answers: Mutex<BTreeMap<String, u64>>,
    pub failures: Mutex<Vec<Failure>>,
    windows: Mutex<Vec<Window>>,
    /// The chaos done, in order, to explain a failure that no window does.
    events: Mutex<Vec<(Instant, String)>>,
    began: Instant,
}

impl Default for Ledger {
    fn default() -> Ledger {
        Ledger {
            answers: Mutex::default(),
            failures: Mutex::default(),
            windows: Mutex::default(),
            events: Mutex::default(),
            began: Instant::now(),
        }
    }
}

/// A window opened by [`Ledger::open`], closed by [`WindowGuard::close`] (or on drop, so an
/// action that fails its own assertion still leaves a closed window behind).
pub(super) struct WindowGuard {
    ledger: Arc<Ledger>,
    index: usize,
}

impl WindowGuard {
    pub(super) fn close(self) {}
}

impl Drop for WindowGuard {
    fn drop(&mut self) {
        self.ledger.windows.lock().unwrap()[self.index].end = Some(Instant::now());
    }
}

impl Ledger {
    /// Opens a window in which `agent`'s calls may fail as `kind` allows.
    pub(super) fn open(self: &Arc<Self>, agent: &str, kind: WindowKind) -> WindowGuard {
        let mut windows = self.windows.lock().unwrap();
        windows.push(Window {
            agent: agent.into(),
            kind,
            start: Instant::now(),
            end: None,
        });
        WindowGuard {
            ledger: self.clone(),
            index: windows.len() - 1,
        }
    }

    /// Notes what the chaos does, for the report of an unexplained failure.
    pub(super) fn note(&self, event: String) {
        self.events.lock().unwrap().push((Instant::now(), event));
    }

    fn secs(&self, at: Instant) -> f64 {
        at.duration_since(self.began).as_secs_f64()
    }

    fn record(&self, agent: &str, start: Instant, answer: (Option<u16>, String, String)) {
        let (status, what, request_id) = answer;
        let key = match status {
            Some(200) => "200 ok".to_string(),
            _ => what.clone(),
        };
        *self.answers.lock().unwrap().entry(key).or_default() += 1;
        if status != Some(200) {
            self.failures.lock().unwrap().push(Failure {
                agent: agent.into(),
                start,
                end: Instant::now(),
                what,
                request_id,
            });
        }
    }

    /// Calls answered with any status (each left exactly one usage record).
    pub(super) fn answered(&self) -> u64 {
        let answers = self.answers.lock().unwrap();
        answers
            .iter()
            .filter(|(what, _)| !what.starts_with("no answer"))
            .map(|(_, n)| n)
            .sum()
    }

    /// Answers by status and code, as `(outcome, count)` with the outcome the usage record
    /// carries (`ok` or the error code).
    pub(super) fn by_outcome(&self) -> BTreeMap<String, u64> {
        let mut outcomes = BTreeMap::new();
        for (what, n) in self.answers.lock().unwrap().iter() {
            if let Some((_, code)) = what.split_once(' ').filter(|_| !what.starts_with("no")) {
                *outcomes.entry(code.to_string()).or_default() += n;
            }
        }
        outcomes
    }

    /// The failures no window explains, each described and with its request id: each is
    /// a lost or wrongly answered call.
    pub(super) fn unexplained(&self) -> Vec<(String, String)> {
        let windows = self.windows.lock().unwrap();
        let now = Instant::now();
        let explained = |failure: &Failure| {
            let Some((status, code)) = failure.answered() else {
                return false;
            };
            let kind = match (status, code) {
                (502, "worker_crashed") | (504, "timeout") => WindowKind::Fault,
                (404, "agent_not_found") => WindowKind::Absent,
                _ => return false,
            };
            windows.iter().any(|w| {
                w.agent == failure.agent
                    && w.kind == kind
                    && w.start <= failure.end
                    && failure.start <= w.end.unwrap_or(now)
            })
        };
        let failures = self.failures.lock().unwrap();
        failures
            .iter()
            .filter(|f| !explained(f))
            .map(|f| (self.describe(f), f.request_id.clone()))
            .collect()
    }

    /// The failure, when it ran, and the chaos of the seconds before.
    fn describe(&self, f: &Failure) -> String {
        let (start, end) = (self.secs(f.start), self.secs(f.end));
        let events = self.events.lock().unwrap();
        let recent: Vec<String> = events
            .iter()
            .filter(|(at, _)| (start - 10.0..=end + 1.0).contains(&self.secs(*at)))
            .map(|(at, what)| format!("{:.2} s {what}", self.secs(*at)))
            .collect();
        format!(
            "{} {} (request {}) from {start:.2} s to {end:.2} s; chaos around it: {recent:?}",
            f.agent, f.what, f.request_id
        )
    }
}

/// Clients invoking agents until stopped.
pub(super) struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

/// What a client sends `agent`: kit-async sleeps a little, so kills and freezes meet calls
/// in flight; the others answer at once.
fn body(agent: &str, rng: &mut Rng, n: u64) -> Value {
    match agent {
        "kit-async" => json!({"sleep": rng.between(0.0, 0.2), "n": n}),
        _ => json!({"n": n}),
    }
}

impl Load {
    /// `clients` lists the agent each client calls.
    pub(super) fn start(base: &str, ledger: Arc<Ledger>, clients: &[&str], seed: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = clients
            .iter()
            .enumerate()
            .map(|(i, agent)| {
                let (stop, ledger) = (stop.clone(), ledger.clone());
                let (agent, url) = (agent.to_string(), format!("{base}/agents/{agent}/invoke"));
                let mut rng = Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0x9e37));
                tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .timeout(CLIENT_TIMEOUT)
                        .build()
                        .unwrap();
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let start = Instant::now();
                        let sent = client.post(&url).json(&body(&agent, &mut rng, n)).send();
                        let answer = match sent.await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let body: Value = r.json().await.unwrap_or(Value::Null);
                                let code = body["code"].as_str().unwrap_or("<no code>");
                                let request_id = body["request_id"].as_str().unwrap_or("");
                                (Some(status), format!("{status} {code}"), request_id.into())
                            }
                            Err(e) => (None, format!("no answer: {e}"), String::new()),
                        };
                        ledger.record(&agent, start, answer);
                        n += 1;
                        tokio::time::sleep(PAUSE).await;
                    }
                })
            })
            .collect();
        Load { stop, clients }
    }

    /// Stops the clients after the calls they have in flight are answered.
    pub(super) async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for client in self.clients {
            client.await.unwrap();
        }
    }
}
