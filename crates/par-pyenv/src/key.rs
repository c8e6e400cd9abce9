use std::path::Path;

use sha2::{Digest, Sha256};

/// Layout version of environment folders; bump when what goes inside changes.
pub(crate) const LAYOUT: &str = "v1";

/// The identity of an environment: interpreter plus the exact requirement list.
/// Order is kept (it can matter to the resolver), duplicates and blank lines are not.
pub fn env_key(interpreter: &Path, requirements: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(interpreter.as_os_str().as_encoded_bytes());
    hasher.update([0]);
    let mut seen = std::collections::HashSet::new();
    for req in requirements
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
    {
        if seen.insert(req) {
            hasher.update(req.as_bytes());
            hasher.update([b'\n']);
        }
    }
    format!("{LAYOUT}-{}", &hex::encode(hasher.finalize())[..20])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_set_same_key_and_interpreter_matters() {
        let py = Path::new("/usr/bin/python3.11");
        let a = env_key(py, &["six==1.16.0".into(), " six==1.16.0 ".into()]);
        let b = env_key(py, &["six==1.16.0".into()]);
        assert_eq!(a, b);
        assert_ne!(
            a,
            env_key(Path::new("/usr/bin/python3.12"), &["six==1.16.0".into()])
        );
        assert_ne!(a, env_key(py, &["six==1.15.0".into()]));
        assert!(a.starts_with("v1-"));
    }
}
