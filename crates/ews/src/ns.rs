//! The namespaces of EWS SOAP and the prefixes this crate writes.

pub const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
pub const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
pub const ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// Short name of a namespace for messages (`s`, `m`, `t`, `e`; the URI itself otherwise).
pub fn prefix_of(uri: &str) -> &str {
    match uri {
        SOAP => "s",
        MESSAGES => "m",
        TYPES => "t",
        ERRORS => "e",
        other => other,
    }
}
