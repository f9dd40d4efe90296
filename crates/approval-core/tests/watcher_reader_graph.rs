//! Issue 25 (reading) end to end on the Graph mailbox (Exchange Online): the same suite as
//! watcher_reader.rs (suites/watcher_reader.rs), on pam-sim's Graph stand-in.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/watcher_reader.rs");
