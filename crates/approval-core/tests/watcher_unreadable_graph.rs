//! A mail that cannot be fetched or read is refused after `watcher.max_attempts` and reported,
//! never retried forever (issue 29), end to end on the Graph mailbox (Exchange Online): the suite
//! suites/watcher_unreadable.rs.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/watcher_unreadable.rs");
