//! The Python host program (`python/par_asgi.py`), shipped inside the binary and written
//! out on demand, and the packages it needs in the package's environment.

use std::path::{Path, PathBuf};

/// Source of the host program, kept in the repository as Python.
pub const ASGI_SOURCE: &str = include_str!("../../../python/par_asgi.py");

/// Exit code of the host when the entry cannot be imported or built.
pub(crate) const EXIT_ENTRY: i32 = 4;
/// Exit code of the host when uvicorn (or fastapi in `rest` mode) is not installed.
pub(crate) const EXIT_SERVER_MISSING: i32 = 5;

/// How the host turns the entry into an ASGI app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SurfaceMode {
    /// `rest.entry`: `module:mount`, called once with a new `fastapi.FastAPI()`.
    Rest,
    /// pixell-sdk `http_server` / `a2a.http_server`: `module:attr`, an ASGI app served
    /// as is.
    Asgi,
}

impl SurfaceMode {
    /// The value of `PAR_ASGI_MODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            SurfaceMode::Rest => "rest",
            SurfaceMode::Asgi => "asgi",
        }
    }
}

// Pins per Python version: the newest releases need 3.11 (fastapi) and 3.10 (uvicorn),
// and the runtime also runs python3.9 packages. Markers let one list serve them all.
// wsproto is uvicorn's pure-Python WebSocket protocol: without one installed, uvicorn
// refuses every WebSocket upgrade, so apps with WebSocket endpoints would fail.
const UVICORN: [&str; 4] = [
    "uvicorn==0.54.0; python_version >= '3.10'",
    "uvicorn==0.39.0; python_version < '3.10'",
    "wsproto==1.3.2; python_version >= '3.10'",
    "wsproto==1.2.0; python_version < '3.10'",
];
const REST: [&str; 6] = [
    "fastapi==0.165.0; python_version >= '3.11'",
    "fastapi==0.128.8; python_version < '3.11'",
    UVICORN[0],
    UVICORN[1],
    UVICORN[2],
    UVICORN[3],
];

/// Requirements the host program needs in the package's environment for `mode`, pinned,
/// with environment markers choosing the pin for the interpreter.
pub fn required_packages(mode: SurfaceMode) -> &'static [&'static str] {
    match mode {
        SurfaceMode::Rest => &REST,
        SurfaceMode::Asgi => &UVICORN,
    }
}

/// The entries of [`required_packages`] whose distribution the package's own
/// `requirements` do not name: append these to the dependency set. A package that pins
/// its own uvicorn or fastapi keeps its pin.
pub fn missing_packages<S: AsRef<str>>(mode: SurfaceMode, requirements: &[S]) -> Vec<&'static str> {
    let present: Vec<String> = requirements
        .iter()
        .map(|r| normalized_name(r.as_ref()))
        .collect();
    required_packages(mode)
        .iter()
        .copied()
        .filter(|req| !present.contains(&normalized_name(req)))
        .collect()
}

/// The PEP 503 normalised distribution name at the start of a requirement string.
fn normalized_name(requirement: &str) -> String {
    let name: String = requirement
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if matches!(c, '_' | '.') { '-' } else { c };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Writes the host program under `dir` in a content-addressed file and returns its path.
pub fn materialize(dir: &Path) -> std::io::Result<PathBuf> {
    par_worker::script::write_program(dir, "par_asgi.py", ASGI_SOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalized_name("Uvicorn[standard]>=0.30"), "uvicorn");
        assert_eq!(normalized_name("  FastAPI == 1"), "fastapi");
        assert_eq!(normalized_name("zope.Interface_x"), "zope-interface-x");
        assert_eq!(normalized_name("uvicorn; python_version<'3.10'"), "uvicorn");
    }

    #[test]
    fn missing_packages_respects_the_packages_own_pins() {
        assert_eq!(
            missing_packages(SurfaceMode::Rest, &["FastAPI>=0.100", "six"]),
            UVICORN.to_vec()
        );
        assert_eq!(
            missing_packages(SurfaceMode::Asgi, &["uvicorn[standard]==0.30.0", "wsproto"]),
            Vec::<&str>::new()
        );
        assert_eq!(
            missing_packages::<&str>(SurfaceMode::Rest, &[]),
            REST.to_vec()
        );
    }

    #[test]
    fn materialize_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let a = materialize(dir.path()).unwrap();
        let b = materialize(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(fs_err::read_to_string(&a).unwrap(), ASGI_SOURCE);
    }
}
