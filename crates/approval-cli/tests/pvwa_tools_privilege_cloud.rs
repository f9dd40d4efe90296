//! The single-request tools end to end on Privilege Cloud: the same suite as pvwa_tools.rs
//! (suites/pvwa_tools.rs), every tool signing in with CyberArk Identity platform tokens
//! (`auth_method = "identity"`) at pam-sim's Identity tenant, against its Privilege Cloud PVWA
//! (Bearer only, no logon).

/// The PVWA pam-sim plays for this suite.
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::PrivilegeCloud;

include!("suites/pvwa_tools.rs");
