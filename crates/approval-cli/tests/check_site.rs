//! `check-approval-request --check-site` against pam-sim with a self-hosted PVWA (the suite:
//! tests/suites/check_site.rs).

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;

const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/check_site.rs");
