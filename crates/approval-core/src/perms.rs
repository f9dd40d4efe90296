//! File modes of the watcher's own files, whatever the umask: private directories (0700) and
//! files (0600) for the state it writes, and the check that what it reads and trusts (the
//! configuration, reply templates, the state directory) cannot be changed by group or others.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of a private file.
pub const FILE_MODE: u32 = 0o600;
/// The mode of a private directory.
pub const DIR_MODE: u32 = 0o700;

/// Create `dir` and its missing parents as 0700 (an existing directory is left as it is).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// Open `path` with `opts`, creating it 0600; an existing file readable or writable by group
/// or others is made 0600 (a file an older version or another tool created).
pub fn open_private(opts: &mut OpenOptions, path: &Path) -> io::Result<File> {
    let f = opts.mode(FILE_MODE).open(path)?;
    let mode = f.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(f)
}

/// Make an existing file private (0600) if group or others have any right on it; absent is fine.
pub fn make_private(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() && m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Why root must not work in `dir`: this process runs as root and `dir` belongs to another user
/// (the service's), so what root would create there (the journal, its write-ahead log, the
/// lock) would be root's and lock that user's service out. `None` when the process is not root,
/// or `dir` is root's or does not exist. The sentence names the owner and the fix.
pub fn foreign_for_root(dir: &Path) -> io::Result<Option<String>> {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if meta.uid() == 0 {
        return Ok(None);
    }
    let who = user_name(meta.uid()).unwrap_or_else(|| format!("uid {}", meta.uid()));
    Ok(Some(format!(
        "{} belongs to {who} and this run is root's: what root writes there (the journal, its \
         write-ahead log, the lock) would lock {who}'s service out; run the tool as {who} \
         (sudo -u {who} …)",
        dir.display()
    )))
}

/// The name `/etc/passwd` gives `uid`, if any.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id = f.nth(1)?;
        (id.parse::<u32>().ok()? == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// Why `path` must not be trusted: it is writable by group or others (so whoever is in its
/// group, or anyone, can change what the watcher reads there). `None` when it is not, or when
/// it does not exist (whoever reads it reports that). The sentence names the mode and the fix.
pub fn writable_by_others(path: &Path) -> io::Result<Option<String>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 == 0 {
        return Ok(None);
    }
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "group and others",
        (true, false) => "its group",
        _ => "others",
    };
    Ok(Some(format!(
        "{} is writable by {who} (mode {mode:04o}): whoever can write it can change what the \
         watcher trusts; run chmod go-w {}",
        path.display(),
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn private_files_and_directories_whatever_exists_before() {
        let dir = tempfile::tempdir().expect("tmp");
        chmod(dir.path(), 0o755);
        let d = dir.path().join("a/b");
        create_private_dir(&d).expect("mkdir");
        assert_eq!((mode(&dir.path().join("a")), mode(&d)), (0o700, 0o700));
        let f = d.join("f");
        open_private(OpenOptions::new().write(true).create(true), &f).expect("create");
        assert_eq!(mode(&f), 0o600);
        chmod(&f, 0o666);
        open_private(OpenOptions::new().write(true).create(true), &f).expect("reopen");
        assert_eq!(mode(&f), 0o600);
        chmod(&f, 0o640);
        make_private(&f).expect("tighten");
        assert_eq!(mode(&f), 0o600);
        make_private(&d.join("absent")).expect("absent is fine");
    }

    #[test]
    fn writable_by_group_or_others_is_named_with_its_mode() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("config.toml");
        std::fs::write(&f, "").expect("write");
        for ok in [0o600, 0o644, 0o640, 0o400, 0o755] {
            chmod(&f, ok);
            assert_eq!(writable_by_others(&f).expect("meta"), None, "{ok:o}");
        }
        for (bad, who) in [
            (0o666, "group and others"),
            (0o664, "its group"),
            (0o646, "others"),
            (0o620, "its group"),
        ] {
            chmod(&f, bad);
            let why = writable_by_others(&f).expect("meta").expect("refused");
            assert!(why.contains(&format!("(mode {bad:04o})")), "{why}");
            assert!(why.contains(who), "{why}");
            assert!(why.contains(f.to_str().expect("utf8")), "{why}");
        }
        chmod(dir.path(), 0o777);
        let why = writable_by_others(dir.path())
            .expect("meta")
            .expect("refused");
        assert!(why.contains("mode 0777"), "{why}");
        chmod(dir.path(), 0o700);
        assert_eq!(
            writable_by_others(&dir.path().join("absent")).expect("absent"),
            None
        );
    }
}
