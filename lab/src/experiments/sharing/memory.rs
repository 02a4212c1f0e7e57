//! Reading the memory in use: glibc's heap count (`mallinfo2`), or the resident set size
//! off glibc.

/// The heap bytes in use (allocated and not freed), by glibc's count (`mallinfo2`: the
/// arenas' allocated bytes plus the mmapped blocks); `None` off glibc.
pub fn heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[repr(C)]
        struct Mallinfo2 {
            arena: usize,
            ordblks: usize,
            smblks: usize,
            hblks: usize,
            hblkhd: usize,
            usmblks: usize,
            fsmblks: usize,
            uordblks: usize,
            fordblks: usize,
            keepcost: usize,
        }
        extern "C" {
            fn mallinfo2() -> Mallinfo2;
        }
        // SAFETY: glibc's mallinfo2 (2.33 and later) takes nothing and returns a struct of
        // ten size_t counts by value, declared here field for field.
        let info = unsafe { mallinfo2() };
        Some((info.uordblks + info.hblkhd) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// The process's resident set size in bytes (`VmRSS` of `/proc/self/status`).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What [`memory_in_use`] measures.
pub const MEMORY_MEASURE: &str = if cfg!(all(target_os = "linux", target_env = "gnu")) {
    "heap bytes in use, by glibc's count (mallinfo2: uordblks + hblkhd)"
} else {
    "resident set size (VmRSS)"
};

/// Memory in use now, in bytes: [`heap_in_use`] where glibc gives it, else the resident
/// set size; 0 where neither can be read.
pub fn memory_in_use() -> u64 {
    heap_in_use().or_else(rss_bytes).unwrap_or(0)
}

/// `after - before` bytes, in MiB.
pub(super) fn mib(before: u64, after: u64) -> f64 {
    (after as f64 - before as f64) / (1u64 << 20) as f64
}
