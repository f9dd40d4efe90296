//! The watcher end to end with its journal on a real PostgreSQL on Microsoft Graph (Exchange
//! Online): the suite is suites/watcher_postgres.rs, shared with watcher_postgres.rs (EWS).

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;
#[path = "support/postgres.rs"]
mod postgres;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/watcher_postgres.rs");
