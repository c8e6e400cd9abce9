//! The routing table: agent id -> mounted versions, newest first. Rebuilt copy-on-write
//! on every mount so the request path reads it without locks.

use std::collections::HashMap;
use std::sync::Arc;

use crate::package::Package;
use crate::version;

/// Where an agent id leads: a package, and the sub-agent name to put in `action`.
pub struct Route {
    pub id: String,
    pub package: Arc<Package>,
    pub sub_agent: Option<String>,
    pub public: bool,
    pub description: String,
    pub capabilities: Vec<String>,
}

pub type Target = Arc<Route>;

/// An agent as listed over HTTP.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentInfo {
    pub id: String,
    pub package: String,
    pub version: String,
    pub description: String,
    pub capabilities: Vec<String>,
    pub surfaces: Vec<&'static str>,
    pub public: bool,
    pub versions: Vec<String>,
}

#[derive(Default, Clone)]
pub(crate) struct AgentTable {
    agents: HashMap<String, Vec<Target>>,
}

impl AgentTable {
    /// The active (newest) version, or the exact one for `id@version`.
    pub(crate) fn lookup(&self, id: &str) -> Option<&Target> {
        let (name, wanted) = match id.rsplit_once('@') {
            Some((name, v)) => (name, Some(v)),
            None => (id, None),
        };
        let routes = self.agents.get(name)?;
        match wanted {
            None => routes.first(),
            Some(v) => routes.iter().find(|r| r.package.version() == v),
        }
    }

    /// A new table with `package` mounted, or why it cannot be.
    pub(crate) fn with_package(&self, package: &Arc<Package>) -> Result<AgentTable, String> {
        let routes = routes_of(package);
        for route in &routes {
            self.check_clash(route)?;
        }
        let mut next = self.clone();
        for route in routes {
            let versions = next.agents.entry(route.id.clone()).or_default();
            versions.retain(|r| r.package.version() != package.version());
            versions.push(Arc::new(route));
            versions.sort_by(|a, b| version::compare(b.package.version(), a.package.version()));
        }
        Ok(next)
    }

    /// A new table without any route to `package`.
    pub(crate) fn without_package(&self, package: &Arc<Package>) -> AgentTable {
        let mut next = self.clone();
        for versions in next.agents.values_mut() {
            versions.retain(|r| !Arc::ptr_eq(&r.package, package));
        }
        next.agents.retain(|_, versions| !versions.is_empty());
        next
    }

    fn check_clash(&self, route: &Route) -> Result<(), String> {
        let Some(existing) = self.agents.get(&route.id).and_then(|v| v.first()) else {
            return Ok(());
        };
        if existing.package.name() == route.package.name() {
            return Ok(());
        }
        Err(format!(
            "agent id '{}' is already provided by package '{}'",
            route.id,
            existing.package.name()
        ))
    }

    /// Every agent id mounted, private ones included.
    pub(crate) fn ids(&self) -> std::collections::HashSet<String> {
        self.agents.keys().cloned().collect()
    }

    /// Every package mounted, once each.
    pub(crate) fn packages(&self) -> Vec<Arc<Package>> {
        let mut seen = std::collections::HashSet::new();
        self.agents
            .values()
            .flatten()
            .filter(|r| seen.insert(Arc::as_ptr(&r.package)))
            .map(|r| r.package.clone())
            .collect()
    }

    /// Public agents, active versions, sorted by id.
    pub(crate) fn public_agents(&self) -> Vec<AgentInfo> {
        let mut list: Vec<AgentInfo> = self
            .agents
            .values()
            .filter_map(|versions| versions.first().map(|r| (r, versions)))
            .filter(|(r, _)| r.public)
            .map(|(r, versions)| info(r, versions))
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    pub(crate) fn public_agent(&self, id: &str) -> Option<AgentInfo> {
        let route = self.lookup(id).filter(|r| r.public)?;
        let versions = self.agents.get(&route.id)?;
        Some(info(route, versions))
    }
}

fn info(route: &Route, versions: &[Target]) -> AgentInfo {
    AgentInfo {
        id: route.id.clone(),
        package: route.package.name().to_string(),
        version: route.package.version().to_string(),
        description: route.description.clone(),
        capabilities: route.capabilities.clone(),
        surfaces: route.package.manifest.surfaces(),
        public: route.public,
        versions: versions
            .iter()
            .map(|r| r.package.version().to_string())
            .collect(),
    }
}

/// The main agent (when there is an entrypoint or another surface) and every sub-agent.
fn routes_of(package: &Arc<Package>) -> Vec<Route> {
    let manifest = &package.manifest;
    let mut routes = vec![Route {
        id: manifest.name.clone(),
        package: package.clone(),
        sub_agent: None,
        public: true,
        description: manifest.description.clone(),
        capabilities: manifest.capabilities.clone(),
    }];
    for sub in &manifest.sub_agents {
        routes.push(Route {
            id: sub.name.clone(),
            package: package.clone(),
            sub_agent: Some(sub.name.clone()),
            public: sub.public,
            description: sub.description.clone(),
            capabilities: sub.capabilities.clone(),
        });
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tests::{package, package_with_subs};

    fn mounted(packages: &[&Arc<Package>]) -> AgentTable {
        packages.iter().fold(AgentTable::default(), |table, p| {
            table.with_package(p).expect("mounts")
        })
    }

    fn version_of(table: &AgentTable, id: &str) -> Option<String> {
        table.lookup(id).map(|r| r.package.version().to_string())
    }

    #[test]
    fn the_newest_version_is_active_whatever_the_mount_order() {
        let table = mounted(&[
            &package("a", "1.0.0", "s1"),
            &package("a", "2.0.0", "s2"),
            &package("a", "1.5.0", "s3"),
        ]);
        assert_eq!(version_of(&table, "a").as_deref(), Some("2.0.0"));
    }

    #[test]
    fn versions_are_ordered_numerically_not_as_text() {
        let table = mounted(&[&package("a", "1.10.0", "s1"), &package("a", "1.9.0", "s2")]);
        assert_eq!(version_of(&table, "a").as_deref(), Some("1.10.0"));
    }

    #[test]
    fn id_at_version_finds_exactly_that_version() {
        let table = mounted(&[&package("a", "1.0.0", "s1"), &package("a", "2.0.0", "s2")]);
        assert_eq!(version_of(&table, "a@1.0.0").as_deref(), Some("1.0.0"));
        assert_eq!(version_of(&table, "a@2.0.0").as_deref(), Some("2.0.0"));
        assert!(table.lookup("a@3.0.0").is_none());
        assert!(table.lookup("b@1.0.0").is_none());
        assert!(table.lookup("b").is_none());
    }

    #[test]
    fn removing_the_active_version_re_exposes_the_previous_one() {
        let old = package("a", "1.0.0", "s1");
        let new = package("a", "2.0.0", "s2");
        let table = mounted(&[&old, &new]).without_package(&new);
        let active = table.lookup("a").expect("still mounted");
        assert!(Arc::ptr_eq(&active.package, &old));
        assert!(table.lookup("a@2.0.0").is_none());
    }

    #[test]
    fn removing_the_last_version_removes_the_id() {
        let p = package_with_subs("a", "1.0.0", "s1", &[("helper", true)]);
        let table = mounted(&[&p]).without_package(&p);
        assert!(table.lookup("a").is_none());
        assert!(table.lookup("helper").is_none());
        assert!(table.ids().is_empty());
        assert!(table.packages().is_empty());
    }

    #[test]
    fn removing_a_package_that_is_not_mounted_changes_nothing() {
        let a = package("a", "1.0.0", "s1");
        let same_bytes_other_value = package("a", "1.0.0", "s1");
        let table = mounted(&[&a]).without_package(&same_bytes_other_value);
        assert!(Arc::ptr_eq(&table.lookup("a").unwrap().package, &a));
    }

    #[test]
    fn mounting_makes_a_new_table_and_leaves_the_old_one_as_it_was() {
        let before = mounted(&[&package("a", "1.0.0", "s1")]);
        let after = before.with_package(&package("a", "2.0.0", "s2")).unwrap();
        assert_eq!(version_of(&before, "a").as_deref(), Some("1.0.0"));
        assert!(before.lookup("a@2.0.0").is_none());
        assert_eq!(version_of(&after, "a").as_deref(), Some("2.0.0"));
    }

    #[test]
    fn mounting_a_version_again_replaces_that_version_instead_of_adding_one() {
        let first = package("a", "1.0.0", "s1");
        let rebuild = package("a", "1.0.0", "s2");
        let table = mounted(&[&first, &rebuild]);
        assert_eq!(table.lookup("a").unwrap().package.sha256, "s2");
        assert_eq!(table.public_agent("a").unwrap().versions, ["1.0.0"]);
        assert_eq!(table.packages().len(), 1);
    }

    #[test]
    fn an_id_of_another_package_is_refused_naming_the_id_and_the_other_package() {
        let a = package_with_subs("a", "1.0.0", "s1", &[("helper", true)]);
        let b = package_with_subs("b", "1.0.0", "s2", &[("helper", true)]);
        let table = mounted(&[&a]);
        let err = table.with_package(&b).err().expect("clash refused");
        assert_eq!(err, "agent id 'helper' is already provided by package 'a'");
        assert!(Arc::ptr_eq(&table.lookup("helper").unwrap().package, &a));
        assert!(table.lookup("b").is_none(), "nothing of b was mounted");
    }

    #[test]
    fn a_sub_agent_may_not_take_another_packages_main_id() {
        let a = package("a", "1.0.0", "s1");
        let b = package_with_subs("b", "1.0.0", "s2", &[("a", true)]);
        let err = mounted(&[&a])
            .with_package(&b)
            .err()
            .expect("clash refused");
        assert!(err.contains("'a'") && err.contains("package 'a'"), "{err}");
    }

    #[test]
    fn sub_agents_route_to_their_package_with_their_name_as_action() {
        let p = package_with_subs("a", "1.0.0", "s1", &[("summarizer", true)]);
        let table = mounted(&[&p]);
        let main = table.lookup("a").unwrap();
        assert_eq!(main.sub_agent, None);
        let sub = table.lookup("summarizer").unwrap();
        assert_eq!(sub.sub_agent.as_deref(), Some("summarizer"));
        assert!(Arc::ptr_eq(&sub.package, &p));
        assert_eq!(sub.capabilities, ["summarizer-cap"]);
        assert_eq!(
            table.lookup("summarizer@1.0.0").unwrap().id,
            "summarizer",
            "sub-agents carry their package's version"
        );
    }

    #[test]
    fn private_sub_agents_are_routable_but_never_listed() {
        let p = package_with_subs("a", "1.0.0", "s1", &[("inner", false), ("outer", true)]);
        let table = mounted(&[&p]);
        assert!(table.lookup("inner").is_some());
        assert!(!table.lookup("inner").unwrap().public);
        assert!(table.ids().contains("inner"), "ids include private ones");
        let listed: Vec<String> = table.public_agents().into_iter().map(|a| a.id).collect();
        assert_eq!(listed, ["a", "outer"]);
        assert!(table.public_agent("inner").is_none());
        assert!(table.public_agent("inner@1.0.0").is_none());
    }

    #[test]
    fn public_agents_are_sorted_by_id_with_versions_newest_first() {
        let table = mounted(&[
            &package("zeta", "1.0.0", "z"),
            &package("alpha", "0.9.0", "a1"),
            &package("alpha", "1.1.0", "a2"),
        ]);
        let list = table.public_agents();
        let ids: Vec<&str> = list.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["alpha", "zeta"]);
        assert_eq!(list[0].version, "1.1.0");
        assert_eq!(list[0].versions, ["1.1.0", "0.9.0"]);
        assert_eq!(list[0].package, "alpha");
        assert_eq!(list[0].surfaces, ["invoke"]);
        assert_eq!(list[0].capabilities, ["echo"]);
    }

    #[test]
    fn public_agent_at_version_describes_that_version() {
        let table = mounted(&[&package("a", "1.0.0", "s1"), &package("a", "2.0.0", "s2")]);
        let info = table.public_agent("a@1.0.0").unwrap();
        assert_eq!(info.version, "1.0.0");
        assert_eq!(info.versions, ["2.0.0", "1.0.0"]);
        assert!(table.public_agent("a@9.9.9").is_none());
    }

    #[test]
    fn each_mounted_package_is_listed_once_whatever_its_number_of_ids() {
        let a = package_with_subs("a", "1.0.0", "s1", &[("x", true), ("y", false)]);
        let a2 = package_with_subs("a", "2.0.0", "s2", &[("x", true), ("y", false)]);
        let table = mounted(&[&a, &a2]);
        let mut shas: Vec<String> = table.packages().iter().map(|p| p.sha256.clone()).collect();
        shas.sort();
        assert_eq!(shas, ["s1", "s2"]);
        assert_eq!(table.ids().len(), 3);
    }
}
