//! One message end to end ([`watcher::Pipeline::process`]), one pass over the mailbox
//! ([`watcher::Pipeline::run_once`]), and the process-level pieces ([`runtime`]).
//!
//! The mail folders (`Processed`, `Refused`) are `[mailbox] processed_folder` and
//! `refused_folder`: one place for them, where the rest of the mailbox is configured.

pub mod runtime;
pub mod watch_loop;
pub mod watcher;

use std::path::PathBuf;

use serde::Deserialize;

pub use watch_loop::{WatchSummary, watch};
pub use watcher::{Pipeline, Processed};

/// `[watcher]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatcherConfig {
    /// State directory (journal, lock, pid file); default `$XDG_STATE_HOME/pam-approval`.
    pub state_dir: Option<PathBuf>,
    /// The journal (SQLite); default `STATE_DIR/journal.sqlite`.
    pub journal: Option<PathBuf>,
    /// Passes a mail may fail on transient faults before it is refused (`gave_up`).
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// Mails handled at once by the watch loop (1..=64).
    #[serde(default = "defaults::concurrency")]
    pub concurrency: usize,
    /// The watch loop's longest wait for new mail, in seconds: with `[mailbox] streaming =
    /// false` the poll interval; when streaming, how often the folder is listed anyway (mails
    /// left pending by a fault are retried then).
    #[serde(default = "defaults::poll_secs")]
    pub poll_secs: u64,
    /// The reason sent to PVWA with a confirm: `{forwarder}` and `{marker}` (required: it is how
    /// a confirm is recognised after a crash) are replaced.
    #[serde(default = "defaults::reason_template")]
    pub reason_template: String,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            state_dir: None,
            journal: None,
            max_attempts: defaults::max_attempts(),
            concurrency: defaults::concurrency(),
            poll_secs: defaults::poll_secs(),
            reason_template: defaults::reason_template(),
        }
    }
}

mod defaults {
    pub fn max_attempts() -> u32 {
        5
    }
    pub fn concurrency() -> usize {
        8
    }
    pub fn poll_secs() -> u64 {
        15
    }
    pub fn reason_template() -> String {
        "Approved on behalf of {forwarder} by mail [ref {marker}]".into()
    }
}

impl WatcherConfig {
    /// Check the values; errors name the key.
    pub fn validate(
        &self,
        loaded: &crate::config::Loaded,
    ) -> Result<(), crate::config::ConfigError> {
        if self.max_attempts == 0 || self.max_attempts > 1000 {
            return Err(loaded.error("watcher.max_attempts", "must be between 1 and 1000"));
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            return Err(loaded.error("watcher.concurrency", "must be between 1 and 64"));
        }
        if self.poll_secs == 0 {
            return Err(loaded.error("watcher.poll_secs", "must be at least 1"));
        }
        let t = &self.reason_template;
        if !t.contains("{marker}") {
            return Err(loaded.error(
                "watcher.reason_template",
                "must contain {marker}: it is how a confirm is recognised after a crash",
            ));
        }
        if t.chars().any(char::is_control) || t.chars().count() > 500 {
            return Err(loaded.error(
                "watcher.reason_template",
                "must be one line of at most 500 characters",
            ));
        }
        Ok(())
    }

    /// The state directory, or an error naming the key to set.
    pub fn state_dir(
        &self,
        loaded: &crate::config::Loaded,
    ) -> Result<PathBuf, crate::config::ConfigError> {
        self.state_dir
            .clone()
            .or_else(crate::config::default_state_dir)
            .ok_or_else(|| {
                loaded.error(
                    "watcher.state_dir",
                    "no state directory: set watcher.state_dir (HOME and XDG_STATE_HOME are unset)",
                )
            })
    }

    /// The journal path.
    pub fn journal_path(
        &self,
        loaded: &crate::config::Loaded,
    ) -> Result<PathBuf, crate::config::ConfigError> {
        match &self.journal {
            Some(p) => Ok(p.clone()),
            None => Ok(self.state_dir(loaded)?.join("journal.sqlite")),
        }
    }
}
