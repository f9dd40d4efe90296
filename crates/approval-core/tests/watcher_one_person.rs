//! One person, one confirmation, in any order (issue 26), end to end on the EWS mailbox (Exchange Server) and a self-hosted PVWA: the suite is
//! suites/watcher_one_person.rs, shared with the other watcher_one_person*.rs files.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/watcher_one_person.rs");
