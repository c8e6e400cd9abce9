//! Rules over the whole set of names: each path names one thing, on every filesystem.
//!
//! Duplicates are refused because readers disagree on which copy wins (the zip crate keeps
//! the last, a listing shows the first). Names that differ only in case or Unicode
//! normalisation are refused because macOS and Windows filesystems would merge them, so
//! what lands on disk would depend on the host. A file may not be the parent of another
//! entry, since extracting would then need it to be a directory as well.

use std::collections::hash_map::{Entry, HashMap};

use unicode_normalization::UnicodeNormalization;

use crate::names::EntryName;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TreeProblem {
    Duplicate { entry: String },
    Collision { entry: String, other: String },
    ParentIsFile { entry: String, parent: String },
}

/// Checks a validated set of names for duplicates, collisions and files used as parents.
pub(crate) fn check_tree(names: &[&EntryName]) -> Result<(), TreeProblem> {
    let is_dir = explicit_kinds(names)?;
    for name in names {
        check_parents(name, &is_dir)?;
    }
    check_collisions(names)
}

/// Maps each path to whether its entry is a directory; `a` and `a/` count as duplicates.
fn explicit_kinds<'a>(names: &[&'a EntryName]) -> Result<HashMap<&'a str, bool>, TreeProblem> {
    let mut is_dir = HashMap::with_capacity(names.len());
    for name in names {
        if is_dir.insert(name.path.as_str(), name.is_dir).is_some() {
            return Err(TreeProblem::Duplicate {
                entry: name.name.clone(),
            });
        }
    }
    Ok(is_dir)
}

fn check_parents(name: &EntryName, is_dir: &HashMap<&str, bool>) -> Result<(), TreeProblem> {
    for parent in ancestors(&name.path) {
        if is_dir.get(parent) == Some(&false) {
            return Err(TreeProblem::ParentIsFile {
                entry: name.name.clone(),
                parent: parent.to_owned(),
            });
        }
    }
    Ok(())
}

/// Compares every path, and every directory it implies, under case folding and NFC.
fn check_collisions(names: &[&EntryName]) -> Result<(), TreeProblem> {
    let mut seen: HashMap<String, &str> = HashMap::with_capacity(names.len());
    for name in names {
        let path = name.path.as_str();
        for part in ancestors(path).chain(std::iter::once(path)) {
            match seen.entry(fold_key(part)) {
                Entry::Vacant(slot) => {
                    slot.insert(part);
                }
                Entry::Occupied(slot) if *slot.get() != part => {
                    return Err(TreeProblem::Collision {
                        entry: name.name.clone(),
                        other: (*slot.get()).to_owned(),
                    });
                }
                Entry::Occupied(_) => {}
            }
        }
    }
    Ok(())
}

/// The proper prefixes of a path that are directories: `a/b/c` gives `a` and `a/b`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// The spelling two names share when a case-insensitive, normalising filesystem would
/// treat them as one. Lowercasing can denormalise (`İ` becomes `i` plus a combining dot),
/// hence NFC on both sides of it. Full Unicode case folding (`ß` vs `ss`) is not applied.
fn fold_key(path: &str) -> String {
    let lower = path.nfc().collect::<String>().to_lowercase();
    lower.nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::parse_name;

    fn check(raw: &[&str]) -> Result<(), TreeProblem> {
        let names: Vec<EntryName> = raw
            .iter()
            .map(|r| parse_name(r.as_bytes()).unwrap())
            .collect();
        check_tree(&names.iter().collect::<Vec<_>>())
    }

    #[test]
    fn a_normal_tree_passes() {
        let tree = [
            "src/",
            "src/__init__.py",
            "src/main.py",
            "agent.yaml",
            "dist/ui/a.js",
        ];
        assert_eq!(check(&tree), Ok(()));
    }

    #[test]
    fn exact_duplicates_are_refused() {
        let dup = TreeProblem::Duplicate {
            entry: "a.txt".into(),
        };
        assert_eq!(check(&["a.txt", "b", "a.txt"]), Err(dup));
    }

    #[test]
    fn a_file_and_a_directory_of_one_name_are_duplicates() {
        assert!(matches!(
            check(&["a", "a/"]),
            Err(TreeProblem::Duplicate { .. })
        ));
        assert!(matches!(
            check(&["a/", "a"]),
            Err(TreeProblem::Duplicate { .. })
        ));
    }

    #[test]
    fn case_collisions_are_refused() {
        let err = check(&["README.md", "readme.md"]).unwrap_err();
        let expected = TreeProblem::Collision {
            entry: "readme.md".into(),
            other: "README.md".into(),
        };
        assert_eq!(err, expected);
    }

    #[test]
    fn collisions_between_implied_directories_are_refused() {
        assert!(matches!(
            check(&["Src/a.py", "src/b.py"]),
            Err(TreeProblem::Collision { .. })
        ));
        assert!(matches!(
            check(&["SRC/", "src/b.py"]),
            Err(TreeProblem::Collision { .. })
        ));
    }

    #[test]
    fn unicode_normalisation_collisions_are_refused() {
        // The same visible name, precomposed (NFC) and decomposed (NFD, as macOS writes it).
        let collision = check(&["caf\u{e9}.txt", "cafe\u{301}.txt"]);
        assert!(matches!(collision, Err(TreeProblem::Collision { .. })));
        let upper = check(&["CAF\u{c9}/x", "cafe\u{301}/y"]);
        assert!(matches!(upper, Err(TreeProblem::Collision { .. })));
    }

    #[test]
    fn a_file_cannot_be_a_parent() {
        let expected = TreeProblem::ParentIsFile {
            entry: "a/b".into(),
            parent: "a".into(),
        };
        assert_eq!(check(&["a", "a/b"]), Err(expected));
        let deep = check(&["x/y/z/w", "x/y"]);
        assert!(
            matches!(deep, Err(TreeProblem::ParentIsFile { ref parent, .. }) if parent == "x/y")
        );
    }

    #[test]
    fn explicit_and_implied_directories_agree() {
        assert_eq!(check(&["a/b/c", "a/", "a/b/"]), Ok(()));
    }
}
