//! What the listener shares with every stand-in: the clock, the fault table and the base URL
//! clients use. The stand-ins see this and their own state ([`Hosted`]), never the listener, so
//! that `server` (which routes to them) sits above them and no import runs in a circle.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use crate::clock::Clock;
use crate::faults::FaultTable;

/// The shared parts.
#[derive(Debug, Default)]
pub struct Host {
    pub clock: Clock,
    pub faults: FaultTable,
    /// The base URL clients use (filled in once the port is known).
    pub base_url: OnceLock<String>,
}

/// A stand-in's state beside the host's shared parts; reads through to the stand-in's own.
pub struct Hosted<T> {
    pub host: Arc<Host>,
    pub sim: T,
}

impl<T> Deref for Hosted<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.sim
    }
}
