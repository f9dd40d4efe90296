//! Plumbing shared by the binaries: common flags, logging, one printer for stdout/stderr, the
//! error-to-exit-code edge, and human rendering of core results. No business logic here.

pub mod approve_cmd;
pub mod check_mailbox;
pub mod check_sender;
pub mod check_site;
pub mod cli;
pub mod common;
pub mod explain;
pub mod logging;
pub mod printer;
pub mod remote_access_cmd;
pub mod render;
pub mod status;
pub mod validate_ticket;
pub mod watch;
pub mod watch_once;

pub use common::{Common, run};
pub use printer::Printer;
