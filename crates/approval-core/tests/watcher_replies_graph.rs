//! Replies that tell nothing to the wrong people and cannot be abused (issue 26), end to end
//! on the Graph mailbox (Exchange Online): the same suite as watcher_replies.rs
//! (suites/watcher_replies.rs).

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/watcher_replies.rs");
