//! `Pipeline::process` end to end with PVWA on Privilege Cloud: the same suite as
//! watcher_pipeline.rs (suites/watcher_pipeline.rs), the mailbox on EWS, every PVWA call
//! signed with a CyberArk Identity platform token (`auth_method = "identity"`) against
//! pam-sim's Identity tenant and Privilege Cloud PVWA.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::PrivilegeCloud;

include!("suites/watcher_pipeline.rs");
