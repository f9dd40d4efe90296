//! The programs under test as child processes: the watcher (started as the service unit starts
//! it, stopped with SIGTERM), its memory from `/proc/PID/status`, and timed one-shot runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A running `check-approval-request` (the long-running watcher).
pub struct Watcher {
    child: Option<Child>,
    pub pid: u32,
    pub log: PathBuf,
    pub state_dir: PathBuf,
}

/// The environment every child gets: no configuration inherited from the caller's shell.
pub fn command(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("APPROVAL")) {
            c.env_remove(&k);
        }
    }
    c.env_remove("RUST_LOG");
    c
}

impl Watcher {
    /// Start the watcher with `config`, its own state directory and log file, as
    /// `examples/systemd/pam-approval.service` and the cron wrapper do (`--log-file`,
    /// `--pid-file`; `-v` only when asked, for profiling by the log's timestamps).
    pub fn start(
        bin: &Path,
        config: &Path,
        state_dir: &Path,
        log: &Path,
        verbose: bool,
    ) -> Result<Watcher> {
        let mut c = command(bin);
        c.arg("--config")
            .arg(config)
            .arg("--log-file")
            .arg(log)
            .arg("--pid-file")
            .arg(state_dir.join("watcher.pid"))
            .env("APPROVAL__WATCHER__STATE_DIR", state_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if verbose {
            c.arg("-vv");
        }
        let child = c
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Watcher {
            pid: child.id(),
            child: Some(child),
            log: log.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
        })
    }

    /// Has it finished its start-up catch-up (the first `SyncFolderItems` stored its position)?
    pub fn caught_up(&self) -> bool {
        self.state_dir
            .join(approval_core::pipeline::watch_loop::SYNC_STATE_FILE)
            .exists()
    }

    /// Fail when the watcher has ended on its own.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut()
            && let Some(st) = c.try_wait()?
        {
            self.child = None;
            bail!(
                "the watcher ended on its own ({st}); its log {}:\n{}",
                self.log.display(),
                tail(&self.log, 20)
            );
        }
        Ok(())
    }

    /// Resident set now and at its peak (VmRSS, VmHWM), in KiB.
    pub fn memory_kib(&self) -> (Option<u64>, Option<u64>) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        (status_kib(&s, "VmRSS"), status_kib(&s, "VmHWM"))
    }

    /// CPU time used so far (user + system), in milliseconds, from `/proc/PID/stat`.
    pub fn cpu_ms(&self) -> Option<f64> {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        stat_cpu_ticks(&s).map(|t| t as f64 * 1000.0 / clock_ticks() as f64)
    }

    /// SIGKILL (a crash), and reap it.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait (it finishes the mails in flight); the exit status.
    pub fn stop(mut self, timeout: Duration) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("the watcher was already gone");
        };
        signal("-TERM", self.pid)?;
        let until = Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the watcher did not stop within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(sig: &str, pid: u32) -> Result<()> {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .context("running kill")?
        .success();
    if !ok {
        bail!("kill {sig} {pid} failed");
    }
    Ok(())
}

/// A `kB` field of `/proc/PID/status`.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim().trim_end_matches("kB").trim().parse().ok())?
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in clock ticks. The command
/// name (field 2) is in parentheses and may hold spaces: count fields after its `)`.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// USER_HZ (`getconf CLK_TCK`; 100 on Linux in practice).
fn clock_ticks() -> u64 {
    static T: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *T.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// The last `n` lines of a file (for error messages).
pub fn tail(path: &Path, n: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Run a program to completion, feeding `stdin`; wall time and the output.
pub fn timed(mut c: Command, stdin: Option<&[u8]>) -> Result<(Duration, std::process::Output)> {
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = c.spawn().context("starting a tool")?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().context("stdin pipe")?;
        pipe.write_all(input).context("writing stdin")?;
    }
    let out = child.wait_with_output()?;
    Ok((t.elapsed(), out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields_of_proc_status() {
        let s = "Name:\tcheck-approval\nVmPeak:\t  812340 kB\nVmHWM:\t   14512 kB\nVmRSS:\t   13980 kB\n";
        assert_eq!(status_kib(s, "VmHWM"), Some(14512));
        assert_eq!(status_kib(s, "VmRSS"), Some(13980));
        assert_eq!(status_kib(s, "VmSwap"), None);
        assert_eq!(status_kib("Vm", "VmRSS"), None);
    }

    #[test]
    fn reads_cpu_ticks_past_a_command_name_with_spaces() {
        let s = "4242 (check approval) S 1 4242 4242 0 -1 4194560 500 0 0 0 37 12 0 0 20 0 2 0";
        assert_eq!(stat_cpu_ticks(s), Some(49));
        assert_eq!(stat_cpu_ticks("4242 (x) S 1"), None);
        let own = std::fs::read_to_string("/proc/self/stat").expect("proc");
        assert!(stat_cpu_ticks(&own).is_some(), "{own}");
    }

    #[test]
    fn our_own_peak_memory_is_readable() {
        let s = std::fs::read_to_string("/proc/self/status").expect("proc");
        let hwm = status_kib(&s, "VmHWM").expect("VmHWM");
        let rss = status_kib(&s, "VmRSS").expect("VmRSS");
        assert!(hwm >= rss && rss > 0, "{hwm} {rss}");
    }
}
