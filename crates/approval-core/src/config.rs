//! The loading machinery of the configuration: finding and reading the TOML file, applying the
//! environment overrides key by key, the defaults shared by the sections, and the error that
//! names file, key and variable. Bottom layer: it knows no section. Each module owns its
//! section's type and checks; the aggregate [`crate::settings::Config`] puts them together.
//!
//! Precedence: command-line flag > environment override > file > default. The file is
//! `--config PATH`, else `$APPROVAL_CONFIG`, else `$XDG_CONFIG_HOME/pam-approval/config.toml`
//! (`~/.config/...`) when it exists, else the installed [`SYSTEM_PATH`] when it exists; with none
//! found, the errors name every path tried. Unknown keys are refused; every error names the file and
//! the key, and the environment variable when the value came from one.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::env;
use crate::exit::{Classify, Exit};

/// Directory name under the XDG base directories.
pub const APP_DIR: &str = "pam-approval";

/// The configuration the package installs, read when no other file is named or found.
pub const SYSTEM_PATH: &str = "/etc/pam-approval/config.toml";

/// Where error hints send people for every key: the pristine annotated example the package
/// installs, and its place in the source tree.
pub const EXAMPLE_HINT: &str = "/usr/share/doc/pam-approval/examples/config.toml (installed) or \
     examples/config.toml (source tree), and config.d/ beside it";

/// `[log]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Log file; stderr when absent (journald under systemd). `--log-file` and
    /// `$APPROVAL_LOG_FILE` win over it. Reopened on SIGHUP by the watcher.
    pub file: Option<PathBuf>,
    /// Base level: error, warn, info, debug, trace (raised by -v, lowered by -q). The audit
    /// lines (one per mail) go out at every level but `-qq`.
    pub level: Option<String>,
}

/// The `[log]` section alone, read before anything else (logging starts before the rest of the
/// configuration is checked): other sections are ignored here, their errors come at the full load.
#[derive(Debug, Default, Deserialize)]
struct LogOnly {
    #[serde(default)]
    log: LogConfig,
}

/// Read `[log]` from the configuration the tool will use (same file, same overrides). The defaults
/// when the file cannot be read or parsed (the full load reports that with its own error); an
/// error only for a bad key inside `[log]`.
pub fn peek_log(explicit: Option<&Path>) -> Result<LogConfig, ConfigError> {
    let overrides = env::config_overrides();
    let Ok(source) = read_source(explicit) else {
        return Ok(LogConfig::default());
    };
    match load_from_parts::<LogOnly>(source.text.as_deref(), source.file, &overrides) {
        Ok((l, _)) => Ok(l.log),
        Err(e) if e.key.as_deref().is_some_and(|k| k.starts_with("log")) => Err(e),
        Err(_) => Ok(LogConfig::default()),
    }
}

/// Defaults shared by every section that talks to a server.
pub mod defaults {
    pub fn connect_timeout() -> u64 {
        10
    }
    pub fn request_timeout() -> u64 {
        30
    }
    pub fn retries() -> u32 {
        3
    }
    pub fn backoff_ms() -> u64 {
        500
    }
    pub fn yes() -> bool {
        true
    }
}

/// A configuration error: names the file, the key and the environment variable involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub key: Option<String>,
    pub env_var: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            key: None,
            env_var: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("configuration")?;
        if let Some(file) = &self.file {
            write!(f, " file {}", file.display())?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        if let Some(var) = &self.env_var {
            write!(f, " (set by environment variable {var})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Classify for ConfigError {
    fn exit(&self) -> Exit {
        Exit::Config
    }
    fn hint(&self) -> Option<String> {
        Some(format!("every key and its meaning: {EXAMPLE_HINT}"))
    }
}

/// Where a loaded configuration came from: the file, and the keys the environment set. Every
/// section's check takes it to name the file, the key and the variable in its errors.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Config paths (dotted) that were set from the environment, with the variable name.
    pub from_env: Vec<(String, String)>,
    /// The default paths looked at in vain when no file was named and none was found: every
    /// error then says so (a missing section is most often a missing file).
    pub tried: Vec<PathBuf>,
}

impl Origin {
    /// An error about a key, naming the file and the env var that set it (if any).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let mut message = message.into();
        if self.file.is_none() && !self.tried.is_empty() {
            message = format!(
                "no configuration file found (tried {}; --config PATH or $APPROVAL_CONFIG name \
                 another), and {message}",
                display_paths(&self.tried)
            );
        }
        ConfigError {
            file: self.file.clone(),
            key: Some(key.to_string()),
            env_var: self
                .from_env
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
            message,
        }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the config file is looked for when no path is given.
pub fn default_path() -> Option<PathBuf> {
    let base = env::var(env::XDG_CONFIG_HOME)
        .map(PathBuf::from)
        .or_else(|| env::var(env::HOME).map(|h| Path::new(&h).join(".config")))?;
    Some(base.join(APP_DIR).join("config.toml"))
}

/// The default state directory (journal, locks, sync state).
pub fn default_state_dir() -> Option<PathBuf> {
    let base = env::var(env::XDG_STATE_HOME)
        .map(PathBuf::from)
        .or_else(|| env::var(env::HOME).map(|h| Path::new(&h).join(".local").join("state")))?;
    Some(base.join(APP_DIR))
}

/// The configuration text found, the file it came from, and the default paths tried in vain.
#[derive(Debug, Default)]
pub struct Source {
    pub text: Option<String>,
    pub file: Option<PathBuf>,
    pub tried: Vec<PathBuf>,
}

/// Find and read the configuration file: `explicit` is `--config`, else `$APPROVAL_CONFIG`,
/// else the first of the user's default path and [`SYSTEM_PATH`] that exists. No file is not an
/// error here (the environment may set everything); `tried` then lists the paths looked at.
pub fn read_source(explicit: Option<&Path>) -> Result<Source, ConfigError> {
    let named = explicit
        .map(Path::to_path_buf)
        .or_else(|| env::var(env::APPROVAL_CONFIG).map(PathBuf::from));
    let defaults: Vec<PathBuf> = default_path()
        .into_iter()
        .chain(std::iter::once(PathBuf::from(SYSTEM_PATH)))
        .collect();
    read_source_from(named, &defaults)
}

/// [`read_source`] over given paths: `named` must exist; the first of `defaults` that exists is
/// read (one that exists but cannot be read is an error, not skipped: it is the file meant).
pub fn read_source_from(
    named: Option<PathBuf>,
    defaults: &[PathBuf],
) -> Result<Source, ConfigError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| {
            (
                e.kind(),
                ConfigError {
                    file: Some(path.to_path_buf()),
                    key: None,
                    env_var: None,
                    message: format!("cannot read it: {e}"),
                },
            )
        })
    };
    if let Some(path) = named {
        let text = read(&path).map_err(|(_, e)| e)?;
        return Ok(Source {
            text: Some(text),
            file: Some(path),
            tried: Vec::new(),
        });
    }
    let mut tried = Vec::new();
    for path in defaults {
        match read(path) {
            Ok(text) => {
                return Ok(Source {
                    text: Some(text),
                    file: Some(path.clone()),
                    tried: Vec::new(),
                });
            }
            Err((std::io::ErrorKind::NotFound, _)) => tried.push(path.clone()),
            Err((_, e)) => return Err(e),
        }
    }
    Ok(Source {
        text: None,
        file: None,
        tried,
    })
}

/// Parse a configuration of type `T` from text plus overrides (variable, path, raw value).
/// Pure: the aggregate configuration and tests call it.
pub fn load_from_parts<T: DeserializeOwned>(
    text: Option<&str>,
    file: Option<PathBuf>,
    overrides: &[(String, Vec<String>, String)],
) -> Result<(T, Origin), ConfigError> {
    let mut table: toml::Table = match text {
        Some(t) => toml::from_str(t).map_err(|e| ConfigError {
            file: file.clone(),
            key: None,
            env_var: None,
            message: format!("not valid TOML: {}", e.to_string().trim_end()),
        })?,
        None => toml::Table::new(),
    };
    let mut from_env = Vec::new();
    for (var, path, raw) in overrides {
        let dotted = path.join(".");
        set_path(&mut table, path, parse_env_value(raw)).map_err(|m| ConfigError {
            file: file.clone(),
            key: Some(dotted.clone()),
            env_var: Some(var.clone()),
            message: m,
        })?;
        from_env.push((dotted, var.clone()));
    }
    // A value from the environment that looks like a number or boolean may be meant as a
    // string (a user name "1234"): on a type error at such a key, retry it as a string.
    let mut value = toml::Value::Table(table);
    for _ in 0..=from_env.len() {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(config) => {
                return Ok((
                    config,
                    Origin {
                        file,
                        from_env,
                        tried: Vec::new(),
                    },
                ));
            }
            Err(e) => {
                let key = e.path().to_string();
                let var = from_env
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone());
                if var.is_some() && stringify_at(&mut value, &key) {
                    continue;
                }
                let message = e.into_inner().to_string();
                let message = message.lines().next().unwrap_or("").trim().to_string();
                return Err(ConfigError {
                    file,
                    key: Some(key).filter(|k| k != "."),
                    env_var: var,
                    message,
                });
            }
        }
    }
    Err(ConfigError::new("could not resolve environment overrides"))
}

fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) if t.len() == 1 => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        _ => toml::Value::String(raw.to_string()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = table;
    for seg in parents {
        let entry = cur
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{seg}` is not a table, so it cannot hold `{last}`"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

/// Turn the non-string value at a dotted path into its string form; false when nothing changed.
fn stringify_at(value: &mut toml::Value, dotted: &str) -> bool {
    let mut cur = value;
    for seg in dotted.split('.') {
        match cur.get_mut(seg) {
            Some(v) => cur = v,
            None => return false,
        }
    }
    if cur.is_str() {
        return false;
    }
    let s = match cur {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => return false,
    };
    *cur = toml::Value::String(s);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_default_path_that_exists_is_read_and_the_others_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("user.toml");
        let system = dir.path().join("system.toml");
        let both = [user.clone(), system.clone()];
        // None exists: no file, and both paths tried, named in every error.
        let s = read_source_from(None, &both).expect("no file is not an error here");
        assert!(s.text.is_none() && s.file.is_none());
        assert_eq!(s.tried, both);
        let origin = Origin {
            tried: s.tried,
            ..Origin::default()
        };
        let e = origin.error("pvwa.url", "the [pvwa] section is missing");
        assert!(
            e.message.starts_with(&format!(
                "no configuration file found (tried {}, {};",
                user.display(),
                system.display()
            )),
            "{e}"
        );
        assert!(e.message.ends_with("the [pvwa] section is missing"), "{e}");
        // The system file alone: read.
        std::fs::write(&system, "[log]\n").expect("write");
        let s = read_source_from(None, &both).expect("reads");
        assert_eq!(s.file.as_deref(), Some(system.as_path()));
        assert!(s.tried.is_empty());
        // The user's file wins over it.
        std::fs::write(&user, "").expect("write");
        let s = read_source_from(None, &both).expect("reads");
        assert_eq!(s.file.as_deref(), Some(user.as_path()));
        // A named file must exist; the defaults are then not looked at.
        let missing = dir.path().join("missing.toml");
        let e = read_source_from(Some(missing.clone()), &both).expect_err("missing");
        assert_eq!(e.file.as_deref(), Some(missing.as_path()));
    }
}
