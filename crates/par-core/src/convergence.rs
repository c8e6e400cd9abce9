//! The registry follower's state and its decisions, kept apart from the I/O so they can be
//! tested alone: which index entries to load (those not already served with exactly
//! their bytes) and which packages to unload (only those this index mounted earlier and
//! no longer lists; packages from other sources are never touched).

use std::collections::HashSet;
use std::time::Duration;

use par_registry::{IndexEntry, RegistryIndex};

/// Where the index is and how often to poll it.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub index: String,
    pub interval: Duration,
}

#[derive(Default)]
pub(crate) struct RegistryState {
    /// The index's last ETag, for conditional polls.
    pub(crate) etag: Option<String>,
    /// Package names this index mounted: only these are unloaded when they leave it.
    pub(crate) managed: HashSet<String>,
}

/// What converging to one index comes to.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    /// Entries to fetch and mount (new ones, and new bytes or versions of listed ones).
    pub(crate) load: Vec<&'a IndexEntry>,
    /// Packages the index mounted before and no longer lists.
    pub(crate) gone: Vec<String>,
    /// The names the index lists now: the new managed set.
    pub(crate) listed: HashSet<String>,
}

/// Decides the convergence; `serves(entry)` says whether exactly that entry's bytes are
/// mounted already.
pub(crate) fn plan<'a>(
    index: &'a RegistryIndex,
    managed: &HashSet<String>,
    serves: impl Fn(&IndexEntry) -> bool,
) -> Plan<'a> {
    let load = index.packages.iter().filter(|e| !serves(e)).collect();
    let listed: HashSet<String> = index.packages.iter().map(|e| e.name.clone()).collect();
    let mut gone: Vec<String> = managed
        .iter()
        .filter(|name| !listed.contains(*name))
        .cloned()
        .collect();
    gone.sort();
    Plan { load, gone, listed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: &str, sha: char) -> IndexEntry {
        IndexEntry {
            name: name.into(),
            version: version.into(),
            url: format!("https://registry.example/{name}-{version}.apkg"),
            sha256: sha.to_string().repeat(64),
            signature: None,
        }
    }

    fn index(entries: Vec<IndexEntry>) -> RegistryIndex {
        RegistryIndex {
            version: 1,
            packages: entries,
        }
    }

    fn names(entries: &[&IndexEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| format!("{}@{}", e.name, e.version))
            .collect()
    }

    #[test]
    fn a_first_index_loads_everything_and_unloads_nothing() {
        let idx = index(vec![entry("a", "1.0.0", 'a'), entry("b", "2.0.0", 'b')]);
        let plan = plan(&idx, &HashSet::new(), |_| false);
        assert_eq!(names(&plan.load), ["a@1.0.0", "b@2.0.0"]);
        assert!(plan.gone.is_empty());
        assert_eq!(plan.listed.len(), 2);
    }

    #[test]
    fn entries_already_served_with_their_bytes_are_skipped() {
        let idx = index(vec![entry("a", "1.0.0", 'a'), entry("b", "2.0.0", 'b')]);
        let managed = HashSet::from(["a".to_string(), "b".to_string()]);
        let plan = plan(&idx, &managed, |e| e.name == "a");
        assert_eq!(names(&plan.load), ["b@2.0.0"]);
        assert!(plan.gone.is_empty());
    }

    #[test]
    fn only_packages_the_index_mounted_are_unloaded_when_they_leave_it() {
        let idx = index(vec![entry("a", "1.0.0", 'a')]);
        let managed = HashSet::from(["a".to_string(), "old".to_string()]);
        let plan = plan(&idx, &managed, |_| true);
        assert!(plan.load.is_empty());
        assert_eq!(plan.gone, ["old"]);
        assert_eq!(plan.listed, HashSet::from(["a".to_string()]));
    }

    #[test]
    fn an_empty_index_unloads_every_managed_package() {
        let idx = index(vec![]);
        let managed = HashSet::from(["x".to_string(), "y".to_string()]);
        let plan = plan(&idx, &managed, |_| false);
        assert_eq!(plan.gone, ["x", "y"]);
        assert!(plan.listed.is_empty());
    }

    #[test]
    fn a_changed_version_is_loaded_and_its_name_stays_managed() {
        let idx = index(vec![entry("a", "1.1.0", 'c')]);
        let managed = HashSet::from(["a".to_string()]);
        let plan = plan(&idx, &managed, |_| false);
        assert_eq!(names(&plan.load), ["a@1.1.0"]);
        assert!(
            plan.gone.is_empty(),
            "an upgrade replaces, it does not unload"
        );
    }
}
