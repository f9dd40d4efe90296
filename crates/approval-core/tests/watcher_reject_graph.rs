//! Rejecting by mail (issue 32) end to end on the Graph mailbox (Exchange Online): the suite is
//! suites/watcher_reject.rs, shared by watcher_reject.rs and watcher_reject_graph.rs.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/watcher_reject.rs");
