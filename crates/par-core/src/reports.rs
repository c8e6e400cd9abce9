//! What operators see per source: the last load outcome, with live worker facts added
//! when the report is read.

use std::sync::Mutex;

use crate::error::LoadError;
use crate::error::LoadPhase;
use crate::package::{Package, PackageReport, PackageState};

/// Failed reports kept by default: every source that keeps failing (uploads, a typo'd
/// path retried by a script) would otherwise add one for good.
pub(crate) const DEFAULT_MAX_FAILED: usize = crate::defaults::MAX_FAILED_REPORTS;

pub(crate) struct Reports {
    entries: Mutex<Vec<PackageReport>>,
    max_failed: usize,
}

impl Default for Reports {
    fn default() -> Self {
        Reports::new(DEFAULT_MAX_FAILED)
    }
}

impl Reports {
    pub(crate) fn new(max_failed: usize) -> Self {
        Reports {
            entries: Mutex::new(Vec::new()),
            max_failed,
        }
    }

    pub(crate) fn set(&self, report: PackageReport) {
        let mut entries = self.entries.lock().expect("reports poisoned");
        match entries.iter_mut().find(|r| r.source == report.source) {
            Some(slot) => *slot = report,
            None => entries.push(report),
        }
    }

    pub(crate) fn loading(&self, source: &str) {
        self.set(PackageReport::loading(source));
    }

    /// A loading package entered `phase`.
    pub(crate) fn phase(&self, source: &str, phase: LoadPhase) {
        let mut entries = self.entries.lock().expect("reports poisoned");
        if let Some(report) = entries
            .iter_mut()
            .find(|r| r.source == source && r.state == PackageState::Loading)
        {
            report.phase = Some(phase);
        }
    }

    pub(crate) fn ready(&self, source: &str, package: &Package) {
        tracing::info!(
            package = %package.name(), version = %package.version(), sha256 = %package.sha256,
            source, "package ready"
        );
        let mut report = PackageReport::loading(source);
        report.state = PackageState::Ready;
        report.phase = None;
        report.name = Some(package.name().to_string());
        report.version = Some(package.version().to_string());
        report.sha256 = Some(package.sha256.clone());
        report.environment = Some(package.env_key.clone());
        self.set(report);
    }

    pub(crate) fn failed(&self, source: &str, error: &LoadError) {
        tracing::error!(source, phase = ?error.phase, error = %error.reason, "package failed to load");
        let mut report = PackageReport::loading(source);
        report.state = PackageState::Failed;
        report.phase = None;
        report.failed_phase = Some(error.phase);
        report.error = Some(error.reason.clone());
        let mut entries = self.entries.lock().expect("reports poisoned");
        // The newest failure goes last, so the oldest are the ones forgotten.
        entries.retain(|r| r.source != source);
        entries.push(report);
        let failed = entries
            .iter()
            .filter(|r| r.state == PackageState::Failed)
            .count();
        let mut excess = failed.saturating_sub(self.max_failed);
        entries.retain(|r| {
            let forget = excess > 0 && r.state == PackageState::Failed;
            excess -= usize::from(forget);
            !forget
        });
    }

    /// Marks every report of these bytes as draining.
    pub(crate) fn draining(&self, sha256: &str) {
        let mut entries = self.entries.lock().expect("reports poisoned");
        for r in entries
            .iter_mut()
            .filter(|r| r.sha256.as_deref() == Some(sha256))
        {
            r.state = PackageState::Draining;
        }
    }

    /// Forgets the reports of an unloaded package.
    pub(crate) fn remove(&self, sha256: &str) {
        let mut entries = self.entries.lock().expect("reports poisoned");
        entries.retain(|r| r.sha256.as_deref() != Some(sha256));
    }

    pub(crate) fn find(&self, source: &str) -> Option<PackageReport> {
        let entries = self.entries.lock().expect("reports poisoned");
        entries.iter().find(|r| r.source == source).cloned()
    }

    /// Every report, with worker facts of the packages still alive (mounted or draining).
    pub(crate) fn snapshot(&self, live: &[std::sync::Arc<Package>]) -> Vec<PackageReport> {
        let mut reports = self.entries.lock().expect("reports poisoned").clone();
        for report in reports.iter_mut() {
            let Some(p) = live
                .iter()
                .find(|p| Some(&p.sha256) == report.sha256.as_ref())
            else {
                continue;
            };
            if report.state == PackageState::Ready && p.is_idle() {
                report.state = PackageState::Idle;
            }
            report.workers = p.worker_pids();
            report.inflight = p.inflight();
            report.app_pid = p.surface.as_ref().and_then(|s| s.pid());
            report.queued = p.gate.queued();
            report.sandbox = Some(p.sandbox.clone());
            if let Some(pool) = &p.pool {
                report.restarts = pool.restarts();
                report.crashes = pool.crashes();
                report.crash_loop = pool.crash_looped();
            }
        }
        reports
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::package::tests::package;

    #[test]
    fn a_loading_report_becomes_ready_with_the_package_facts() {
        let reports = Reports::default();
        reports.loading("/p/a.apkg");
        assert_eq!(
            reports.find("/p/a.apkg").unwrap().state,
            PackageState::Loading
        );
        reports.ready("/p/a.apkg", &package("a", "1.2.0", "sha-a"));
        let r = reports.find("/p/a.apkg").unwrap();
        assert_eq!(r.state, PackageState::Ready);
        assert_eq!(r.name.as_deref(), Some("a"));
        assert_eq!(r.version.as_deref(), Some("1.2.0"));
        assert_eq!(r.sha256.as_deref(), Some("sha-a"));
        assert!(r.error.is_none());
    }

    #[test]
    fn a_loading_report_shows_its_phase_until_it_ends() {
        let reports = Reports::default();
        reports.loading("/p/a.apkg");
        assert_eq!(
            reports.find("/p/a.apkg").unwrap().phase,
            Some(LoadPhase::Fetch)
        );
        reports.phase("/p/a.apkg", LoadPhase::Environment);
        assert_eq!(
            reports.find("/p/a.apkg").unwrap().phase,
            Some(LoadPhase::Environment)
        );
        reports.ready("/p/a.apkg", &package("a", "1.2.0", "sha-a"));
        reports.phase("/p/a.apkg", LoadPhase::Start);
        assert_eq!(reports.find("/p/a.apkg").unwrap().phase, None);
    }

    #[test]
    fn a_failed_report_keeps_the_phase_and_the_error() {
        let reports = Reports::default();
        reports.loading("/p/bad.apkg");
        let error = LoadError::new(
            LoadPhase::Manifest,
            "/p/bad.apkg",
            "field 'name' is required",
        );
        reports.failed("/p/bad.apkg", &error);
        let r = reports.find("/p/bad.apkg").unwrap();
        assert_eq!(r.state, PackageState::Failed);
        assert_eq!(r.failed_phase, Some(LoadPhase::Manifest));
        assert_eq!(r.error.as_deref(), Some("field 'name' is required"));
        assert!(r.name.is_none() && r.sha256.is_none());
    }

    #[test]
    fn reloading_a_failed_source_clears_its_error() {
        let reports = Reports::default();
        reports.failed(
            "/p/a.apkg",
            &LoadError::new(LoadPhase::Fetch, "/p/a.apkg", "gone"),
        );
        reports.loading("/p/a.apkg");
        let r = reports.find("/p/a.apkg").unwrap();
        assert_eq!(r.state, PackageState::Loading);
        assert!(r.error.is_none() && r.failed_phase.is_none());
    }

    #[test]
    fn only_the_newest_failures_are_kept() {
        let reports = Reports::new(2);
        reports.loading("/p/ok.apkg");
        let error = LoadError::new(LoadPhase::Fetch, "x", "gone");
        for source in ["/p/a.apkg", "/p/b.apkg", "/p/c.apkg", "/p/a.apkg"] {
            reports.failed(source, &error);
        }
        let sources: Vec<String> = reports
            .snapshot(&[])
            .into_iter()
            .map(|r| r.source)
            .collect();
        assert_eq!(sources, ["/p/ok.apkg", "/p/c.apkg", "/p/a.apkg"]);
    }

    #[test]
    fn there_is_one_report_per_source() {
        let reports = Reports::default();
        reports.loading("/p/a.apkg");
        reports.loading("/p/b.apkg");
        reports.ready("/p/a.apkg", &package("a", "1.0.0", "sa"));
        reports.ready("/p/a.apkg", &package("a", "1.1.0", "sa2"));
        let all = reports.snapshot(&[]);
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].version.as_deref(),
            Some("1.1.0"),
            "the newest outcome"
        );
        assert!(reports.find("/p/c.apkg").is_none());
    }

    #[test]
    fn draining_marks_every_report_of_those_bytes_and_no_other() {
        let reports = Reports::default();
        reports.ready("/p/a.apkg", &package("a", "1.0.0", "sa"));
        reports.ready("/dir/a-copy.apkg", &package("a", "1.0.0", "sa"));
        reports.ready("/p/b.apkg", &package("b", "1.0.0", "sb"));
        reports.draining("sa");
        assert_eq!(
            reports.find("/p/a.apkg").unwrap().state,
            PackageState::Draining
        );
        assert_eq!(
            reports.find("/dir/a-copy.apkg").unwrap().state,
            PackageState::Draining
        );
        assert_eq!(
            reports.find("/p/b.apkg").unwrap().state,
            PackageState::Ready
        );
    }

    #[test]
    fn removing_forgets_only_the_reports_of_those_bytes() {
        let reports = Reports::default();
        reports.ready("/p/a.apkg", &package("a", "1.0.0", "sa"));
        reports.ready("/p/b.apkg", &package("b", "1.0.0", "sb"));
        reports.loading("/p/c.apkg");
        reports.draining("sa");
        reports.remove("sa");
        assert!(reports.find("/p/a.apkg").is_none());
        assert!(reports.find("/p/b.apkg").is_some());
        assert!(reports.find("/p/c.apkg").is_some(), "no sha yet: kept");
    }

    #[tokio::test]
    async fn a_snapshot_adds_live_facts_only_to_reports_of_live_packages() {
        let reports = Reports::default();
        let live = package("a", "1.0.0", "sa");
        let gone = package("b", "1.0.0", "sb");
        reports.ready("/p/a.apkg", &live);
        reports.ready("/p/b.apkg", &gone);
        let permit = live.gate.enter(Duration::ZERO, || ()).await.unwrap();
        let gone_permit = gone.gate.enter(Duration::ZERO, || ()).await.unwrap();
        let snapshot = reports.snapshot(&[Arc::clone(&live)]);
        let of = |source: &str| snapshot.iter().find(|r| r.source == source).unwrap();
        assert_eq!(of("/p/a.apkg").inflight, 1);
        assert_eq!(of("/p/b.apkg").inflight, 0, "not live: no live facts");
        assert_eq!(
            reports.find("/p/a.apkg").unwrap().inflight,
            0,
            "the stored report is not changed"
        );
        drop((permit, gone_permit));
        assert_eq!(reports.snapshot(&[live])[0].inflight, 0);
    }
}
