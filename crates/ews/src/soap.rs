//! The SOAP envelope around every operation: request headers (server version, time zone,
//! impersonation), the response's `ServerVersionInfo`, SOAP faults, and the per-message
//! `ResponseClass` every EWS response carries.

use std::time::Duration;

use crate::ns::{self, MESSAGES as M, SOAP, TYPES as T};
use crate::xml::{self, Element, Writer, XmlError};

/// SOAP headers of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// `t:RequestServerVersion/@Version`, e.g. `Exchange2016`.
    pub version: String,
    /// Act as this mailbox (`t:ExchangeImpersonation`, app-only OAuth or impersonation rights).
    pub impersonate: Option<String>,
    /// Send `t:TimeZoneContext` UTC so that dates come back in UTC.
    pub utc: bool,
}

impl Default for RequestHeader {
    fn default() -> Self {
        RequestHeader {
            version: "Exchange2016".into(),
            impersonate: None,
            utc: true,
        }
    }
}

/// The whole request document around one operation element (written with `m:`/`t:` prefixes).
pub fn envelope(h: &RequestHeader, operation: &str) -> String {
    let mut w = Writer::new();
    w.raw(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    w.open(
        "s:Envelope",
        &[("xmlns:s", SOAP), ("xmlns:m", M), ("xmlns:t", T)],
    );
    w.open("s:Header", &[]);
    w.empty("t:RequestServerVersion", &[("Version", &h.version)]);
    if let Some(who) = &h.impersonate {
        w.open("t:ExchangeImpersonation", &[])
            .open("t:ConnectingSID", &[])
            .text_el("t:PrimarySmtpAddress", who)
            .close("t:ConnectingSID")
            .close("t:ExchangeImpersonation");
    }
    if h.utc {
        w.open("t:TimeZoneContext", &[])
            .empty("t:TimeZoneDefinition", &[("Id", "UTC")])
            .close("t:TimeZoneContext");
    }
    w.close("s:Header");
    w.open("s:Body", &[]).raw(operation).close("s:Body");
    w.close("s:Envelope");
    w.finish()
}

/// The server's version, from the response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
    pub build: u32,
    pub revision: u32,
    pub version: Option<String>,
}

/// A SOAP fault (HTTP 500): schema violations, throttling, bad version, access denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `faultcode` without its prefix (`ErrorServerBusy`, `Client`, …).
    pub fault_code: String,
    pub fault_string: String,
    /// `detail/e:ResponseCode`, when present.
    pub response_code: Option<String>,
    /// `BackOffMilliseconds` from `detail/t:MessageXml`, when present.
    pub back_off: Option<Duration>,
}

impl Fault {
    /// The EWS error code: the detail's ResponseCode, else the fault code.
    pub fn code(&self) -> &str {
        self.response_code.as_deref().unwrap_or(&self.fault_code)
    }
}

/// A response message with `ResponseClass="Error"` (or a Warning that is not `NoError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}{}", if text.is_empty() { String::new() } else { format!(": {text}") })]
pub struct ResponseError {
    pub code: String,
    pub text: String,
    pub back_off: Option<Duration>,
}

impl ResponseError {
    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }
}

/// What can go wrong reading a response document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("not a SOAP response: {0}")]
    NotSoap(String),
    #[error("SOAP fault {}: {}", .0.code(), .0.fault_string)]
    Fault(Box<Fault>),
    #[error("expected {expected}, found {found}")]
    Unexpected { expected: String, found: String },
    #[error("response lacks {0}")]
    Missing(String),
    #[error("response has {found} messages for {expected} requested")]
    Count { expected: usize, found: usize },
}

impl SoapError {
    /// The throttling back-off the server asked for, when this is `ErrorServerBusy`.
    pub fn back_off(&self) -> Option<Duration> {
        match self {
            SoapError::Fault(f) => f.back_off,
            _ => None,
        }
    }
}

/// A parsed response envelope: the operation's response element and the server version.
#[derive(Debug, Clone)]
pub struct Response {
    pub server_version: Option<ServerVersion>,
    pub body: Element,
}

/// Parse a response document. A SOAP fault becomes `Err(SoapError::Fault)`.
pub fn parse_response(bytes: &[u8]) -> Result<Response, SoapError> {
    let root = xml::parse(bytes)?;
    parse_envelope(root)
}

/// The same, on an already parsed document (the streaming reader parses first).
pub fn parse_envelope(root: Element) -> Result<Response, SoapError> {
    if !root.is(SOAP, "Envelope") {
        return Err(SoapError::NotSoap(format!(
            "the document is {}, not a SOAP 1.1 Envelope",
            root.qname()
        )));
    }
    let server_version = root
        .child(SOAP, "Header")
        .and_then(|h| h.child(T, "ServerVersionInfo"))
        .and_then(|v| {
            Some(ServerVersion {
                major: v.attr("MajorVersion")?.parse().ok()?,
                minor: v.attr("MinorVersion")?.parse().ok()?,
                build: v.attr("MajorBuildNumber")?.parse().ok()?,
                revision: v.attr("MinorBuildNumber")?.parse().ok()?,
                version: v.attr("Version").map(str::to_string),
            })
        });
    let mut root = root;
    let pos = root
        .children
        .iter()
        .position(|c| c.is(SOAP, "Body"))
        .ok_or_else(|| SoapError::NotSoap("the envelope has no Body".into()))?;
    let mut body_el = root.children.swap_remove(pos);
    if body_el.children.len() != 1 {
        return Err(SoapError::NotSoap(format!(
            "the Body holds {} elements instead of one",
            body_el.children.len()
        )));
    }
    let body = body_el.children.remove(0);
    if body.is(SOAP, "Fault") {
        return Err(SoapError::Fault(Box::new(parse_fault(&body))));
    }
    Ok(Response {
        server_version,
        body,
    })
}

fn parse_fault(f: &Element) -> Fault {
    // faultcode/faultstring/detail are unqualified in SOAP 1.1.
    let text = |n: &str| f.child("", n).map(|c| c.text.trim().to_string());
    let fault_code = text("faultcode").unwrap_or_default();
    let fault_code = fault_code
        .rsplit_once(':')
        .map(|(_, c)| c.to_string())
        .unwrap_or(fault_code);
    let detail = f.child("", "detail");
    let response_code = detail
        .and_then(|d| d.child(ns::ERRORS, "ResponseCode"))
        .map(|c| c.text.trim().to_string());
    let back_off = detail
        .and_then(|d| d.child(T, "MessageXml"))
        .and_then(back_off_of);
    Fault {
        fault_code,
        fault_string: text("faultstring").unwrap_or_default(),
        response_code,
        back_off,
    }
}

/// `<… MessageXml><t:Value Name="BackOffMilliseconds">N</t:Value></…>`
fn back_off_of(message_xml: &Element) -> Option<Duration> {
    message_xml
        .children_named(T, "Value")
        .find(|v| v.attr("Name") == Some("BackOffMilliseconds"))
        .and_then(|v| v.text.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// The response messages of `op` (e.g. `FindItem`): one per requested id, in request order.
/// Each is the message element on success, or its error.
pub fn messages<'a>(
    body: &'a Element,
    op: &str,
) -> Result<Vec<Result<&'a Element, ResponseError>>, SoapError> {
    let want = format!("{op}Response");
    if !body.is(M, &want) {
        return Err(SoapError::Unexpected {
            expected: format!("m:{want}"),
            found: body.qname(),
        });
    }
    let list = body
        .child(M, "ResponseMessages")
        .ok_or_else(|| SoapError::Missing(format!("m:{want}/m:ResponseMessages")))?;
    let msg_name = format!("{op}ResponseMessage");
    let mut out = Vec::new();
    for m in &list.children {
        if !m.is(M, &msg_name) {
            return Err(SoapError::Unexpected {
                expected: format!("m:{msg_name}"),
                found: m.qname(),
            });
        }
        out.push(message_result(m));
    }
    Ok(out)
}

/// Success (or a Warning with `NoError`) gives the element; anything else its error.
pub fn message_result(m: &Element) -> Result<&Element, ResponseError> {
    let class = m.attr("ResponseClass").unwrap_or("");
    let code = m
        .child_text(M, "ResponseCode")
        .map(str::trim)
        .unwrap_or("")
        .to_string();
    if class == "Success" || (class == "Warning" && (code == "NoError" || code.is_empty())) {
        return Ok(m);
    }
    Err(ResponseError {
        code: if code.is_empty() {
            format!("ResponseClass {class:?} without a ResponseCode")
        } else {
            code
        },
        text: m.child_text(M, "MessageText").unwrap_or("").to_string(),
        back_off: m.child(M, "MessageXml").and_then(back_off_of),
    })
}

/// Exactly `n` messages, or an error saying how many came.
pub fn expect_count<T>(v: Vec<T>, n: usize) -> Result<Vec<T>, SoapError> {
    if v.len() == n {
        Ok(v)
    } else {
        Err(SoapError::Count {
            expected: n,
            found: v.len(),
        })
    }
}

/// The single message element of a one-id operation, whatever its class.
pub fn single_element<'a>(body: &'a Element, op: &str) -> Result<&'a Element, SoapError> {
    let want = format!("{op}Response");
    if !body.is(M, &want) {
        return Err(SoapError::Unexpected {
            expected: format!("m:{want}"),
            found: body.qname(),
        });
    }
    let list = body
        .child(M, "ResponseMessages")
        .ok_or_else(|| SoapError::Missing(format!("m:{want}/m:ResponseMessages")))?;
    let msg_name = format!("{op}ResponseMessage");
    let found: Vec<&'a Element> = list
        .children
        .iter()
        .filter(|c| c.is(M, &msg_name))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        other => Err(SoapError::Count {
            expected: 1,
            found: other.len(),
        }),
    }
}

/// The single message of a one-id operation.
pub fn single<'a>(
    body: &'a Element,
    op: &str,
) -> Result<Result<&'a Element, ResponseError>, SoapError> {
    let mut v = expect_count(messages(body, op)?, 1)?;
    Ok(v.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUSY_FAULT: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
  <faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>
  <faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring>
  <detail>
    <e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>
    <e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The server cannot service this request right now. Try again later.</e:Message>
    <t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
      <t:Value Name="BackOffMilliseconds">178510</t:Value>
    </t:MessageXml>
  </detail>
</s:Fault></s:Body></s:Envelope>"#;

    #[test]
    fn server_busy_fault_gives_its_back_off() {
        let e = parse_response(BUSY_FAULT.as_bytes()).expect_err("a fault");
        let SoapError::Fault(f) = &e else {
            panic!("not a fault: {e:?}")
        };
        assert_eq!(f.code(), "ErrorServerBusy");
        assert_eq!(f.fault_code, "ErrorServerBusy");
        assert_eq!(e.back_off(), Some(Duration::from_millis(178_510)));
    }

    #[test]
    fn server_busy_in_a_response_message_gives_its_back_off() {
        let doc = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Body>
<m:SyncFolderItemsResponse><m:ResponseMessages>
<m:SyncFolderItemsResponseMessage ResponseClass="Error">
  <m:MessageText>busy</m:MessageText>
  <m:ResponseCode>ErrorServerBusy</m:ResponseCode>
  <m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>
  <m:MessageXml><t:Value Name="BackOffMilliseconds">5000</t:Value></m:MessageXml>
</m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse></s:Body></s:Envelope>"#;
        let r = parse_response(doc.as_bytes()).expect("parses");
        let e = single(&r.body, "SyncFolderItems")
            .expect("shape")
            .expect_err("error class");
        assert_eq!(e.code, "ErrorServerBusy");
        assert_eq!(e.back_off, Some(Duration::from_millis(5000)));
        assert_eq!(e.to_string(), "ErrorServerBusy: busy");
    }

    #[test]
    fn server_version_needs_all_four_numbers() {
        let doc = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types" MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11"/></s:Header><s:Body><m:X xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"/></s:Body></s:Envelope>"#;
        let r = parse_response(doc.as_bytes()).expect("parses");
        let v = r.server_version.expect("version");
        assert_eq!((v.major, v.minor, v.build, v.revision), (15, 1, 2507, 6));
        let err = messages(&r.body, "FindItem").expect_err("wrong element");
        assert!(err.to_string().contains("m:FindItemResponse"), "{err}");
    }

    #[test]
    fn non_soap_documents_are_refused() {
        assert!(matches!(
            parse_response(b"<html><body>Login</body></html>"),
            Err(SoapError::NotSoap(_))
        ));
    }

    #[test]
    fn envelope_escapes_the_impersonated_address() {
        let h = RequestHeader {
            impersonate: Some("a<b@example.com".into()),
            ..RequestHeader::default()
        };
        let doc = envelope(&h, "<m:X/>");
        assert!(doc.contains("a&lt;b@example.com"));
        assert!(doc.contains(r#"<t:RequestServerVersion Version="Exchange2016"/>"#));
    }
}
