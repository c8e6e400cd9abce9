//! Routing, as one part of the runtime: the copy-on-write table of agent ids, which
//! agents are disabled, the packages still draining after they left the table, and the
//! rules for how a new package joins it (duplicates, downgrades, what it replaces).
//! Lookups never lock; mounts are serialised so two loads cannot both pass the id-clash
//! check.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;

use crate::error::{ErrorCode, InvokeError};
use crate::package::Package;
use crate::table::{AgentInfo, AgentTable, Target};
use crate::version;

/// Who may reach an agent: outside callers only public ones, agents any mounted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    Public,
    Internal,
}

/// How a newly prepared package joins the table.
#[derive(Debug, Clone, Copy)]
pub struct MountOptions {
    /// Retire every other mounted version of the same package once this one is active.
    pub replace: bool,
    /// Allow activating a version lower than the active one.
    pub force: bool,
}

impl MountOptions {
    /// Startup: every version given is kept mounted; the newest is active.
    pub fn startup() -> Self {
        MountOptions {
            replace: false,
            force: false,
        }
    }

    /// A registry index or a reload: the source is the authority, even for a lower version.
    pub fn authoritative() -> Self {
        MountOptions {
            replace: true,
            force: true,
        }
    }
}

/// What mounting a package into a table comes to.
pub(crate) enum MountPlan {
    /// The same bytes are mounted already (from another source): keep those.
    Duplicate(Arc<Package>),
    /// The new table, and the versions it retires.
    Swap {
        table: AgentTable,
        retired: Vec<Arc<Package>>,
    },
}

/// Decides how `package` joins `current`; an error is the reason it may not.
pub(crate) fn plan_mount(
    current: &AgentTable,
    package: &Arc<Package>,
    options: MountOptions,
) -> Result<MountPlan, String> {
    if let Some(same) = identical_package(current, package) {
        return Ok(MountPlan::Duplicate(same));
    }
    check_downgrade(current, package, options)?;
    let next = current.with_package(package)?;
    let retired = retired_by(current, package, options);
    let table = retired
        .iter()
        .fold(next, |table, old| table.without_package(old));
    Ok(MountPlan::Swap { table, retired })
}

pub(crate) struct Routing {
    table: ArcSwap<AgentTable>,
    /// Serialises mounts and unloads.
    mount_lock: tokio::sync::Mutex<()>,
    disabled: RwLock<HashSet<String>>,
    /// Replaced or unloaded packages still finishing their calls.
    draining: Mutex<Vec<Arc<Package>>>,
    /// Keeps the metrics' set of label-worthy agent ids in step with the table.
    metrics: par_telemetry::Metrics,
}

impl Routing {
    pub(crate) fn new(metrics: par_telemetry::Metrics) -> Routing {
        Routing {
            table: ArcSwap::from_pointee(AgentTable::default()),
            mount_lock: tokio::sync::Mutex::new(()),
            disabled: RwLock::new(HashSet::new()),
            draining: Mutex::new(Vec::new()),
            metrics,
        }
    }

    pub(crate) fn table(&self) -> Arc<AgentTable> {
        self.table.load_full()
    }

    /// Held while a mount or unload computes and stores the next table.
    pub(crate) async fn lock_mounts(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.mount_lock.lock().await
    }

    /// Swaps in a new table; only ids in it may be metric label values.
    pub(crate) fn store(&self, next: AgentTable) {
        let before = self.table.load().ids();
        let after = next.ids();
        self.table.store(Arc::new(next));
        for id in after.difference(&before) {
            self.metrics.register_agent(id);
        }
        for id in before.difference(&after) {
            self.metrics.unregister_agent(id);
        }
    }

    /// An agent `reach` may call, by `id` or `id@version`; disabled ones answer `disabled`.
    pub(crate) fn resolve(&self, id: &str, reach: Reach) -> Result<Target, InvokeError> {
        let target = self
            .table
            .load()
            .lookup(id)
            .filter(|r| r.public || reach == Reach::Internal)
            .cloned()
            .ok_or_else(|| {
                InvokeError::new(ErrorCode::AgentNotFound, format!("no agent '{id}'"))
            })?;
        if self.is_disabled(&target.id) {
            return Err(InvokeError::new(
                ErrorCode::Disabled,
                format!("agent '{}' is disabled", target.id),
            ));
        }
        Ok(target)
    }

    fn is_disabled(&self, id: &str) -> bool {
        self.disabled
            .read()
            .expect("disabled poisoned")
            .contains(id)
    }

    /// False for ids that are not mounted.
    /// The flag is per agent id: `id@version` names the id (every version of it).
    pub(crate) fn set_enabled(&self, id: &str, enabled: bool) -> bool {
        let Some(route) = self.table.load().lookup(id).cloned() else {
            return false;
        };
        let mut disabled = self.disabled.write().expect("disabled poisoned");
        if enabled {
            disabled.remove(&route.id);
        } else {
            disabled.insert(route.id.clone());
        }
        true
    }

    /// The active version of a package (or `name@version`).
    pub(crate) fn package(&self, name: &str) -> Option<Arc<Package>> {
        let table = self.table.load();
        let route = table.lookup(name)?;
        (route.package.name() == name.split('@').next().unwrap_or(name))
            .then(|| route.package.clone())
    }

    pub(crate) fn public_agents(&self) -> Vec<AgentInfo> {
        self.table.load().public_agents()
    }

    pub(crate) fn public_agent(&self, id: &str) -> Option<AgentInfo> {
        self.table.load().public_agent(id)
    }

    pub(crate) fn start_draining(&self, package: Arc<Package>) {
        self.draining
            .lock()
            .expect("draining poisoned")
            .push(package);
    }

    pub(crate) fn finish_draining(&self, package: &Arc<Package>) {
        self.draining
            .lock()
            .expect("draining poisoned")
            .retain(|p| !Arc::ptr_eq(p, package));
    }

    /// Mounted packages, then those still draining.
    pub(crate) fn all_packages(&self) -> Vec<Arc<Package>> {
        let mut all = self.table.load().packages();
        all.extend(
            self.draining
                .lock()
                .expect("draining poisoned")
                .iter()
                .cloned(),
        );
        all
    }

    /// Whether any mounted package has these bytes.
    pub(crate) fn serves_sha(&self, sha256: &str) -> bool {
        self.table
            .load()
            .packages()
            .iter()
            .any(|p| p.sha256 == sha256)
    }
}

/// The mounted package with exactly these bytes, if any.
fn identical_package(table: &AgentTable, package: &Package) -> Option<Arc<Package>> {
    let existing = table.lookup(&format!("{}@{}", package.name(), package.version()))?;
    (existing.package.sha256 == package.sha256).then(|| existing.package.clone())
}

/// A replacing load may not lower the active version unless forced.
fn check_downgrade(
    table: &AgentTable,
    package: &Package,
    options: MountOptions,
) -> Result<(), String> {
    if !options.replace || options.force {
        return Ok(());
    }
    let Some(active) = table.lookup(package.name()) else {
        return Ok(());
    };
    if active.package.name() != package.name() {
        return Ok(());
    }
    let active_version = active.package.version();
    if version::compare(package.version(), active_version).is_lt() {
        return Err(format!(
            "downgrade of '{}' from {active_version} to {} refused (force it to override)",
            package.name(),
            package.version()
        ));
    }
    Ok(())
}

/// Versions the new package takes over from: all others when replacing, else only a
/// different build of the very same version.
fn retired_by(
    table: &AgentTable,
    package: &Arc<Package>,
    options: MountOptions,
) -> Vec<Arc<Package>> {
    table
        .packages()
        .into_iter()
        .filter(|p| p.name() == package.name() && !Arc::ptr_eq(p, package))
        .filter(|p| options.replace || p.version() == package.version())
        .collect()
}

#[cfg(test)]
mod tests {
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
}
