//! The catch-up position of a backend (EWS: the `SyncFolderItems` state), kept between runs so
//! that a restarted watcher reads what arrived while it was down, and nothing twice.

use std::path::{Path, PathBuf};

use super::MailboxError;

/// Where the catch-up position is kept between runs.
pub trait SyncStateStore: Send + Sync {
    fn load(&self) -> Result<Option<String>, MailboxError>;
    fn save(&self, state: &str) -> Result<(), MailboxError>;
}

/// A sync state in a file, replaced atomically, readable by the owner only.
#[derive(Debug, Clone)]
pub struct FileSyncState {
    pub path: PathBuf,
}

impl FileSyncState {
    pub fn new(path: impl AsRef<Path>) -> Self {
        FileSyncState {
            path: path.as_ref().to_path_buf(),
        }
    }
}

impl SyncStateStore for FileSyncState {
    fn load(&self) -> Result<Option<String>, MailboxError> {
        match std::fs::read_to_string(&self.path) {
            Ok(s) if s.trim().is_empty() => Ok(None),
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(MailboxError::State {
                path: self.path.clone(),
                detail: e.to_string(),
            }),
        }
    }

    fn save(&self, state: &str) -> Result<(), MailboxError> {
        use std::io::Write as _;
        let err = |e: std::io::Error| MailboxError::State {
            path: self.path.clone(),
            detail: e.to_string(),
        };
        let tmp = self.path.with_extension("tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(err)?;
        f.write_all(state.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_state_file_round_trips_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let s = FileSyncState::new(dir.path().join("sync"));
        assert_eq!(s.load().expect("load"), None);
        s.save("H4sIAAA=").expect("save");
        assert_eq!(s.load().expect("load").as_deref(), Some("H4sIAAA="));
        let mode = std::fs::metadata(dir.path().join("sync"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }
}
