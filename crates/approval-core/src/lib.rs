//! approval-core: everything with logic in it, behind the thin binaries of `approval-cli`.
//!
//! Data flow of the watcher: mailbox -> journal -> notice -> sender -> pvwa -> policy ->
//! pvwa confirm -> notify -> mailbox file -> journal. Each step is a module below.

pub mod approve;
pub mod config;
pub mod directory;
pub mod env;
pub mod error;
pub mod exit;
pub mod http;
pub mod journal;
pub mod mailbox;
pub mod notice;
pub mod notify;
pub mod pipeline;
pub mod policy;
pub mod pvwa;
pub mod remote_access;
pub mod secret;
pub mod sender;
pub mod ticketing;
pub mod tls;
