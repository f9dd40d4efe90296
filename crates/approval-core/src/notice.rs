//! Forwarded CyberArk notification mails: MIME, nested forwards, field extraction.
//!
//! Not built yet: see the open issue that owns this module.

use serde::Deserialize;

/// Configuration section (filled in by the issue that builds this module).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeConfig {}
