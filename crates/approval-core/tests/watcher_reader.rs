//! Issue 25 (reading) end to end on the EWS mailbox (Exchange Server): the suite is
//! suites/watcher_reader.rs, shared with watcher_reader_graph.rs (Exchange Online).

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/watcher_reader.rs");
