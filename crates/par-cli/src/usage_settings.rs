//! `--usage-retention-days` and `--usage-size-warning-mb`: how the ledger stays bounded.

use std::time::Duration;

use crate::settings::ServeArgs;

/// Defaults: 90 days of records, a warning past 1 GiB.
/// Longer than any ledger will live; keeps the arithmetic far from overflow.
const MAX_DAYS: u64 = 100 * 365;

#[derive(Debug, Clone, Copy)]
pub(crate) struct LedgerBounds {
    /// `None`: kept forever.
    pub retention: Option<Duration>,
    /// `None`: no warning.
    pub size_warning_bytes: Option<u64>,
}

pub(crate) fn resolve(s: &ServeArgs, errors: &mut Vec<String>) -> LedgerBounds {
    let days = s
        .usage_retention_days
        .expect("usage-retention-days has a default");
    if days > MAX_DAYS {
        errors.push(format!(
            "--usage-retention-days / {}: at most {MAX_DAYS} (0 keeps records forever)",
            crate::env_names::USAGE_RETENTION_DAYS
        ));
    }
    let mb = s
        .usage_size_warning_mb
        .expect("usage-size-warning-mb has a default");
    LedgerBounds {
        retention: (days > 0).then(|| Duration::from_secs(days.min(MAX_DAYS) * 86_400)),
        size_warning_bytes: (mb > 0).then(|| mb.saturating_mul(1 << 20)),
    }
}
