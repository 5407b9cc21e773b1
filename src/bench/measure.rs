//! What a phase costs: wall time, peak resident memory of this process during the phase, and
//! bytes the lake grew by.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

/// One measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// What ran (`ingest`, `build`, `test`, …).
    pub name: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Peak resident set size during the phase, MiB (`VmHWM` after resetting it; when the kernel
    /// does not allow a reset, the process peak so far).
    pub peak_rss_mib: f64,
    /// Rows the phase wrote (ingest and build) or checked (test).
    pub rows: usize,
    /// Bytes of files the phase added to the lake.
    pub bytes_written: u64,
}

/// A phase being measured.
pub struct Meter {
    name: String,
    clock: Instant,
    lake_bytes: u64,
}

impl Meter {
    /// Starts measuring: resets the peak-RSS mark and notes the lake's size.
    pub fn start(name: &str, lake_dir: &Path) -> Self {
        // Linux: writing 5 to clear_refs resets VmHWM to the current RSS (since 4.0).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        Self {
            name: name.to_string(),
            clock: Instant::now(),
            lake_bytes: dir_bytes(lake_dir),
        }
    }

    /// Ends the phase.
    pub fn stop(self, rows: usize, lake_dir: &Path) -> Phase {
        let seconds = self.clock.elapsed().as_secs_f64();
        Phase {
            name: self.name,
            seconds,
            peak_rss_mib: peak_rss_mib(),
            rows,
            bytes_written: dir_bytes(lake_dir).saturating_sub(self.lake_bytes),
        }
    }
}

/// `VmHWM` of this process, MiB (0 where `/proc` is missing).
pub fn peak_rss_mib() -> f64 {
    peak_rss_mib_of(None)
}

/// `VmHWM` of a process (this one when `None`), MiB (0 where `/proc` is missing or it is gone).
pub fn peak_rss_mib_of(pid: Option<u32>) -> f64 {
    let status = pid.map_or("/proc/self/status".to_string(), |p| {
        format!("/proc/{p}/status")
    });
    std::fs::read_to_string(status)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Total size of the files under `dir` (0 when it does not exist).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_counts_the_bytes_it_added_and_the_memory_it_touched() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old"), vec![0u8; 1000]).unwrap();
        let meter = Meter::start("x", dir.path());
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/new"), vec![1u8; 4096]).unwrap();
        let touched: Vec<u8> = vec![7u8; 64 << 20];
        let phase = meter.stop(3, dir.path());
        assert_eq!(phase.bytes_written, 4096);
        assert_eq!(phase.rows, 3);
        assert!(phase.peak_rss_mib >= 64.0, "{}", phase.peak_rss_mib);
        assert_eq!(touched[touched.len() - 1], 7);
    }
}
