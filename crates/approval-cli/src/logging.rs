//! Logging: env_logger to stderr or to a file that can be reopened (logrotate's `create` mode
//! sends SIGHUP; the watcher calls [`reopen`]). `-v`/`-q` set the level, `RUST_LOG` refines it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};

/// A log file that reopens its path on demand, appending (O_APPEND).
#[derive(Clone)]
struct Reopenable {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl Reopenable {
    fn open(path: &Path) -> Result<Self> {
        let f = open_append(path)?;
        Ok(Reopenable {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(f)),
        })
    }
}

fn open_append(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))
}

impl Write for Reopenable {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

static SINK: OnceLock<Reopenable> = OnceLock::new();

/// Reopen the log file (after rotation). No-op when logging to stderr.
pub fn reopen() -> Result<()> {
    if let Some(s) = SINK.get() {
        let f = open_append(&s.path)?;
        *s.file.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }
    Ok(())
}

/// The level for `-v`/`-q` counts.
pub fn level(verbose: u8, quiet: u8) -> log::LevelFilter {
    match (verbose, quiet) {
        (_, 2..) => log::LevelFilter::Off,
        (_, 1) => log::LevelFilter::Error,
        (0, 0) => log::LevelFilter::Warn,
        (1, 0) => log::LevelFilter::Info,
        (2, 0) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// The crates whose log lines `-v`, `-vv` and `-vvv` open: this workspace's own. Every other
/// crate (HTTP, TLS, cookies, LDAP, SQLite, ...) stays at `warn` whatever the verbosity: their
/// debug and trace output prints headers and cookies (PVWA's session cookie among them). An
/// operator who needs them asks explicitly through `RUST_LOG`.
pub const OWN_CRATES: &[&str] = &[
    // The audit trail (one line per mail) is logged under its own target.
    "audit",
    "approval_core",
    "approval_cli",
    "ews_soap",
    "check_approval_request",
    "first_level_approve",
    "second_level_approve",
    "get_inco_req",
    "validate_ticket",
    "remote_access",
];

/// Initialise logging once per process: `verbose` and `quiet` are the counts of `-v` and `-q`,
/// `log_file` is `--log-file`.
pub fn init(verbose: u8, quiet: u8, log_file: Option<&std::path::Path>) -> Result<()> {
    let mut b = env_logger::Builder::new();
    let own = level(verbose, quiet);
    b.filter_level(own.min(log::LevelFilter::Warn));
    for krate in OWN_CRATES {
        b.filter_module(krate, own);
    }
    if let Some(spec) = approval_core::env::var(approval_core::env::RUST_LOG) {
        b.parse_filters(&spec);
    }
    b.format_timestamp_millis();
    let file = log_file.map(PathBuf::from).or_else(|| {
        approval_core::env::var(approval_core::env::APPROVAL_LOG_FILE).map(PathBuf::from)
    });
    if let Some(path) = file {
        let sink = Reopenable::open(&path)?;
        let _ = SINK.set(sink.clone());
        b.target(env_logger::Target::Pipe(Box::new(sink)));
    }
    let _ = b.try_init();
    Ok(())
}
