//! One module per group of operations: each request is a struct with `to_xml()` (the operation
//! element, `m:`/`t:` prefixed, to be wrapped by [`crate::soap::envelope`]) and each response a
//! `parse` over the parsed body element.

pub mod folders;
pub mod items;
pub mod notifications;
pub mod rights;
pub mod sync;
