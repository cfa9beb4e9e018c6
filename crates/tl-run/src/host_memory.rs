//! How much host memory a run may use: `--max-memory`, else most of what the machine has free.

/// Memory the system can still hand out (Linux's `MemAvailable`), in bytes.
pub(crate) fn available_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Nine tenths of `--max-memory`, else of the memory free now.
pub(crate) fn budget_now(max_memory: Option<u64>) -> usize {
    if let Some(m) = max_memory {
        return usize::try_from(m).unwrap_or(usize::MAX);
    }
    available_memory().map_or(usize::MAX, |free| free / 10 * 9)
}
