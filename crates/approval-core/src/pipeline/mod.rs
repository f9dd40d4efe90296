//! One message end to end, and the watch loop.
//!
//! (The pipeline itself is built by the watcher issue; the process-level pieces live in
//! [`runtime`].)

pub mod runtime;

use serde::Deserialize;

/// `[watcher]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatcherConfig {}
