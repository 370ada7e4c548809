//! Child processes that are stopped by PID when their guard drops, and
//! reapers that clean up after this process if it dies without dropping them.

use crate::{HarnessError, sh_quote};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Owns a running child process; dropping it kills the child (SIGKILL) and waits for it.
#[derive(Debug)]
pub struct ProcessGuard {
    name: String,
    child: Child,
    reaper: Option<Child>,
}

impl ProcessGuard {
    /// Spawns `cmd` as `name`. If this process exits without dropping the guard
    /// (killed, Ctrl-C, statics), a reaper kills the child and then runs the
    /// shell snippet `orphan_cleanup` (may be empty), e.g. to remove its directory.
    pub fn spawn(name: &str, cmd: &mut Command, orphan_cleanup: &str) -> Result<Self, HarnessError> {
        let child = cmd.spawn().map_err(|e| HarnessError::new(format!("starting {name}: {e}")))?;
        let cleanup = format!("kill -9 {} 2>/dev/null; {orphan_cleanup}", child.id());
        // A guard without a reaper still works; it only loses the crash cleanup.
        let reaper = spawn_reaper(&cleanup).ok();
        Ok(Self { name: name.to_owned(), child, reaper })
    }

    /// The child's PID.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the child has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Asks the child to stop with SIGTERM, waits up to `grace`, then kills it.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.exited().is_none() {
            // std can only send SIGKILL; kill(1) lets the child shut down cleanly.
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).stderr(Stdio::null()).status();
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && self.exited().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        // Stop the reaper first so it cannot act on a PID that gets reused later.
        if let Some(mut reaper) = self.reaper.take() {
            let _ = reaper.kill();
            let _ = reaper.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a detached shell that waits until this process is gone and then runs
/// `cleanup`. It ignores SIGINT/SIGHUP/SIGTERM so that Ctrl-C on the terminal
/// or a kill of the process group does not take it down before it has cleaned
/// up. Kill the returned child (SIGKILL) to cancel the cleanup.
pub fn spawn_reaper(cleanup: &str) -> Result<Child, HarnessError> {
    let script = format!(
        "trap '' INT HUP TERM; while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {cleanup}",
        pid = std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| HarnessError::new(format!("starting reaper shell: {e}")))
}

/// `rm -rf` of `path`, as a shell snippet for [`spawn_reaper`].
pub fn rm_rf_snippet(path: &std::path::Path) -> String {
    format!("rm -rf {}", sh_quote(&path.to_string_lossy()))
}
