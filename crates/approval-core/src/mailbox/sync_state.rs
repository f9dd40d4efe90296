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
        // 0600 whatever the umask, and whatever mode a temporary file left by a crash has.
        let mut f = crate::perms::open_private(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
            &tmp,
        )
        .map_err(err)?;
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

    #[test]
    fn sync_state_is_private_even_over_a_leftover_open_temporary_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let path = dir.path().join("mailbox.sync");
        // A crash left the temporary file behind, readable by all; so is an old state.
        for f in [path.with_extension("tmp"), path.clone()] {
            std::fs::write(&f, "old").expect("write");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        FileSyncState::new(&path).save("H4sIAAA=").expect("save");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}
