//! Unit tests of `routing.rs`.

use std::time::Duration;

use super::*;
use crate::package::tests::{package, package_with_subs};

const REPLACE: MountOptions = MountOptions {
    replace: true,
    force: false,
};

fn mounted(packages: &[&Arc<Package>]) -> AgentTable {
    packages.iter().fold(AgentTable::default(), |table, p| {
        table.with_package(p).expect("mounts")
    })
}

fn swap(plan: Result<MountPlan, String>) -> (AgentTable, Vec<Arc<Package>>) {
    match plan.expect("mount allowed") {
        MountPlan::Swap { table, retired } => (table, retired),
        MountPlan::Duplicate(_) => panic!("expected a swap, got a duplicate"),
    }
}

fn shas(packages: &[Arc<Package>]) -> Vec<String> {
    let mut shas: Vec<String> = packages.iter().map(|p| p.sha256.clone()).collect();
    shas.sort();
    shas
}

fn routing_with(packages: &[&Arc<Package>]) -> Routing {
    let routing = Routing::new(par_telemetry::Metrics::new());
    routing.store(mounted(packages));
    routing
}

#[test]
fn the_same_bytes_already_mounted_are_a_duplicate_of_the_mounted_package() {
    let first = package("a", "1.0.0", "same");
    let again = package("a", "1.0.0", "same");
    let table = mounted(&[&first]);
    for options in [MountOptions::startup(), MountOptions::authoritative()] {
        match plan_mount(&table, &again, options).unwrap() {
            MountPlan::Duplicate(kept) => assert!(Arc::ptr_eq(&kept, &first)),
            MountPlan::Swap { .. } => panic!("identical bytes must not be mounted twice"),
        }
    }
}

#[test]
fn a_rebuild_of_the_same_version_takes_over_from_the_old_build_even_without_replace() {
    let old = package("a", "1.0.0", "old-bytes");
    let rebuild = package("a", "1.0.0", "new-bytes");
    let other = package("a", "0.9.0", "older");
    let (table, retired) = swap(plan_mount(
        &mounted(&[&other, &old]),
        &rebuild,
        MountOptions::startup(),
    ));
    assert_eq!(shas(&retired), ["old-bytes"]);
    assert!(Arc::ptr_eq(&table.lookup("a").unwrap().package, &rebuild));
    assert!(table.lookup("a@0.9.0").is_some(), "other versions stay");
}

#[test]
fn a_replacing_downgrade_is_refused_naming_both_versions() {
    let table = mounted(&[&package("a", "2.0.0", "s2")]);
    let err = plan_mount(&table, &package("a", "1.0.0", "s1"), REPLACE)
        .err()
        .expect("downgrade refused");
    assert_eq!(
        err,
        "downgrade of 'a' from 2.0.0 to 1.0.0 refused (force it to override)"
    );
}

#[test]
fn a_forced_downgrade_becomes_active_and_retires_the_newer_version() {
    let newer = package("a", "2.0.0", "s2");
    let older = package("a", "1.0.0", "s1");
    let (table, retired) = swap(plan_mount(
        &mounted(&[&newer]),
        &older,
        MountOptions::authoritative(),
    ));
    assert_eq!(shas(&retired), ["s2"]);
    assert_eq!(table.lookup("a").unwrap().package.version(), "1.0.0");
    assert!(table.lookup("a@2.0.0").is_none());
}

#[test]
fn a_lower_version_without_replace_is_mounted_beside_the_active_one() {
    let (table, retired) = swap(plan_mount(
        &mounted(&[&package("a", "2.0.0", "s2")]),
        &package("a", "1.0.0", "s1"),
        MountOptions::startup(),
    ));
    assert!(retired.is_empty());
    assert_eq!(table.lookup("a").unwrap().package.version(), "2.0.0");
    assert!(table.lookup("a@1.0.0").is_some());
}

#[test]
fn an_upgrade_with_replace_retires_every_other_version_of_the_package() {
    let current = mounted(&[&package("a", "1.0.0", "s1"), &package("a", "1.5.0", "s15")]);
    let (table, retired) = swap(plan_mount(&current, &package("a", "2.0.0", "s2"), REPLACE));
    assert_eq!(shas(&retired), ["s1", "s15"]);
    assert_eq!(table.public_agent("a").unwrap().versions, ["2.0.0"]);
    assert_eq!(shas(&table.packages()), ["s2"]);
}

#[test]
fn an_upgrade_without_replace_retires_nothing() {
    let current = mounted(&[&package("a", "1.0.0", "s1")]);
    let (table, retired) = swap(plan_mount(
        &current,
        &package("a", "2.0.0", "s2"),
        MountOptions::startup(),
    ));
    assert!(retired.is_empty());
    assert_eq!(
        table.public_agent("a").unwrap().versions,
        ["2.0.0", "1.0.0"]
    );
}

#[test]
fn replacing_never_retires_other_packages() {
    let b = package("b", "1.0.0", "sb");
    let current = mounted(&[&package("a", "1.0.0", "s1"), &b]);
    let (table, retired) = swap(plan_mount(
        &current,
        &package("a", "2.0.0", "s2"),
        MountOptions::authoritative(),
    ));
    assert_eq!(shas(&retired), ["s1"]);
    assert!(Arc::ptr_eq(&table.lookup("b").unwrap().package, &b));
}

#[test]
fn an_id_clash_is_refused_by_the_plan() {
    let current = mounted(&[&package_with_subs("a", "1.0.0", "s1", &[("x", true)])]);
    let err = plan_mount(
        &current,
        &package_with_subs("b", "1.0.0", "s2", &[("x", true)]),
        MountOptions::authoritative(),
    )
    .err()
    .expect("clash refused");
    assert!(err.contains("'x'") && err.contains("package 'a'"), "{err}");
}

#[test]
fn outside_callers_reach_only_public_agents_and_agents_reach_all() {
    let routing = routing_with(&[&package_with_subs(
        "a",
        "1.0.0",
        "s1",
        &[("private", false)],
    )]);
    let err = routing.resolve("private", Reach::Public).err().unwrap();
    assert_eq!(err.code, ErrorCode::AgentNotFound);
    assert_eq!(err.message, "no agent 'private'");
    let target = routing.resolve("private", Reach::Internal).unwrap();
    assert_eq!(target.sub_agent.as_deref(), Some("private"));
    assert!(routing.resolve("a", Reach::Public).is_ok());
}

#[test]
fn an_unknown_id_or_version_is_agent_not_found() {
    let routing = routing_with(&[&package("a", "1.0.0", "s1")]);
    for id in ["b", "a@2.0.0"] {
        for reach in [Reach::Public, Reach::Internal] {
            let err = routing.resolve(id, reach).err().unwrap();
            assert_eq!(err.code, ErrorCode::AgentNotFound, "{id}");
            assert!(err.message.contains(id), "{}", err.message);
        }
    }
}

#[test]
fn a_disabled_agent_answers_disabled_to_everyone_until_enabled() {
    let routing = routing_with(&[&package("a", "1.0.0", "s1")]);
    assert!(routing.set_enabled("a", false));
    for reach in [Reach::Public, Reach::Internal] {
        let err = routing.resolve("a", reach).err().unwrap();
        assert_eq!(err.code, ErrorCode::Disabled);
        assert_eq!(err.message, "agent 'a' is disabled");
    }
    assert_eq!(
        routing
            .resolve("a@1.0.0", Reach::Public)
            .err()
            .unwrap()
            .code,
        ErrorCode::Disabled,
        "every version of a disabled id is disabled"
    );
    assert!(routing.set_enabled("a", true));
    assert!(routing.resolve("a", Reach::Public).is_ok());
}

#[test]
fn disabling_by_id_at_version_disables_that_agent_id() {
    let routing = routing_with(&[&package("a", "1.0.0", "s1")]);
    assert!(routing.set_enabled("a@1.0.0", false));
    assert_eq!(
        routing.resolve("a", Reach::Public).err().unwrap().code,
        ErrorCode::Disabled
    );
    assert!(routing.set_enabled("a@1.0.0", true));
    assert!(routing.resolve("a", Reach::Public).is_ok());
}

#[test]
fn disabling_a_sub_agent_leaves_the_rest_of_its_package_reachable() {
    let routing = routing_with(&[&package_with_subs("a", "1.0.0", "s1", &[("x", true)])]);
    assert!(routing.set_enabled("x", false));
    assert_eq!(
        routing.resolve("x", Reach::Internal).err().unwrap().code,
        ErrorCode::Disabled
    );
    assert!(routing.resolve("a", Reach::Public).is_ok());
}

#[test]
fn enabling_or_disabling_an_unknown_id_is_false_and_disables_nothing() {
    let routing = routing_with(&[]);
    assert!(!routing.set_enabled("ghost", false));
    assert!(!routing.set_enabled("ghost", true));
    routing.store(mounted(&[&package("ghost", "1.0.0", "g")]));
    assert!(
        routing.resolve("ghost", Reach::Public).is_ok(),
        "a refused disable must not wait for the id to appear"
    );
}

#[test]
fn storing_a_table_keeps_the_metric_label_set_in_step() {
    let metrics = par_telemetry::Metrics::new();
    let routing = Routing::new(metrics.clone());
    assert!(!metrics.agent_label("a").is_known());
    let a = package_with_subs("a", "1.0.0", "s1", &[("hidden", false)]);
    routing.store(mounted(&[&a, &package("b", "1.0.0", "sb")]));
    for id in ["a", "hidden", "b"] {
        assert!(metrics.agent_label(id).is_known(), "{id} registered");
    }
    routing.store(routing.table().without_package(&a));
    assert!(!metrics.agent_label("a").is_known(), "a unregistered");
    assert!(!metrics.agent_label("hidden").is_known());
    assert!(metrics.agent_label("b").is_known(), "b untouched");
}

#[test]
fn a_package_is_found_by_its_name_not_by_a_sub_agent_id() {
    let one = package_with_subs("a", "1.0.0", "s1", &[("x", true)]);
    let two = package_with_subs("a", "2.0.0", "s2", &[("x", true)]);
    let routing = routing_with(&[&one, &two]);
    assert!(Arc::ptr_eq(&routing.package("a").unwrap(), &two));
    assert!(Arc::ptr_eq(&routing.package("a@1.0.0").unwrap(), &one));
    assert!(routing.package("x").is_none());
    assert!(routing.package("x@1.0.0").is_none());
    assert!(routing.package("nope").is_none());
}

#[test]
fn draining_packages_are_listed_after_mounted_ones_until_they_finish() {
    let mounted_one = package("a", "2.0.0", "s2");
    let draining = package("a", "1.0.0", "s1");
    let routing = routing_with(&[&mounted_one]);
    routing.start_draining(draining.clone());
    assert_eq!(
        routing
            .all_packages()
            .iter()
            .map(|p| p.sha256.as_str())
            .collect::<Vec<_>>(),
        ["s2", "s1"]
    );
    assert!(routing.serves_sha("s2"));
    assert!(!routing.serves_sha("s1"), "draining bytes are not served");
    routing.finish_draining(&draining);
    assert_eq!(routing.all_packages().len(), 1);
}

#[test]
fn public_listing_follows_the_stored_table() {
    let routing = routing_with(&[&package_with_subs("a", "1.0.0", "s1", &[("p", false)])]);
    let ids: Vec<String> = routing.public_agents().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["a"]);
    assert!(routing.public_agent("p").is_none());
    routing.store(AgentTable::default());
    assert!(routing.public_agents().is_empty());
    assert!(routing.public_agent("a").is_none());
}

#[tokio::test]
async fn mounts_wait_for_each_other() {
    let routing = routing_with(&[]);
    let first = routing.lock_mounts().await;
    let waited = tokio::time::timeout(Duration::from_millis(20), routing.lock_mounts()).await;
    assert!(
        waited.is_err(),
        "a second mount waits while one holds the lock"
    );
    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(10), routing.lock_mounts()).await;
    assert!(second.is_ok());
}
