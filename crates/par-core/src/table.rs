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
pub struct AgentTable {
    agents: HashMap<String, Vec<Target>>,
}

impl AgentTable {
    /// The active (newest) version, or the exact one for `id@version`.
    pub fn lookup(&self, id: &str) -> Option<&Target> {
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
    pub fn with_package(&self, package: &Arc<Package>) -> Result<AgentTable, String> {
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
    pub fn without_package(&self, package: &Arc<Package>) -> AgentTable {
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
    pub fn ids(&self) -> std::collections::HashSet<String> {
        self.agents.keys().cloned().collect()
    }

    /// Every package mounted, once each.
    pub fn packages(&self) -> Vec<Arc<Package>> {
        let mut seen = std::collections::HashSet::new();
        self.agents
            .values()
            .flatten()
            .filter(|r| seen.insert(Arc::as_ptr(&r.package)))
            .map(|r| r.package.clone())
            .collect()
    }

    /// Public agents, active versions, sorted by id.
    pub fn public_agents(&self) -> Vec<AgentInfo> {
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

    pub fn public_agent(&self, id: &str) -> Option<AgentInfo> {
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
