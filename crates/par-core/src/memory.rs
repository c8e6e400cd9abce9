//! Reading a process's resident memory from `/proc` (Linux).

/// Resident set size of `pid` and every process below it, in bytes (a jailed worker is
/// its launcher, the jail's PID 1 and Python), or `None` when the process is gone.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let mut total = own_rss(pid)?;
    let mut pending = children(pid);
    while let Some(child) = pending.pop() {
        total += own_rss(child).unwrap_or(0);
        pending.extend(children(child));
    }
    Some(total)
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn own_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_rss() {
        let rss = super::rss_bytes(std::process::id()).unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
        assert!(super::rss_bytes(u32::MAX).is_none());
    }
}
