//! Exchange Web Services (EWS) SOAP as pure functions, in the style of thunderbird/ews-rs: a
//! request builds bytes, a response parses bytes, no I/O. The transport and authentication live
//! in `approval-core::mailbox::ews`.
//!
//! - [`soap`]: the envelope, faults (`ErrorServerBusy` with `BackOffMilliseconds` in both its
//!   shapes), per-message `ResponseClass`.
//! - [`ops`]: one module per group of operations.
//! - [`xml`]: the writer and the hardened reader underneath.
//! - Validation against Microsoft's schema with `xmllint` is test support: `tests/support/schema.rs`.

pub mod ns;
pub mod ops;
pub mod soap;
pub mod types;
pub mod xml;

pub use soap::{RequestHeader, ResponseError, SoapError};
pub use types::{FolderId, FolderRef, ItemId, Mailbox, Page};
