//! Two watcher hosts on one PostgreSQL journal and one mailbox (issue 33): one acts, the other
//! stands by; a SIGKILLed active host is replaced, and a paused one (SIGSTOP) resumed after the
//! takeover sends nothing. The real binary, pam-sim (PVWA and Microsoft Graph), a real slapd and a
//! real PostgreSQL.

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;
#[path = "../../approval-core/tests/support/postgres.rs"]
mod postgres;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/watch_two_hosts.rs");
