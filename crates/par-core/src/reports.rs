//! What operators see per source: the last load outcome, with live worker facts added
//! when the report is read.

use std::sync::Mutex;

use crate::error::LoadError;
use crate::package::{Package, PackageReport, PackageState};

#[derive(Default)]
pub struct Reports {
    entries: Mutex<Vec<PackageReport>>,
}

impl Reports {
    pub fn set(&self, report: PackageReport) {
        let mut entries = self.entries.lock().expect("reports poisoned");
        match entries.iter_mut().find(|r| r.source == report.source) {
            Some(slot) => *slot = report,
            None => entries.push(report),
        }
    }

    pub fn loading(&self, source: &str) {
        self.set(PackageReport::loading(source));
    }

    pub fn ready(&self, source: &str, package: &Package) {
        tracing::info!(
            package = %package.name(), version = %package.version(), sha256 = %package.sha256,
            source, "package ready"
        );
        let mut report = PackageReport::loading(source);
        report.state = PackageState::Ready;
        report.name = Some(package.name().to_string());
        report.version = Some(package.version().to_string());
        report.sha256 = Some(package.sha256.clone());
        report.environment = Some(package.env_key.clone());
        self.set(report);
    }

    pub fn failed(&self, source: &str, error: &LoadError) {
        tracing::error!(source, phase = ?error.phase, error = %error.reason, "package failed to load");
        let mut report = PackageReport::loading(source);
        report.state = PackageState::Failed;
        report.failed_phase = Some(error.phase);
        report.error = Some(error.reason.clone());
        self.set(report);
    }

    /// Marks every report of these bytes as draining.
    pub fn draining(&self, sha256: &str) {
        let mut entries = self.entries.lock().expect("reports poisoned");
        for r in entries
            .iter_mut()
            .filter(|r| r.sha256.as_deref() == Some(sha256))
        {
            r.state = PackageState::Draining;
        }
    }

    /// Forgets the reports of an unloaded package.
    pub fn remove(&self, sha256: &str) {
        let mut entries = self.entries.lock().expect("reports poisoned");
        entries.retain(|r| r.sha256.as_deref() != Some(sha256));
    }

    pub fn find(&self, source: &str) -> Option<PackageReport> {
        let entries = self.entries.lock().expect("reports poisoned");
        entries.iter().find(|r| r.source == source).cloned()
    }

    /// Every report, with worker facts of the packages still alive (mounted or draining).
    pub fn snapshot(&self, live: &[std::sync::Arc<Package>]) -> Vec<PackageReport> {
        let mut reports = self.entries.lock().expect("reports poisoned").clone();
        for report in reports.iter_mut() {
            let Some(p) = live
                .iter()
                .find(|p| Some(&p.sha256) == report.sha256.as_ref())
            else {
                continue;
            };
            report.workers = p.worker_pids();
            report.inflight = p.inflight();
            report.app_pid = p.surface.as_ref().and_then(|s| s.pid());
            report.queued = p.gate.queued();
            if let Some(pool) = &p.pool {
                report.restarts = pool.restarts();
                report.crashes = pool.crashes();
                report.crash_loop = pool.crash_looped();
            }
        }
        reports
    }
}
