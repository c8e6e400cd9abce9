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

    pub(crate) fn is_disabled(&self, id: &str) -> bool {
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
mod tests;
