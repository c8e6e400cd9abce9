//! Egress bytes on the call's usage record. The proxy knows the package a connection
//! belongs to, not the call: a jail's processes share one proxy and one connection pool.
//! So bytes are attributed to a call only when it is its package's one call in flight;
//! with several in flight they count in the package's metrics alone (documented in
//! docs/operations.md). Attribution happens per chunk as bytes flow, so a pooled
//! connection that outlives one call is billed to whichever call is running.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

/// Keys the runtime writes into a call's `reported` usage; an agent cannot set `par.*`
/// keys itself (see `par-core`'s usage merge).
pub const EGRESS_UP_KEY: &str = "par.egress_bytes_up";
pub const EGRESS_DOWN_KEY: &str = "par.egress_bytes_down";

/// A call's usage map, shared with whoever writes its record.
pub type CallUsage = Arc<Mutex<Map<String, Value>>>;

#[derive(Default)]
pub(super) struct EgressCalls {
    next_id: AtomicU64,
    by_package: Mutex<HashMap<String, Vec<(u64, CallUsage)>>>,
}

/// A call registered for egress attribution; dropping it ends the registration.
pub struct EgressCallGuard {
    calls: Arc<EgressCalls>,
    package: String,
    id: u64,
}

impl EgressCalls {
    pub(super) fn register(self: &Arc<Self>, package: &str, usage: CallUsage) -> EgressCallGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut by_package = self.by_package.lock().expect("egress calls poisoned");
        by_package
            .entry(package.to_owned())
            .or_default()
            .push((id, usage));
        EgressCallGuard {
            calls: self.clone(),
            package: package.to_owned(),
            id,
        }
    }

    /// Adds `n` bytes under `key` to the package's call when it has exactly one in flight.
    pub(super) fn attribute(&self, package: &str, key: &str, n: u64) {
        let usage = {
            let by_package = self.by_package.lock().expect("egress calls poisoned");
            match by_package.get(package).map(Vec::as_slice) {
                Some([(_, usage)]) => usage.clone(),
                _ => return,
            }
        };
        let mut usage = usage.lock().expect("usage poisoned");
        let total = usage.get(key).and_then(Value::as_u64).unwrap_or(0);
        usage.insert(key.to_owned(), total.saturating_add(n).into());
    }
}

impl Drop for EgressCallGuard {
    fn drop(&mut self) {
        let mut by_package = self.calls.by_package.lock().expect("egress calls poisoned");
        if let Some(calls) = by_package.get_mut(&self.package) {
            calls.retain(|(id, _)| *id != self.id);
            if calls.is_empty() {
                by_package.remove(&self.package);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> CallUsage {
        Arc::default()
    }

    fn bytes(usage: &CallUsage, key: &str) -> Option<u64> {
        usage.lock().unwrap().get(key).and_then(Value::as_u64)
    }

    #[test]
    fn the_only_call_in_flight_gets_its_packages_bytes() {
        let calls = Arc::new(EgressCalls::default());
        let (a, other) = (usage(), usage());
        let _a = calls.register("pkg", a.clone());
        let _other = calls.register("elsewhere", other.clone());
        calls.attribute("pkg", EGRESS_UP_KEY, 10);
        calls.attribute("pkg", EGRESS_UP_KEY, 5);
        calls.attribute("pkg", EGRESS_DOWN_KEY, 7);
        assert_eq!(bytes(&a, EGRESS_UP_KEY), Some(15));
        assert_eq!(bytes(&a, EGRESS_DOWN_KEY), Some(7));
        assert_eq!(bytes(&other, EGRESS_UP_KEY), None);
    }

    #[test]
    fn concurrent_calls_of_one_package_get_nothing() {
        let calls = Arc::new(EgressCalls::default());
        let (a, b) = (usage(), usage());
        let guard_a = calls.register("pkg", a.clone());
        let _b = calls.register("pkg", b.clone());
        calls.attribute("pkg", EGRESS_UP_KEY, 10);
        assert_eq!(
            (bytes(&a, EGRESS_UP_KEY), bytes(&b, EGRESS_UP_KEY)),
            (None, None)
        );
        // Once a is done, b is alone again.
        drop(guard_a);
        calls.attribute("pkg", EGRESS_UP_KEY, 3);
        assert_eq!(bytes(&b, EGRESS_UP_KEY), Some(3));
        assert_eq!(bytes(&a, EGRESS_UP_KEY), None);
    }

    #[test]
    fn bytes_after_the_call_ended_go_nowhere() {
        let calls = Arc::new(EgressCalls::default());
        let a = usage();
        drop(calls.register("pkg", a.clone()));
        calls.attribute("pkg", EGRESS_DOWN_KEY, 9);
        assert_eq!(bytes(&a, EGRESS_DOWN_KEY), None);
        assert!(calls.by_package.lock().unwrap().is_empty());
    }
}
