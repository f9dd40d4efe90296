//! `[watcher]`: the journal, the state directory, the loop's pace and retries, and the reason
//! sent with each confirmation. Plain settings and their checks: this file imports only the
//! loading machinery, so that the aggregate configuration can name it without the pipeline.

use std::path::PathBuf;

use serde::Deserialize;

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
    /// false` the poll interval; when streaming, how often the folder is listed at least (mails
    /// left pending by a fault are retried on their own schedule, `retry_first_secs`).
    #[serde(default = "defaults::poll_secs")]
    pub poll_secs: u64,
    /// Seconds before a mail left pending by a fault is tried again the first time; the wait
    /// doubles after each failed try up to `retry_max_secs`.
    #[serde(default = "defaults::retry_first_secs")]
    pub retry_first_secs: u64,
    /// The longest wait between two tries of a pending mail, in seconds.
    #[serde(default = "defaults::retry_max_secs")]
    pub retry_max_secs: u64,
    /// The reason sent to PVWA with a confirm: `{forwarder}` (required: it traces a confirmation
    /// through a service account to its person) and `{marker}` (required: it is how a confirm is
    /// recognised after a crash) are replaced.
    #[serde(default = "defaults::reason_template")]
    pub reason_template: String,
    /// Whether a mail approver's own PVWA rights on the safe are read before confirming a
    /// request that still needs confirmations after this one (`check`, the default), or the
    /// deployment asserts that mail approvers hold none (`none-held`): docs/watcher.md, "one
    /// person counts once".
    #[serde(default)]
    pub portal_rights: PortalRightsCheck,
}

/// `[watcher] portal_rights`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortalRightsCheck {
    /// Read the safe's members with the lookup account; refuse by mail when the forwarder holds
    /// a right for a confirmation the request still needs (`use_the_portal`), and when the
    /// members cannot be read (`portal_rights_unknown`).
    #[default]
    Check,
    /// Not read: the deployment gives mail approvers no PVWA right on the safes served (only
    /// the service accounts hold one). Wrong if they do: one person could then confirm twice.
    NoneHeld,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            state_dir: None,
            journal: None,
            max_attempts: defaults::max_attempts(),
            concurrency: defaults::concurrency(),
            poll_secs: defaults::poll_secs(),
            retry_first_secs: defaults::retry_first_secs(),
            retry_max_secs: defaults::retry_max_secs(),
            reason_template: defaults::reason_template(),
            portal_rights: PortalRightsCheck::default(),
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
    pub fn retry_first_secs() -> u64 {
        60
    }
    pub fn retry_max_secs() -> u64 {
        900
    }
    pub fn reason_template() -> String {
        "Approved on behalf of {forwarder} by mail [ref {marker}]".into()
    }
}

/// The longest retry wait accepted (a day): beyond it a pending mail is as good as forgotten.
const MAX_RETRY_SECS: u64 = 86_400;

impl WatcherConfig {
    /// When a mail left pending by a fault after `attempts` failed tries is tried again:
    /// `retry_first_secs`, doubling after each further failure, at most `retry_max_secs`
    /// (with the defaults 1, 2, 4, 8, then every 15 minutes).
    pub fn retry_delay(&self, attempts: u32) -> std::time::Duration {
        // `validate` guarantees 1 <= first <= max; a config built in code may not have run it.
        let first = self.retry_first_secs.max(1);
        let max = self.retry_max_secs.max(first);
        let doublings = attempts.saturating_sub(1).min(63);
        std::time::Duration::from_secs(first.saturating_mul(1 << doublings).min(max))
    }

    /// Check the values; errors name the key.
    pub fn validate(
        &self,
        origin: &crate::config::Origin,
    ) -> Result<(), crate::config::ConfigError> {
        if self.max_attempts == 0 || self.max_attempts > 1000 {
            return Err(origin.error("watcher.max_attempts", "must be between 1 and 1000"));
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            return Err(origin.error("watcher.concurrency", "must be between 1 and 64"));
        }
        if self.poll_secs == 0 {
            return Err(origin.error("watcher.poll_secs", "must be at least 1"));
        }
        if self.retry_first_secs == 0 || self.retry_first_secs > MAX_RETRY_SECS {
            return Err(origin.error(
                "watcher.retry_first_secs",
                "must be between 1 and 86400 (a day)",
            ));
        }
        if self.retry_max_secs < self.retry_first_secs || self.retry_max_secs > MAX_RETRY_SECS {
            return Err(origin.error(
                "watcher.retry_max_secs",
                "must be at least watcher.retry_first_secs and at most 86400 (a day)",
            ));
        }
        let t = &self.reason_template;
        if !t.contains("{marker}") {
            return Err(origin.error(
                "watcher.reason_template",
                "must contain {marker}: it is how a confirm is recognised after a crash",
            ));
        }
        if !t.contains("{forwarder}") {
            return Err(origin.error(
                "watcher.reason_template",
                "must contain {forwarder}: it is how a confirmation given through a service \
                 account is traced to its person, so that one person cannot confirm twice",
            ));
        }
        if t.chars().any(char::is_control) || t.chars().count() > 500 {
            return Err(origin.error(
                "watcher.reason_template",
                "must be one line of at most 500 characters",
            ));
        }
        Ok(())
    }

    /// The state directory, or an error naming the key to set.
    pub fn state_dir(
        &self,
        origin: &crate::config::Origin,
    ) -> Result<PathBuf, crate::config::ConfigError> {
        self.state_dir
            .clone()
            .or_else(crate::config::default_state_dir)
            .ok_or_else(|| {
                origin.error(
                    "watcher.state_dir",
                    "no state directory: set watcher.state_dir (HOME and XDG_STATE_HOME are unset)",
                )
            })
    }

    /// The journal path.
    pub fn journal_path(
        &self,
        origin: &crate::config::Origin,
    ) -> Result<PathBuf, crate::config::ConfigError> {
        match &self.journal {
            Some(p) => Ok(p.clone()),
            None => Ok(self.state_dir(origin)?.join("journal.sqlite")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn watcher(extra: &str) -> (crate::settings::Loaded, WatcherConfig) {
        let loaded =
            crate::settings::load_from_parts(Some(&format!("[watcher]\n{extra}\n")), None, &[])
                .expect("parses");
        let w = loaded.config.watcher.clone();
        (loaded, w)
    }

    fn secs(w: &WatcherConfig, tries: std::ops::RangeInclusive<u32>) -> Vec<u64> {
        tries.map(|n| w.retry_delay(n).as_secs()).collect()
    }

    #[test]
    fn the_default_retry_schedule_is_1_2_4_8_then_every_15_minutes() {
        let (loaded, w) = watcher("");
        w.validate(&loaded).expect("defaults are valid");
        assert_eq!((w.retry_first_secs, w.retry_max_secs), (60, 900));
        assert_eq!(secs(&w, 1..=7), [60, 120, 240, 480, 900, 900, 900]);
        // Before any failed try (a mail that could not even be read): the first interval.
        assert_eq!(w.retry_delay(0), Duration::from_secs(60));
    }

    #[test]
    fn portal_rights_are_checked_unless_the_deployment_says_none_are_held() {
        assert_eq!(watcher("").1.portal_rights, PortalRightsCheck::Check);
        assert_eq!(
            watcher("portal_rights = \"none-held\"").1.portal_rights,
            PortalRightsCheck::NoneHeld
        );
        assert!(
            crate::settings::load_from_parts(
                Some("[watcher]\nportal_rights = \"off\"\n"),
                None,
                &[]
            )
            .is_err()
        );
    }

    #[test]
    fn the_retry_schedule_doubles_from_the_first_up_to_the_max() {
        let (loaded, w) = watcher("retry_first_secs = 3\nretry_max_secs = 20");
        w.validate(&loaded).expect("valid");
        assert_eq!(secs(&w, 1..=6), [3, 6, 12, 20, 20, 20]);
        // A maximum equal to the first: a fixed interval.
        let (loaded, w) = watcher("retry_first_secs = 1\nretry_max_secs = 1");
        w.validate(&loaded).expect("valid");
        assert_eq!(secs(&w, 1..=4), [1, 1, 1, 1]);
        // Many attempts never overflow the doubling.
        let (_, w) = watcher("retry_first_secs = 86400\nretry_max_secs = 86400");
        assert_eq!(w.retry_delay(u32::MAX), Duration::from_secs(86_400));
        assert_eq!(w.retry_delay(64), Duration::from_secs(86_400));
    }

    #[test]
    fn a_bad_retry_schedule_is_refused_naming_the_key() {
        for (extra, key) in [
            ("retry_first_secs = 0", "watcher.retry_first_secs"),
            ("retry_first_secs = 86401", "watcher.retry_first_secs"),
            (
                "retry_first_secs = 120\nretry_max_secs = 60",
                "watcher.retry_max_secs",
            ),
            // The default first (60) above a lower max.
            ("retry_max_secs = 30", "watcher.retry_max_secs"),
            ("retry_max_secs = 100000", "watcher.retry_max_secs"),
            // Without the person, a confirmation through a service account cannot be traced
            // to them, and they could confirm twice.
            (
                "reason_template = \"Approved by mail [ref {marker}]\"",
                "watcher.reason_template",
            ),
        ] {
            let (loaded, w) = watcher(extra);
            let e = w.validate(&loaded).expect_err(extra);
            assert_eq!(e.key.as_deref(), Some(key), "{extra}: {e}");
            assert!(e.to_string().contains(key), "{extra}: {e}");
        }
        // A negative number is not a u64: refused when the file is read, naming the key.
        let e =
            crate::settings::load_from_parts(Some("[watcher]\nretry_first_secs = -1\n"), None, &[])
                .expect_err("negative");
        assert!(e.to_string().contains("retry_first_secs"), "{e}");
    }

    #[test]
    fn the_retry_schedule_is_set_from_the_environment() {
        let loaded = crate::settings::load_from_parts(
            Some("[watcher]\n"),
            None,
            &[
                (
                    "APPROVAL__WATCHER__RETRY_FIRST_SECS".into(),
                    vec!["watcher".into(), "retry_first_secs".into()],
                    "5".into(),
                ),
                (
                    "APPROVAL__WATCHER__RETRY_MAX_SECS".into(),
                    vec!["watcher".into(), "retry_max_secs".into()],
                    "2".into(),
                ),
            ],
        )
        .expect("parses");
        let e = loaded
            .config
            .watcher
            .validate(&loaded)
            .expect_err("max below first");
        assert_eq!(
            e.env_var.as_deref(),
            Some("APPROVAL__WATCHER__RETRY_MAX_SECS")
        );
    }
}
