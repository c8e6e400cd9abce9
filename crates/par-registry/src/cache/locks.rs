//! Two layers of mutual exclusion per source location. In one process, a slot per key:
//! the first caller downloads while the others wait, then they take its result instead
//! of downloading again. Across processes sharing the cache, an exclusive file lock
//! (`par_filelock::lock_file`, taken by the fetcher).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::FetchError;
use crate::fetcher::Fetched;

pub(crate) type Memo = Option<Result<Fetched, FetchError>>;

#[derive(Default)]
pub(crate) struct Slot {
    /// Held while a download for the key runs; holds the latest outcome.
    pub memo: tokio::sync::Mutex<Memo>,
    /// Downloads finished for the key, so a waiter can tell whether one finished while
    /// it waited (then it shares that outcome) or only before it arrived.
    completed: AtomicU64,
}

impl Slot {
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }

    pub(crate) fn finish(&self) {
        self.completed.fetch_add(1, Ordering::AcqRel);
    }
}

#[derive(Default)]
pub(crate) struct Slots {
    map: Mutex<HashMap<String, Arc<Slot>>>,
}

/// A slot in use; the map entry goes away with its last user.
pub(crate) struct SlotHandle<'a> {
    slots: &'a Slots,
    key: String,
    pub slot: Arc<Slot>,
}

impl Slots {
    pub(crate) fn get(&self, key: &str) -> SlotHandle<'_> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let slot = map.entry(key.to_owned()).or_default().clone();
        SlotHandle {
            slots: self,
            key: key.to_owned(),
            slot,
        }
    }
}

impl Drop for SlotHandle<'_> {
    fn drop(&mut self) {
        let mut map = self.slots.map.lock().unwrap_or_else(|e| e.into_inner());
        // Two owners: the map and this handle, so nobody else is using or waiting.
        if Arc::strong_count(&self.slot) == 2 {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_shared_then_dropped() {
        let slots = Slots::default();
        let a = slots.get("k");
        let b = slots.get("k");
        assert!(Arc::ptr_eq(&a.slot, &b.slot));
        drop(a);
        drop(b);
        assert!(slots.map.lock().unwrap().is_empty());
    }
}
