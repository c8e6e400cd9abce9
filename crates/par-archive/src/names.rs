//! Rules for one entry name, applied to the raw bytes of the central directory.
//!
//! A bad name refuses the whole archive. Nothing is repaired: "sanitising" `../x` to `x`
//! or `/etc/x` to `etc/x` (as stock zip readers do) turns an attack into a file the author
//! never meant to ship, and two different names could sanitise to the same path.

use crate::error::NameProblem;

/// A validated entry name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryName {
    /// The name as written in the archive (directories keep their trailing `/`).
    pub(crate) name: String,
    /// The relative path, without a trailing `/`; every component is a plain file name.
    pub(crate) path: String,
    /// The name ends with `/`, which is how zip marks a directory.
    pub(crate) is_dir: bool,
}

/// Decodes and checks a raw entry name.
///
/// Names are decoded as strict UTF-8 whatever the language-encoding flag says: an ASCII
/// name is the same in every encoding, Python's zipfile (which builds APKGs) sets the flag
/// for every non-ASCII name, and an unflagged non-UTF-8 name would mean CP437, which no
/// kit writes.
pub(crate) fn parse_name(raw: &[u8]) -> Result<EntryName, NameProblem> {
    let name = std::str::from_utf8(raw).map_err(|_| NameProblem::InvalidUtf8)?;
    check_characters(name)?;
    let (path, is_dir) = match name.strip_suffix('/') {
        Some(path) => (path, true),
        None => (name, false),
    };
    check_components(path)?;
    Ok(EntryName {
        name: name.to_owned(),
        path: path.to_owned(),
        is_dir,
    })
}

/// Checks that hold for the name as a whole, before it is split into components.
fn check_characters(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    // `char::is_control` covers NUL, the other C0 controls, DEL and the C1 controls.
    if name.chars().any(char::is_control) {
        return Err(NameProblem::ControlCharacter);
    }
    // Windows and some zip tools treat `\` as a separator, so `a\..\..\x` is a traversal.
    if name.contains('\\') {
        return Err(NameProblem::Backslash);
    }
    if name.starts_with('/') {
        return Err(NameProblem::Absolute);
    }
    if has_drive_letter(name) {
        return Err(NameProblem::DriveLetter);
    }
    Ok(())
}

/// `C:x` and `C:/x` are absolute or drive-relative on Windows.
fn has_drive_letter(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// Every component must be a plain name: `a//b`, `./a` and `a/../b` would give one file
/// several spellings, which defeats the duplicate and collision checks.
fn check_components(path: &str) -> Result<(), NameProblem> {
    for component in path.split('/') {
        match component {
            "" => return Err(NameProblem::EmptyComponent),
            "." => return Err(NameProblem::CurrentDir),
            ".." => return Err(NameProblem::ParentDir),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn problem(raw: &[u8]) -> Option<NameProblem> {
        parse_name(raw).err()
    }

    #[test]
    fn plain_names_pass() {
        let file = parse_name(b"src/main.py").unwrap();
        assert_eq!((file.path.as_str(), file.is_dir), ("src/main.py", false));
        let dir = parse_name(b"src/").unwrap();
        assert_eq!(
            (dir.name.as_str(), dir.path.as_str(), dir.is_dir),
            ("src/", "src", true)
        );
        assert!(parse_name(b".env").is_ok_and(|n| n.path == ".env"));
        assert!(parse_name("a/..b/c..".as_bytes()).is_ok());
        assert!(parse_name("données/été.txt".as_bytes()).is_ok());
        assert!(
            parse_name(b"ab:c").is_ok(),
            "only a leading drive letter is refused"
        );
    }

    #[test]
    fn absolute_paths_are_refused() {
        assert_eq!(problem(b"/etc/passwd"), Some(NameProblem::Absolute));
        assert_eq!(problem(b"/"), Some(NameProblem::Absolute));
    }

    #[test]
    fn dot_dot_components_are_refused() {
        assert_eq!(problem(b".."), Some(NameProblem::ParentDir));
        assert_eq!(problem(b"../x"), Some(NameProblem::ParentDir));
        assert_eq!(problem(b"a/../../x"), Some(NameProblem::ParentDir));
        assert_eq!(problem(b"a/.."), Some(NameProblem::ParentDir));
        assert_eq!(problem(b"a/../"), Some(NameProblem::ParentDir));
    }

    #[test]
    fn dot_components_are_refused() {
        assert_eq!(problem(b"./a"), Some(NameProblem::CurrentDir));
        assert_eq!(problem(b"a/./b"), Some(NameProblem::CurrentDir));
    }

    #[test]
    fn backslashes_are_refused() {
        assert_eq!(problem(b"a\\..\\..\\x"), Some(NameProblem::Backslash));
        assert_eq!(problem(b"a\\b"), Some(NameProblem::Backslash));
    }

    #[test]
    fn drive_letters_are_refused() {
        assert_eq!(problem(b"C:/Windows/x"), Some(NameProblem::DriveLetter));
        assert_eq!(problem(b"c:x"), Some(NameProblem::DriveLetter));
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(problem(b"a\0b"), Some(NameProblem::ControlCharacter));
        assert_eq!(problem(b"a\nb"), Some(NameProblem::ControlCharacter));
        assert_eq!(problem(b"a\x1b[31m"), Some(NameProblem::ControlCharacter));
        assert_eq!(problem(b"a\x7f"), Some(NameProblem::ControlCharacter));
        assert_eq!(
            problem("a\u{85}".as_bytes()),
            Some(NameProblem::ControlCharacter)
        );
    }

    #[test]
    fn empty_names_and_components_are_refused() {
        assert_eq!(problem(b""), Some(NameProblem::Empty));
        assert_eq!(problem(b"a//b"), Some(NameProblem::EmptyComponent));
        assert_eq!(problem(b"a//"), Some(NameProblem::EmptyComponent));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert_eq!(problem(b"caf\xe9"), Some(NameProblem::InvalidUtf8));
        assert_eq!(
            problem(b"\xc0\xaf"),
            Some(NameProblem::InvalidUtf8),
            "overlong `/`"
        );
        assert_eq!(
            problem(b"a\xed\xa0\x80"),
            Some(NameProblem::InvalidUtf8),
            "surrogate"
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_random_bytes(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_name(&raw);
        }

        #[test]
        fn accepted_names_are_confined(raw in "[a./\\\\:\u{0}\u{e9}A-]{0,12}") {
            if let Ok(name) = parse_name(raw.as_bytes()) {
                let path = std::path::Path::new(&name.path);
                prop_assert!(path.is_relative());
                prop_assert!(path
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_))));
                prop_assert_eq!(path.components().count(), name.path.split('/').count());
            }
        }
    }
}
