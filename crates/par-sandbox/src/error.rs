//! A jail that could not be set up, naming the kernel or host facility that failed so an
//! operator knows what to allow (or that `--sandbox off` is the way around it).

/// Exit code of a launcher whose jail could not be set up (as container runtimes do).
pub const EXIT_SETUP: i32 = 125;
/// How the launcher's setup failure begins on stderr; the probe reads it back.
pub const MARKER: &str = "par-jail: setup failed: ";

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{facility}: {detail}")]
pub struct JailError {
    /// The facility, e.g. `user namespaces` or `seccomp`.
    pub facility: &'static str,
    pub detail: String,
}

impl JailError {
    pub fn new(facility: &'static str, detail: impl Into<String>) -> JailError {
        JailError {
            facility,
            detail: detail.into(),
        }
    }
}
