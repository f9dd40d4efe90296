//! Exactly once across crashes: a burst of 200 forwarded mails arrives while
//! `check-approval-request` runs as a service, and the watcher is killed with SIGKILL at random
//! points and started again, several times; every tenth mail rejects by mail. At the end every
//! mail is confirmed, rejected or refused exactly once (pam-sim's action log), answered exactly
//! once (the mail pam-sim sent) and filed (the mailbox folders). pam-sim + a real slapd; the seed is printed and can be replayed with
//! `PAMTEST_SEED`.

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/watch_kill_burst.rs");
