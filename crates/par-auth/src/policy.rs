//! The RBAC policy file: grants of roles to `invoke` agent-id patterns and to `admin`.
//!
//! Deny by default: a role may invoke an agent only when a grant for it names the agent's id
//! exactly or by a prefix pattern ending in `*` (a lone `*` is every agent). `admin` (the
//! management API) comes only from `admin = true` and implies nothing about `invoke`.

use serde::Deserialize;

use crate::error::PolicyError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    grants: Vec<Grant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub role: String,
    pub invoke: Vec<AgentPattern>,
    pub admin: bool,
}

/// An agent id, or an id prefix when written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentPattern {
    Exact(String),
    Prefix(String),
}

impl AgentPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let body = text.strip_suffix('*').unwrap_or(text);
        if text.is_empty() {
            return Err("empty agent pattern".to_string());
        }
        if body.contains('*') {
            return Err(format!(
                "agent pattern {text:?}: `*` is allowed only at the end"
            ));
        }
        if body.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("agent pattern {text:?} contains whitespace"));
        }
        Ok(if body.len() < text.len() {
            AgentPattern::Prefix(body.to_string())
        } else {
            AgentPattern::Exact(body.to_string())
        })
    }

    pub fn matches(&self, agent_id: &str) -> bool {
        match self {
            AgentPattern::Exact(id) => id == agent_id,
            AgentPattern::Prefix(prefix) => agent_id.starts_with(prefix.as_str()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    grant: Vec<GrantFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantFile {
    role: String,
    #[serde(default)]
    invoke: Vec<String>,
    #[serde(default)]
    admin: bool,
}

impl Policy {
    /// Parses the TOML policy (CONTRACT.md). Unknown keys, empty roles, misplaced `*` and
    /// grants that grant nothing are refused, so a typo cannot silently narrow or widen access.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        let grants = file
            .grant
            .into_iter()
            .enumerate()
            .map(|(i, g)| {
                Grant::from_file(g).map_err(|problem| PolicyError::Grant {
                    index: i + 1,
                    problem,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy { grants })
    }

    /// Reads and parses a policy file; errors name the file.
    pub fn load(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::from_toml(&text).map_err(|e| match e {
            PolicyError::Parse(msg) => PolicyError::Parse(format!("{}: {msg}", path.display())),
            PolicyError::Grant { index, problem } => PolicyError::Grant {
                index,
                problem: format!("{problem} (in {})", path.display()),
            },
            other => other,
        })
    }

    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    pub fn can_invoke(&self, roles: &[String], agent_id: &str) -> bool {
        self.grants_for(roles)
            .any(|g| g.invoke.iter().any(|p| p.matches(agent_id)))
    }

    pub fn is_admin(&self, roles: &[String]) -> bool {
        self.grants_for(roles).any(|g| g.admin)
    }

    fn grants_for<'a>(&'a self, roles: &'a [String]) -> impl Iterator<Item = &'a Grant> + 'a {
        self.grants.iter().filter(move |g| roles.contains(&g.role))
    }
}

impl Grant {
    fn from_file(g: GrantFile) -> Result<Grant, String> {
        let role = g.role.trim();
        if role.is_empty() {
            return Err("role is empty".to_string());
        }
        if g.invoke.is_empty() && !g.admin {
            return Err(format!(
                "grant for role {role:?} grants nothing (no invoke, no admin)"
            ));
        }
        let invoke = g
            .invoke
            .iter()
            .map(|p| AgentPattern::parse(p))
            .collect::<Result<_, _>>()?;
        Ok(Grant {
            role: role.to_string(),
            invoke,
            admin: g.admin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT_EXAMPLE: &str = r#"
[[grant]]
role = "analyst"
invoke = ["kit-minimal", "report-*"]

[[grant]]
role = "ops"
admin = true
"#;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn contract_example_matrix() {
        let p = Policy::from_toml(CONTRACT_EXAMPLE).unwrap();
        let cases: &[(&[&str], &str, bool)] = &[
            (&["analyst"], "kit-minimal", true),
            (&["analyst"], "kit-minimal-2", false),
            (&["analyst"], "kit", false),
            (&["analyst"], "report-", true),
            (&["analyst"], "report-weekly", true),
            (&["analyst"], "report", false),
            (&["analyst"], "reports-x", false),
            (&["ops"], "kit-minimal", false),
            (&["ops"], "report-weekly", false),
            (&[], "kit-minimal", false),
            (&["Analyst"], "kit-minimal", false),
            (&["nobody", "analyst"], "report-x", true),
        ];
        for (r, agent, want) in cases {
            assert_eq!(
                p.can_invoke(&roles(r), agent),
                *want,
                "{r:?} invoke {agent}"
            );
        }
        assert!(p.is_admin(&roles(&["ops"])));
        assert!(p.is_admin(&roles(&["analyst", "ops"])));
        assert!(!p.is_admin(&roles(&["analyst"])));
        assert!(!p.is_admin(&roles(&[])));
        assert!(!p.is_admin(&roles(&["OPS"])));
    }

    #[test]
    fn empty_policy_denies_everything() {
        let p = Policy::from_toml("").unwrap();
        assert!(!p.can_invoke(&roles(&["analyst"]), "kit-minimal"));
        assert!(!p.is_admin(&roles(&["ops"])));
    }

    #[test]
    fn lone_star_matches_every_agent_but_is_not_admin() {
        let p = Policy::from_toml("[[grant]]\nrole = \"all\"\ninvoke = [\"*\"]\n").unwrap();
        assert!(p.can_invoke(&roles(&["all"]), "anything"));
        assert!(!p.is_admin(&roles(&["all"])));
    }

    #[test]
    fn admin_does_not_imply_invoke() {
        let p = Policy::from_toml("[[grant]]\nrole = \"ops\"\nadmin = true\n").unwrap();
        assert!(!p.can_invoke(&roles(&["ops"]), "kit-minimal"));
    }

    #[test]
    fn admin_false_is_not_admin() {
        let p = Policy::from_toml("[[grant]]\nrole = \"a\"\ninvoke = [\"x\"]\nadmin = false\n")
            .unwrap();
        assert!(!p.is_admin(&roles(&["a"])));
    }

    #[test]
    fn bad_policies_are_refused() {
        for bad in [
            "[[grant]]\nrole = \"a\"\ninvokes = [\"x\"]\n",
            "[[grant]]\nrole = \"\"\ninvoke = [\"x\"]\n",
            "[[grant]]\nrole = \"a\"\n",
            "[[grant]]\nrole = \"a\"\ninvoke = [\"re*port\"]\n",
            "[[grant]]\nrole = \"a\"\ninvoke = [\"**\"]\n",
            "[[grant]]\nrole = \"a\"\ninvoke = [\"\"]\n",
            "[[grant]]\nrole = \"a\"\ninvoke = \"x\"\n",
            "[[grant]]\nrole = \"a\"\nadmin = \"yes\"\n",
            "[[grant]]\ninvoke = [\"x\"]\n",
            "[grants]\n",
        ] {
            assert!(Policy::from_toml(bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let err = Policy::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("policy.toml") && err.contains("PAR_POLICY"),
            "{err}"
        );
        std::fs::write(&path, CONTRACT_EXAMPLE).unwrap();
        assert_eq!(Policy::load(&path).unwrap().grants().len(), 2);
        std::fs::write(&path, "[[grant]]\nrole = 1\n").unwrap();
        let err = Policy::load(&path).unwrap_err().to_string();
        assert!(err.contains("policy.toml"), "{err}");
    }

    #[test]
    fn error_names_the_grant() {
        let err = Policy::from_toml(
            "[[grant]]\nrole = \"a\"\ninvoke = [\"x\"]\n[[grant]]\nrole = \"b\"\ninvoke = [\"y*z\"]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("grant #2"), "{err}");
    }
}
