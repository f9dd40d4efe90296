//! Logging: env_logger to stderr or to a file that can be reopened (logrotate's `create` mode
//! sends SIGHUP; the watcher calls [`reopen`]). `-v`/`-q` set the level, `RUST_LOG` refines it;
//! whatever the filter, other crates' lines that print raw headers are dropped and their other
//! lines redacted after a word that may carry a secret (cookie, authorization, token, ...).

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

/// The level for `-v`/`-q` counts over the base level (`[log] level`, `warn` when unset): each
/// `-v` raises it one step, `-q` lowers it to errors only, `-qq` to nothing.
pub fn level(verbose: u8, quiet: u8) -> log::LevelFilter {
    level_from(log::LevelFilter::Warn, verbose, quiet)
}

fn level_from(base: log::LevelFilter, verbose: u8, quiet: u8) -> log::LevelFilter {
    const STEPS: [log::LevelFilter; 6] = [
        log::LevelFilter::Off,
        log::LevelFilter::Error,
        log::LevelFilter::Warn,
        log::LevelFilter::Info,
        log::LevelFilter::Debug,
        log::LevelFilter::Trace,
    ];
    match quiet {
        2.. => log::LevelFilter::Off,
        1 => log::LevelFilter::Error.min(base),
        0 => {
            let i = STEPS.iter().position(|l| *l == base).unwrap_or(2);
            STEPS[(i + verbose as usize).min(STEPS.len() - 1)]
        }
    }
}

/// `[log] level` as a filter; an unknown word is refused (a key that is accepted and ignored is
/// a defect).
pub fn parse_level(word: &str) -> Result<log::LevelFilter> {
    match word.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(log::LevelFilter::Off),
        "error" => Ok(log::LevelFilter::Error),
        "warn" | "warning" => Ok(log::LevelFilter::Warn),
        "info" => Ok(log::LevelFilter::Info),
        "debug" => Ok(log::LevelFilter::Debug),
        "trace" => Ok(log::LevelFilter::Trace),
        other => anyhow::bail!(
            "configuration key `log.level`: unknown level {other:?} (one of off, error, warn, info, debug, trace)"
        ),
    }
}

/// The audit target (one JSON line per mail): at `info` whatever the base level, so it is
/// written by default; only `-qq` silences it.
pub const AUDIT_TARGET: &str = "audit";

/// The crates whose log lines `-v`, `-vv` and `-vvv` open: this workspace's own. Every other
/// crate (HTTP, TLS, cookies, LDAP, SQLite, ...) stays at `warn` whatever the verbosity: their
/// debug and trace output prints headers and cookies (PVWA's session cookie among them). An
/// operator who needs them asks explicitly through `RUST_LOG`; even then the lines that print raw
/// headers stay dropped and the rest are redacted ([`RAW_TARGETS`], [`redact`]).
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
/// `log_file` is `--log-file`, `config` the `[log]` section. The file is `--log-file`, else
/// `$APPROVAL_LOG_FILE`, else `[log] file`, else stderr (journald under systemd).
pub fn init(
    verbose: u8,
    quiet: u8,
    log_file: Option<&std::path::Path>,
    config: &approval_core::config::LogConfig,
) -> Result<()> {
    let base = match &config.level {
        Some(w) => parse_level(w)?,
        None => log::LevelFilter::Warn,
    };
    let mut b = env_logger::Builder::new();
    let own = level_from(base, verbose, quiet);
    b.filter_level(own.min(log::LevelFilter::Warn));
    for krate in OWN_CRATES {
        b.filter_module(krate, own);
    }
    let audit = if quiet >= 2 {
        log::LevelFilter::Off
    } else {
        own.max(log::LevelFilter::Info)
    };
    b.filter_module(AUDIT_TARGET, audit);
    if let Some(spec) = approval_core::env::var(approval_core::env::RUST_LOG) {
        b.parse_filters(&spec);
    }
    b.format_timestamp_millis();
    let file = log_file
        .map(PathBuf::from)
        .or_else(|| {
            approval_core::env::var(approval_core::env::APPROVAL_LOG_FILE).map(PathBuf::from)
        })
        .or_else(|| config.file.clone());
    if let Some(path) = file {
        let sink = Reopenable::open(&path)?;
        let _ = SINK.set(sink.clone());
        b.target(env_logger::Target::Pipe(Box::new(sink)));
    }
    let inner = b.build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Redacting { inner })).is_ok() {
        log::set_max_level(max);
    }
    Ok(())
}

/// The crates' log targets that print raw HTTP headers, cookies or wire bytes at `debug` and
/// `trace` (`cookie_store` prints each `Set-Cookie` it stores, reqwest's verbose connection
/// and h2's HPACK print the bytes and header values sent). Their `debug` and `trace` lines are
/// dropped whatever `RUST_LOG` says; their `info` and above still pass.
pub const RAW_TARGETS: &[&str] = &[
    "cookie_store",
    "reqwest::connect::verbose",
    "h2::hpack",
    "h2::codec",
    "h2::frame",
    "hyper::proto",
    "hyper_util::client::legacy::connect::http::verbose",
];

/// Words after which a third-party line may carry a secret: the rest of that line is redacted.
const SECRET_WORDS: &[&str] = &[
    "cookie",
    "authorization",
    "bearer",
    "token",
    "password",
    "secret",
    "cyberarklogonresult",
];

/// Whether `target` is `module` or inside it.
fn is_within(target: &str, module: &str) -> bool {
    target
        .strip_prefix(module)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// A third-party log line with everything after a word of [`SECRET_WORDS`] replaced, line by
/// line; `None` when there is nothing to hide.
pub fn redact(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    if !SECRET_WORDS.iter().any(|w| lower.contains(w)) {
        return None;
    }
    let mut out = String::with_capacity(message.len());
    let mut start = 0;
    for line in message.split_inclusive('\n') {
        let low = &lower[start..start + line.len()];
        start += line.len();
        let cut = SECRET_WORDS
            .iter()
            .filter_map(|w| low.find(w).map(|i| i + w.len()))
            .min();
        match cut {
            Some(i) => {
                out.push_str(&line[..i]);
                out.push_str(" [redacted]");
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    Some(out)
}

/// env_logger behind a guard: the `debug`/`trace` lines of [`RAW_TARGETS`] are dropped, and the
/// lines of every crate outside this workspace ([`OWN_CRATES`]) are redacted after a word that
/// may carry a secret (cookie, authorization, token, password, ...), at every filter, `-v` or
/// `RUST_LOG`. This workspace's own lines never hold a secret (tests check it) and pass as they are.
struct Redacting {
    inner: env_logger::Logger,
}

impl Redacting {
    fn dropped(meta: &log::Metadata<'_>) -> bool {
        meta.level() > log::Level::Info && RAW_TARGETS.iter().any(|t| is_within(meta.target(), t))
    }
}

impl log::Log for Redacting {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        !Self::dropped(meta) && self.inner.enabled(meta)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if OWN_CRATES.iter().any(|k| is_within(record.target(), k)) {
            return self.inner.log(record);
        }
        let message = record.args().to_string();
        match redact(&message) {
            None => self.inner.log(record),
            Some(clean) => self.inner.log(
                &log::Record::builder()
                    .args(format_args!("{clean}"))
                    .metadata(record.metadata().clone())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            ),
        }
    }

    fn flush(&self) {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_level_is_the_base_that_v_and_q_move() {
        use log::LevelFilter::*;
        assert_eq!(level(0, 0), Warn);
        assert_eq!(level_from(Info, 0, 0), Info);
        assert_eq!(level_from(Info, 1, 0), Debug);
        assert_eq!(level_from(Error, 2, 0), Info);
        assert_eq!(level_from(Debug, 9, 0), Trace);
        assert_eq!(level_from(Debug, 0, 1), Error);
        assert_eq!(level_from(Off, 0, 1), Off);
        assert_eq!(level_from(Trace, 0, 2), Off);
        assert_eq!(parse_level(" INFO ").unwrap(), Info);
        assert!(parse_level("verbose").is_err());
    }

    #[test]
    fn third_party_lines_lose_what_follows_a_secret_word() {
        assert_eq!(redact("starting new connection"), None);
        assert_eq!(
            redact("inserting Set-Cookie 'Cookie { cookie_string: Some(\"LB=abc\") }'\nnext")
                .as_deref(),
            Some("inserting Set-Cookie [redacted]\nnext")
        );
        assert_eq!(
            redact("headers: {\"authorization\": \"c2VjcmV0\"}").as_deref(),
            Some("headers: {\"authorization [redacted]")
        );
        assert_eq!(
            redact("body {\"CyberArkLogonResult\":\"abc\"}").as_deref(),
            Some("body {\"CyberArkLogonResult [redacted]")
        );
    }

    #[test]
    fn raw_header_targets_are_dropped_below_info_only() {
        let meta = |target: &'static str, level| {
            log::Metadata::builder().target(target).level(level).build()
        };
        assert!(Redacting::dropped(&meta(
            "cookie_store::cookie_store",
            log::Level::Debug
        )));
        assert!(Redacting::dropped(&meta(
            "reqwest::connect::verbose",
            log::Level::Trace
        )));
        assert!(!Redacting::dropped(&meta("cookie_store", log::Level::Warn)));
        assert!(!Redacting::dropped(&meta(
            "reqwest::connect",
            log::Level::Debug
        )));
        assert!(!Redacting::dropped(&meta(
            "cookie_storex",
            log::Level::Debug
        )));
    }
}
