use super::*;

fn store() -> (tempfile::TempDir, RunStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::open(&dir.path().join("runs.sqlite3")).unwrap();
    (dir, store)
}

fn new_run(owner: &str, key: Option<&str>) -> NewRun {
    NewRun {
        agent: "a".into(),
        owner: owner.into(),
        idempotency_key: key.map(str::to_string),
        request_digest: "d1".into(),
    }
}

#[test]
fn a_replayed_key_must_come_with_the_same_request() {
    let (_dir, store) = store();
    let (first, created) = store.create(&new_run("me", Some("k")), 60_000).unwrap();
    assert!(created);
    let (again, created) = store.create(&new_run("me", Some("k")), 60_000).unwrap();
    assert!(!created);
    assert_eq!(again.run_id, first.run_id);
    let mut other = new_run("me", Some("k"));
    other.request_digest = "d2".into();
    match store.create(&other, 60_000) {
        Err(StoreError::KeyReused { run_id }) => assert_eq!(run_id, first.run_id),
        got => panic!("a different request under the same key: {got:?}"),
    }
    // Another owner's key is its own.
    let mut elsewhere = other;
    elsewhere.owner = "you".into();
    assert!(store.create(&elsewhere, 60_000).unwrap().1);
}

#[test]
fn a_store_without_digests_gains_the_column_and_replays_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.sqlite3");
    let old = Connection::open(&path).unwrap();
    old.execute_batch(&SCHEMA.replace("    request_digest TEXT,\n", ""))
        .unwrap();
    old.execute(
        "INSERT INTO runs (run_id, agent, status, owner, idempotency_key, created_ms)
         VALUES ('r1', 'a', 'succeeded', 'me', 'k', ?1)",
        params![now_ms()],
    )
    .unwrap();
    drop(old);
    let store = RunStore::open(&path).unwrap();
    let (run, created) = store.create(&new_run("me", Some("k")), 60_000).unwrap();
    assert!(!created);
    assert_eq!(run.run_id, "r1");
}

#[test]
fn a_run_goes_from_queued_to_succeeded_with_its_events_in_order() {
    let (_dir, store) = store();
    let (run, created) = store.create(&new_run("me", None), 1000).unwrap();
    assert!(created);
    assert_eq!(run.status, RunStatus::Queued);
    assert!(store.mark_running(&run.run_id, "1.0.0").unwrap());
    assert_eq!(store.append_item(&run.run_id, "1").unwrap(), Some(1));
    assert_eq!(store.append_item(&run.run_id, "2").unwrap(), Some(2));
    assert!(store
        .finish(&run.run_id, &RunEnd::succeeded("[1,2]".into()))
        .unwrap());
    let got = store.get(&run.run_id).unwrap().unwrap();
    assert_eq!(got.status, RunStatus::Succeeded);
    assert_eq!(got.version.as_deref(), Some("1.0.0"));
    assert_eq!(got.result.as_deref(), Some("[1,2]"));
    let events = store.events_after(&run.run_id, 1).unwrap();
    let kinds: Vec<_> = events.iter().map(|e| (e.seq, e.kind)).collect();
    assert_eq!(kinds, [(2, EventKind::Item), (3, EventKind::Done)]);
}

#[test]
fn a_run_ends_once_and_nothing_is_added_after() {
    let (_dir, store) = store();
    let (run, _) = store.create(&new_run("me", None), 1000).unwrap();
    let cancel = RunEnd::error(RunStatus::Cancelled, "cancelled", "stop");
    assert!(store.finish(&run.run_id, &cancel).unwrap());
    assert!(!store
        .finish(&run.run_id, &RunEnd::succeeded("1".into()))
        .unwrap());
    assert_eq!(store.append_item(&run.run_id, "3").unwrap(), None);
    assert!(!store.mark_running(&run.run_id, "1").unwrap());
    let got = store.get(&run.run_id).unwrap().unwrap();
    assert_eq!(got.status, RunStatus::Cancelled);
    assert_eq!(got.error.unwrap().code, "cancelled");
    assert_eq!(store.events_after(&run.run_id, 0).unwrap().len(), 1);
}

#[test]
fn an_idempotency_key_returns_the_same_run_per_owner_within_its_window() {
    let (_dir, store) = store();
    let (first, _) = store.create(&new_run("me", Some("k")), 60_000).unwrap();
    let (again, created) = store.create(&new_run("me", Some("k")), 60_000).unwrap();
    assert!(!created);
    assert_eq!(again.run_id, first.run_id);
    let (other, created) = store.create(&new_run("you", Some("k")), 60_000).unwrap();
    assert!(created);
    assert_ne!(other.run_id, first.run_id);
    // A window of zero: the key has expired and names a new run.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let (fresh, created) = store.create(&new_run("me", Some("k")), 0).unwrap();
    assert!(created);
    assert_ne!(fresh.run_id, first.run_id);
}

#[test]
fn unfinished_runs_become_interrupted_with_a_last_event() {
    let (_dir, store) = store();
    let (queued, _) = store.create(&new_run("me", None), 1000).unwrap();
    let (done, _) = store.create(&new_run("me", None), 1000).unwrap();
    store
        .finish(&done.run_id, &RunEnd::succeeded("1".into()))
        .unwrap();
    assert_eq!(store.interrupt_unfinished("stopped").unwrap(), 1);
    let got = store.get(&queued.run_id).unwrap().unwrap();
    assert_eq!(got.status, RunStatus::Interrupted);
    let last = store.events_after(&queued.run_id, 0).unwrap();
    assert_eq!(last[0].kind, EventKind::Error);
    assert_eq!(
        store.get(&done.run_id).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
}

#[test]
fn listing_filters_by_owner_agent_and_status_newest_first() {
    let (_dir, store) = store();
    let (a, _) = store.create(&new_run("me", None), 1000).unwrap();
    let (b, _) = store.create(&new_run("me", None), 1000).unwrap();
    store.create(&new_run("you", None), 1000).unwrap();
    store
        .finish(&a.run_id, &RunEnd::succeeded("1".into()))
        .unwrap();
    let mine = RunFilter {
        owner: Some("me".into()),
        limit: 10,
        ..RunFilter::default()
    };
    let ids: Vec<_> = store
        .list(&mine)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(ids, [b.run_id.clone(), a.run_id.clone()]);
    let done = RunFilter {
        status: Some(RunStatus::Succeeded),
        ..mine.clone()
    };
    assert_eq!(store.list(&done).unwrap().len(), 1);
    let everyone = RunFilter {
        limit: 10,
        ..RunFilter::default()
    };
    assert_eq!(store.list(&everyone).unwrap().len(), 3);
}

#[test]
fn purging_removes_only_runs_that_ended_before_the_cut() {
    let (_dir, store) = store();
    let (ended, _) = store.create(&new_run("me", None), 1000).unwrap();
    let (open, _) = store.create(&new_run("me", None), 1000).unwrap();
    store
        .finish(&ended.run_id, &RunEnd::succeeded("1".into()))
        .unwrap();
    assert_eq!(store.purge(now_ms() + 1000).unwrap(), 1);
    assert!(store.get(&ended.run_id).unwrap().is_none());
    assert!(store.events_after(&ended.run_id, 0).unwrap().is_empty());
    assert!(store.get(&open.run_id).unwrap().is_some());
}
