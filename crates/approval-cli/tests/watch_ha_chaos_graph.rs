//! Two hosts, one approval (issue 33): three watcher processes on one mailbox, one PVWA and one
//! real PostgreSQL, under SIGKILL, SIGSTOP past the lease, `pg_terminate_backend` and a
//! PostgreSQL restart at random points of a 200-mail run; every request confirmed or rejected at
//! most once, every mail answered once and filed, every confirm in the shared audit trail
//! (Microsoft Graph, self-hosted PVWA). pam-sim + a real slapd + a real PostgreSQL; the seed is printed and can be
//! replayed with `PAMTEST_SEED`; `PAMTEST_HA_MAILS` shortens a local run.

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;
#[path = "../../approval-core/tests/support/postgres.rs"]
mod postgres;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/ha_hosts.rs");
include!("suites/watch_ha_chaos.rs");
