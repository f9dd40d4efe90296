//! Process-level pieces of the watcher: one instance per state directory (a lock file), the pid
//! file, one request id handled at a time, the audit line, and the service manager's
//! notifications ([`systemd`]). Files and locks only: it imports nothing above the bottom layer.

pub mod systemd;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::exit::{Classify, Exit};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("another watcher already runs on state directory {0} (lock held)")]
    AlreadyRunning(PathBuf),
    #[error("state directory {path}: {message}")]
    StateDir { path: PathBuf, message: String },
}

impl Classify for RuntimeError {
    fn exit(&self) -> Exit {
        match self {
            RuntimeError::AlreadyRunning(_) => Exit::TempFail,
            RuntimeError::StateDir { .. } => Exit::Config,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            RuntimeError::AlreadyRunning(_) => Some("only one watcher may use a state directory; stop the other one or use another [watcher] state_dir".into()),
            RuntimeError::StateDir { .. } => Some("set [watcher] state_dir to a directory the service user owns".into()),
        }
    }
}

/// The instance lock: held for the life of the watcher (released by the kernel on exit, so it
/// never goes stale). Interoperates with `flock(1)`.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    /// Create the state directory (0700) if needed and take `DIR/watcher.lock`.
    pub fn acquire(state_dir: &Path) -> Result<InstanceLock, RuntimeError> {
        let sd = |m: String| RuntimeError::StateDir {
            path: state_dir.to_path_buf(),
            message: m,
        };
        crate::perms::create_private_dir(state_dir)
            .map_err(|e| sd(format!("cannot create it: {e}")))?;
        let path = state_dir.join("watcher.lock");
        let file = crate::perms::open_private(
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true),
            &path,
        )
        .map_err(|e| sd(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(InstanceLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(RuntimeError::AlreadyRunning(state_dir.to_path_buf()))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Err(sd(format!("cannot lock {}: {e}", path.display())))
            }
        }
    }
}

/// A pid file removed when dropped.
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl PidFile {
    /// Write this process's id to `path`, 0600 (its missing directories 0700) whatever the umask.
    pub fn write(path: &Path) -> std::io::Result<PidFile> {
        use std::io::Write as _;
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::perms::create_private_dir(d)?;
        }
        let mut f = crate::perms::open_private(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
            path,
        )?;
        f.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One lock per request id: two mails about the same request are never handled at once.
#[derive(Debug, Default, Clone)]
pub struct RequestLocks {
    inner: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl RequestLocks {
    /// Wait for the request's turn; the guard releases it.
    pub async fn lock(&self, request_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            // Forget locks nobody holds, so the map stays small in a long run.
            map.retain(|_, v| Arc::strong_count(v) > 1 || v.try_lock().is_err());
            map.entry(request_id.to_ascii_lowercase())
                .or_default()
                .clone()
        };
        m.lock_owned().await
    }
}

/// One audit line per processed mail, as JSON, on the `audit` log target.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Audit {
    pub event: &'static str,
    pub journal_row: i64,
    pub message_id: Option<String>,
    pub forwarder: Option<String>,
    pub request_id: Option<String>,
    pub safe: Option<String>,
    pub requester: Option<String>,
    pub level: Option<u8>,
    pub account: Option<String>,
    pub group: Option<String>,
    pub outcome: String,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub dry_run: bool,
}

impl Audit {
    pub fn emit(&self) {
        match serde_json::to_string(self) {
            Ok(s) => log::info!(target: "audit", "{s}"),
            Err(e) => log::error!(target: "audit", "audit line could not be written: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instance_per_state_directory() {
        let dir = tempfile::tempdir().expect("tmp");
        let sd = dir.path().join("state");
        let first = InstanceLock::acquire(&sd).expect("first");
        let second = InstanceLock::acquire(&sd).expect_err("second");
        assert_eq!(second.exit(), Exit::TempFail);
        drop(first);
        InstanceLock::acquire(&sd).expect("free again after the first ended");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&sd).expect("meta").permissions().mode() & 0o077,
            0
        );
    }

    #[test]
    fn the_lock_and_pid_files_are_owner_only_in_existing_open_directories() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let sd = dir.path().join("state");
        let run = dir.path().join("run");
        for d in [&sd, &run] {
            std::fs::create_dir(d).expect("mkdir");
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        // A pid file left readable by all by an older version.
        let pid = run.join("w.pid");
        std::fs::write(&pid, "1\n").expect("write");
        std::fs::set_permissions(&pid, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let _lock = InstanceLock::acquire(&sd).expect("lock");
        let _pid = PidFile::write(&pid).expect("pid");
        let new_pid = PidFile::write(&run.join("new/w.pid")).expect("pid in a new directory");
        let lock = sd.join("watcher.lock");
        for f in [
            lock.as_path(),
            pid.as_path(),
            run.join("new/w.pid").as_path(),
        ] {
            let mode = std::fs::metadata(f).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}: {mode:o}", f.display());
        }
        let mode = std::fs::metadata(run.join("new"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        drop(new_pid);
    }

    #[test]
    fn the_pid_file_goes_away() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("run/w.pid");
        {
            let _pid = PidFile::write(&p).expect("write");
            assert_eq!(
                std::fs::read_to_string(&p).expect("read").trim(),
                std::process::id().to_string()
            );
        }
        assert!(!p.exists());
    }

    #[tokio::test]
    async fn one_request_at_a_time() {
        let locks = RequestLocks::default();
        let g = locks.lock("Safe_1").await;
        let l2 = locks.clone();
        let other = tokio::spawn(async move { l2.lock("safe_1").await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!other.is_finished(), "the same request (any case) waits");
        let _g3 = locks.lock("Safe_2").await; // another request does not wait
        drop(g);
        tokio::time::timeout(std::time::Duration::from_secs(1), other)
            .await
            .expect("released")
            .expect("join");
    }
}
