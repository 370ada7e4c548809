//! CPU time of this process and of the double's `node` validator (a child
//! of ours), from Linux's per-thread scheduler statistics.

use std::time::Duration;

/// CPU time used by two processes: this one and the double's validator.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    /// This process: bridge, double and load clients.
    pub bench: Duration,
    /// The double's node validator.
    pub node: Duration,
}

impl Cpu {
    /// Reads both now; `None` where `/proc` does not tell.
    pub fn now() -> Option<Self> {
        let node = validator_pid()?;
        Some(Self { bench: used("self")?, node: used(&node)? })
    }

    /// What was used since `before`.
    pub fn since(self, before: Self) -> Self {
        Self { bench: self.bench.saturating_sub(before.bench), node: self.node.saturating_sub(before.node) }
    }
}

/// The sum of the time every live thread of `pid` ran on a CPU.
fn used(pid: &str) -> Option<Duration> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let stats = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        nanos += stats.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(Duration::from_nanos(nanos))
}

/// Our child process running the validator bundle.
fn validator_pid() -> Option<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid = entry.file_name().into_string().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid ...`; the command name may hold spaces.
        let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        (ppid == me && String::from_utf8_lossy(&cmdline).contains("validator.cjs")).then_some(pid)
    })
}
