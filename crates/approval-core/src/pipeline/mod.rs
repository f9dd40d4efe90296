//! One message end to end ([`watcher::Pipeline::process`]), one pass over the mailbox
//! ([`watcher::Pipeline::run_once`]), the loop around them ([`watch_loop`]) and the watcher's
//! section of the configuration ([`config`]). Top layer: the pipeline puts every other layer
//! together (docs/architecture.md).
//!
//! The mail folders (`Processed`, `Refused`) are `[mailbox] processed_folder` and
//! `refused_folder`: one place for them, where the rest of the mailbox is configured.

pub mod config;
pub mod ha;
pub mod watch_loop;
pub mod watcher;

pub use config::WatcherConfig;
pub use watch_loop::{WatchSummary, watch};
pub use watcher::{Pipeline, Processed};
