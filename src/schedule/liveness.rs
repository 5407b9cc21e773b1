//! Is a lease holder's process still running? Lets a lease whose holder crashed on this machine
//! be taken over at once instead of after its time-to-live.
//!
//! Every lease records the identity of the process that wrote it ([`ProcessIdentity`]): host
//! name, process id, the process's start time (field 22 of `/proc/<pid>/stat`, clock ticks since
//! boot), the kernel's boot id (`/proc/sys/kernel/random/boot_id`, random at every boot) and the
//! PID namespace (`/proc/self/ns/pid`). [`judge`] declares a holder dead only when *all* of these
//! hold:
//!
//! 1. the host name, boot id and PID namespace equal the judge's own: both processes run on the
//!    same running kernel and see the same process table, so the recorded pid means the same
//!    process to both. A different host is never judged by pid (its pids are not ours); neither
//!    is a different boot id (a reboot, but also another machine or VM that happens to carry the
//!    same host name) or a different PID namespace (two containers with one host name on one
//!    kernel): those leases lapse only at expiry;
//! 2. the recorded pid has no process, or it is a zombie (killed, not yet reaped), or its start
//!    time differs from the recorded one (the pid was recycled by an unrelated process).
//!
//! Why a live run is never taken over: a live holder's pid exists in this process table with the
//! very start time it recorded (a process's start time never changes, and two processes alive at
//! once never share a pid), so rule 2 cannot hold for it; anything the judge cannot read or
//! compare (no `/proc`, a lease written by an older version without the identity) is "unknown",
//! and unknown holders keep their lease until it expires, exactly as before.

use serde::{Deserialize, Serialize};

/// The identity of the process that wrote a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// Host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `/etc/hostname`).
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22); `None` without `/proc`.
    #[serde(default)]
    pub start_ticks: Option<u64>,
    /// The kernel's boot id; `None` without `/proc`.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// The PID namespace (`pid:[inode]`); `None` without `/proc`.
    #[serde(default)]
    pub pid_namespace: Option<String>,
}

/// What [`judge`] concluded about a lease holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Its process runs on this machine.
    Alive,
    /// Its process is gone (the reason says how we know).
    Dead(String),
    /// It cannot be checked from here (the reason says why); only the lease's expiry counts.
    Unknown(String),
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// This machine's host name.
pub fn host_name() -> String {
    read_trimmed("/proc/sys/kernel/hostname")
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.trim().is_empty())
        })
        .or_else(|| read_trimmed("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| "localhost".into())
}

/// State (field 3) and start time (field 22) of `pid`, from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself contain spaces and ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

impl ProcessIdentity {
    /// This process.
    pub fn current() -> Self {
        Self::of(std::process::id()).unwrap_or_else(|| Self {
            host: host_name(),
            pid: std::process::id(),
            start_ticks: None,
            boot_id: None,
            pid_namespace: None,
        })
    }

    /// A process of this machine, if it exists and `/proc` shows it.
    pub fn of(pid: u32) -> Option<Self> {
        let (_, start) = proc_stat(pid)?;
        Some(Self {
            host: host_name(),
            pid,
            start_ticks: Some(start),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        })
    }
}

/// Judges the holder `recorded` from the process `judge_as` (normally
/// [`ProcessIdentity::current`]); see the module documentation for the rules.
pub fn judge(recorded: &ProcessIdentity, judge_as: &ProcessIdentity) -> Liveness {
    if recorded.host != judge_as.host {
        return Liveness::Unknown(format!(
            "it runs on another host ({}); only its expiry counts",
            recorded.host
        ));
    }
    let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
    if !same(&recorded.boot_id, &judge_as.boot_id) {
        return Liveness::Unknown(
            "its boot id is not this kernel's (a reboot, or another machine with this host name)"
                .into(),
        );
    }
    if !same(&recorded.pid_namespace, &judge_as.pid_namespace) {
        return Liveness::Unknown("it runs in another PID namespace (container)".into());
    }
    let Some(start) = recorded.start_ticks else {
        return Liveness::Unknown("its process start time was not recorded".into());
    };
    match proc_stat(recorded.pid) {
        None => Liveness::Dead(format!("process {} no longer exists", recorded.pid)),
        Some(('Z' | 'X', _)) => Liveness::Dead(format!(
            "process {} has exited (a zombie not yet reaped)",
            recorded.pid
        )),
        Some((_, now_start)) if now_start != start => Liveness::Dead(format!(
            "pid {} now belongs to another process (started at tick {now_start}, not {start})",
            recorded.pid
        )),
        Some(_) => Liveness::Alive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child() -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs")
    }

    #[test]
    fn a_live_process_is_alive_and_a_killed_one_dead() {
        let me = ProcessIdentity::current();
        assert_eq!(judge(&me, &me), Liveness::Alive);
        let mut c = child();
        let id = ProcessIdentity::of(c.id()).expect("child visible in /proc");
        assert_eq!(judge(&id, &me), Liveness::Alive);
        c.kill().unwrap();
        // Killed but not reaped: a zombie still has its /proc entry.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(matches!(judge(&id, &me), Liveness::Dead(r) if r.contains("zombie")));
        c.wait().unwrap();
        assert!(matches!(judge(&id, &me), Liveness::Dead(r) if r.contains("no longer exists")));
    }

    #[test]
    fn a_recycled_pid_does_not_count_as_alive() {
        let me = ProcessIdentity::current();
        let mut c = child();
        let mut id = ProcessIdentity::of(c.id()).unwrap();
        // The pid is live, but not with the start time the holder recorded.
        id.start_ticks = id.start_ticks.map(|t| t.saturating_sub(1));
        assert!(matches!(judge(&id, &me), Liveness::Dead(r) if r.contains("another process")));
        c.kill().unwrap();
        c.wait().unwrap();
    }

    #[test]
    fn other_hosts_boots_namespaces_and_old_leases_are_never_judged_by_pid() {
        let me = ProcessIdentity::current();
        let mut c = child();
        let dead = ProcessIdentity::of(c.id()).unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
        let unknown = |id: ProcessIdentity| matches!(judge(&id, &me), Liveness::Unknown(_));
        assert!(unknown(ProcessIdentity {
            host: "elsewhere".into(),
            ..dead.clone()
        }));
        assert!(unknown(ProcessIdentity {
            boot_id: Some("00000000-0000-0000-0000-000000000000".into()),
            ..dead.clone()
        }));
        assert!(unknown(ProcessIdentity {
            pid_namespace: Some("pid:[1]".into()),
            ..dead.clone()
        }));
        assert!(unknown(ProcessIdentity {
            start_ticks: None,
            ..dead.clone()
        }));
        assert!(matches!(judge(&dead, &me), Liveness::Dead(_)));
    }

    #[test]
    fn the_command_name_may_contain_parentheses_and_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("sl) (ee p");
        let sleep = which_sleep();
        std::fs::copy(sleep, &odd).unwrap();
        let mut c = std::process::Command::new(&odd).arg("30").spawn().unwrap();
        let (state, start) = proc_stat(c.id()).expect("stat parses");
        assert!(state.is_ascii_alphabetic(), "{state}");
        assert_eq!(
            Some(start),
            ProcessIdentity::of(c.id()).unwrap().start_ticks
        );
        assert!(start >= proc_stat(std::process::id()).unwrap().1);
        c.kill().unwrap();
        c.wait().unwrap();
    }

    fn which_sleep() -> &'static str {
        ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("sleep installed")
    }
}
