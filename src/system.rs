//! What the machine offers, asked before a large allocation: the memory available now, which
//! `simulate` (its kernel's tables) and the bootstrap (every refit's V) check a request against,
//! so that it is refused with a message instead of killed by the kernel.

/// The bytes of memory the system can give now (`MemAvailable` in /proc/meminfo), where it says.
pub(crate) fn available_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// `bytes` in GiB, as the refusals that check against [`available_memory`] print them.
pub(crate) fn gib(bytes: f64) -> f64 {
    bytes / f64::from(1u32 << 30)
}
