//! Property tests: hostile input may be refused, but must never panic or hang.

use proptest::prelude::*;

use crate::{parse_dotenv, parse_manifest, resolve_dependencies, ParseLimits};

/// YAML-ish noise: the characters that steer a YAML parser, so cases reach deep states.
fn yamlish() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r"([a-z_]{1,8}|[:\-\[\]{}&*!|>#'\x22,?\n ]|  ){0,200}").unwrap()
}

const VALID: &str = "name: p\ndisplay_name: P\ndescription: d\nauthor: a\nlicense: MIT\n\
                     entrypoint: src.main:handler\nmetadata:\n  version: '1'\n";

proptest! {
    #[test]
    fn manifest_parser_never_panics(text in yamlish()) {
        let _ = parse_manifest(text.as_bytes(), &ParseLimits::default());
    }

    #[test]
    fn manifest_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_manifest(&bytes, &ParseLimits::default());
    }

    #[test]
    fn dotenv_keys_are_always_valid_names(text in "(?s).{0,300}") {
        for (key, value) in parse_dotenv(&text) {
            prop_assert!(crate::model::is_identifier(&key), "{key:?}");
            prop_assert!(!value.contains('\n'));
        }
    }

    #[test]
    fn requirements_parser_never_panics(text in "(?s).{0,300}") {
        let manifest = parse_manifest(VALID.as_bytes(), &ParseLimits::default()).unwrap();
        let _ = resolve_dependencies(Some(&text), None, &manifest);
        let _ = resolve_dependencies(None, Some(&text), &manifest);
    }
}
