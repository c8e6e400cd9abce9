//! What the runtime holds: resident memory, open descriptors, threads, and the processes
//! below it (workers, their jails).

use std::fmt;

use crate::health::descendants;

#[derive(Clone, Copy, Debug)]
pub(super) struct Resources {
    pub rss_kib: u64,
    pub fds: usize,
    pub threads: usize,
    pub processes: usize,
}

impl Resources {
    pub(super) fn sample(pid: u32) -> Resources {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        let count = |dir: &str| {
            std::fs::read_dir(format!("/proc/{pid}/{dir}"))
                .unwrap()
                .count()
        };
        Resources {
            rss_kib,
            fds: count("fd"),
            threads: count("task"),
            processes: descendants(pid).len(),
        }
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rss {:.1} MiB, {} fds, {} threads, {} processes",
            self.rss_kib as f64 / 1024.0,
            self.fds,
            self.threads,
            self.processes
        )
    }
}
