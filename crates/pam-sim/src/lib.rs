//! pam-sim: loopback stand-ins for the servers that cannot run on a test machine — PVWA
//! (self-hosted, or Privilege Cloud with its CyberArk Identity token endpoint), Exchange (EWS),
//! Microsoft Entra ID and Graph, ServiceNow, BMC Remedy and CyberArk Remote Access.
//!
//! One HTTP(S) listener serves every stand-in under its real path prefix
//! (`/PasswordVault/…`, `/oauth2/platformtoken`, `/EWS/Exchange.asmx`, `/api/now/…`, `/api/jwt/…` + `/api/arsys/…`,
//! Remote Access under `/ra/…`), plus an admin API under `/sim/…` to seed state, inject faults and
//! read what happened. What the real servers do where public material is silent is listed in
//! `ASSUMPTIONS.md` beside this crate: that list is the one place such guesses live.
//!
//! Used in-process by tests ([`Sim::start`]) and as the `pam-sim` binary by the demo and the
//! benchmark.

pub mod admin;
pub mod clock;
pub mod ews;
pub mod faults;
pub mod graph;
pub mod host;
pub mod identity;
pub mod identity_roles;
pub mod pvwa;
pub mod remedy;
pub mod remote_access;
pub mod scenario;
pub mod send_limit;
pub mod server;
pub mod servicenow;
pub mod tls;
pub mod user_groups;

pub use scenario::Scenario;
pub use server::{Sim, SimOptions};
