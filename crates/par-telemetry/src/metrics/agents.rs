//! Which agent ids may become label values: only those of mounted agents.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

use super::{Metrics, UNKNOWN_AGENT};

/// An agent id that is safe to use as a label value: either a mounted agent's id or
/// [`UNKNOWN_AGENT`]. Only [`Metrics::agent_label`] makes one, so an id taken from a request
/// path cannot reach a label without passing the mounted-agent check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentLabel(Arc<str>);

impl AgentLabel {
    /// The label value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// False when the id named no mounted agent.
    pub fn is_known(&self) -> bool {
        &*self.0 != UNKNOWN_AGENT
    }
}

/// The ids of mounted agents.
#[derive(Debug)]
pub(crate) struct AgentSet {
    ids: RwLock<HashSet<Arc<str>>>,
    unknown: Arc<str>,
}

impl Default for AgentSet {
    fn default() -> Self {
        AgentSet {
            ids: RwLock::default(),
            unknown: Arc::from(UNKNOWN_AGENT),
        }
    }
}

impl AgentSet {
    // A std lock is right here: the critical sections are one hash operation and never
    // span an await. A poisoned lock still holds a consistent set, so keep using it.
    fn insert(&self, id: &str) {
        let mut ids = self.ids.write().unwrap_or_else(PoisonError::into_inner);
        ids.insert(Arc::from(id));
    }

    fn remove(&self, id: &str) {
        let mut ids = self.ids.write().unwrap_or_else(PoisonError::into_inner);
        ids.remove(id);
    }

    fn label(&self, id: &str) -> AgentLabel {
        let ids = self.ids.read().unwrap_or_else(PoisonError::into_inner);
        let value = ids.get(id).unwrap_or(&self.unknown);
        AgentLabel(Arc::clone(value))
    }
}

impl Metrics {
    /// Allows `id` as a label value; call when an agent is mounted.
    pub fn register_agent(&self, id: &str) {
        self.inner.agents.insert(id);
    }

    /// Withdraws `id`; call when its agent is unmounted. Series already recorded for it
    /// stay (counters are cumulative); later calls with the id count as unknown.
    pub fn unregister_agent(&self, id: &str) {
        self.inner.agents.remove(id);
    }

    /// The label for `id`: the id itself when it names a mounted agent, else
    /// [`UNKNOWN_AGENT`].
    pub fn agent_label(&self, id: &str) -> AgentLabel {
        self.inner.agents.label(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_registered_ids_become_labels() {
        let metrics = Metrics::new();
        metrics.register_agent("echo");
        assert_eq!(metrics.agent_label("echo").as_str(), "echo");
        assert!(metrics.agent_label("echo").is_known());
        assert_eq!(metrics.agent_label("nope").as_str(), UNKNOWN_AGENT);
        metrics.unregister_agent("echo");
        assert!(!metrics.agent_label("echo").is_known());
    }
}
