//! SOAP on the wire for the stand-in: reading requests with roxmltree, writing responses as
//! Exchange 2016 does (envelope, `ServerVersionInfo`, response messages, faults).

use roxmltree::Node;

pub const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const M: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
pub const T: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
pub const E: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// Escape text and attribute values; characters XML cannot carry are dropped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            c if (c < ' ' && c != '\t' && c != '\n') || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

pub fn child<'a, 'i>(n: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| {
        c.is_element() && c.tag_name().namespace() == Some(ns) && c.tag_name().name() == name
    })
}

pub fn children<'a, 'i: 'a>(
    n: Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children().filter(move |c| {
        c.is_element() && c.tag_name().namespace() == Some(ns) && c.tag_name().name() == name
    })
}

pub fn elements<'a, 'i: 'a>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children().filter(|c| c.is_element())
}

pub fn text(n: Node<'_, '_>) -> String {
    n.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect()
}

pub fn child_text(n: Node<'_, '_>, ns: &str, name: &str) -> Option<String> {
    child(n, ns, name).map(text)
}

/// `xs:boolean`
pub fn boolean(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// The response envelope around one response element.
pub fn envelope(body: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<s:Envelope xmlns:s="{soap}"><s:Header>"#,
            r#"<h:ServerVersionInfo xmlns:h="{t}" MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>"#,
            r#"</s:Header><s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">{body}</s:Body></s:Envelope>"#
        ),
        soap = SOAP,
        t = T,
        body = body
    )
}

/// `<m:{op}Response>` with the given response messages.
pub fn response(op: &str, messages: &[String]) -> String {
    format!(
        r#"<m:{op}Response xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages>{}</m:ResponseMessages></m:{op}Response>"#,
        messages.concat()
    )
}

/// A successful response message with its payload.
pub fn ok(op: &str, payload: &str) -> String {
    format!(
        r#"<m:{op}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{payload}</m:{op}ResponseMessage>"#
    )
}

/// An error response message. `payload` is what the schema expects after the error fields
/// (e.g. an empty `<m:Items/>`).
pub fn err(op: &str, e: &EwsErr, payload: &str) -> String {
    let xml = e
        .back_off_ms
        .map(|ms| {
            format!(
                r#"<m:MessageXml><t:Value Name="BackOffMilliseconds">{ms}</t:Value></m:MessageXml>"#
            )
        })
        .unwrap_or_default();
    format!(
        r#"<m:{op}ResponseMessage ResponseClass="Error"><m:MessageText>{}</m:MessageText><m:ResponseCode>{}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{xml}{payload}</m:{op}ResponseMessage>"#,
        esc(&e.text),
        e.code
    )
}

/// A per-message error.
#[derive(Debug, Clone)]
pub struct EwsErr {
    pub code: &'static str,
    pub text: String,
    pub back_off_ms: Option<u64>,
}

impl EwsErr {
    pub fn new(code: &'static str, text: impl Into<String>) -> Self {
        EwsErr {
            code,
            text: text.into(),
            back_off_ms: None,
        }
    }
    pub fn item_not_found() -> Self {
        EwsErr::new(
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }
    pub fn folder_not_found() -> Self {
        EwsErr::new(
            "ErrorFolderNotFound",
            "The specified folder could not be found in the store.",
        )
    }
    pub fn no_mailbox(addr: &str) -> Self {
        EwsErr::new(
            "ErrorNonExistentMailbox",
            format!("The SMTP address has no mailbox associated with it. ({addr})"),
        )
    }
    pub fn busy(ms: u64) -> Self {
        EwsErr {
            code: "ErrorServerBusy",
            text: "The server cannot service this request right now. Try again later.".into(),
            back_off_ms: Some(ms),
        }
    }
}

/// A SOAP fault body (sent with HTTP 500).
pub fn fault(e: &EwsErr) -> String {
    let code = format!(r#"<faultcode xmlns:a="{T}">a:{}</faultcode>"#, e.code);
    let xml = e
        .back_off_ms
        .map(|ms| {
            format!(
                r#"<t:MessageXml xmlns:t="{T}"><t:Value Name="BackOffMilliseconds">{ms}</t:Value></t:MessageXml>"#
            )
        })
        .unwrap_or_default();
    format!(
        r#"<s:Fault>{code}<faultstring xml:lang="en-US">{text}</faultstring><detail><e:ResponseCode xmlns:e="{E}">{c}</e:ResponseCode><e:Message xmlns:e="{E}">{text}</e:Message>{xml}</detail></s:Fault>"#,
        text = esc(&e.text),
        c = e.code
    )
}

/// `<t:{tag} Id=".." ChangeKey=".."/>`
pub fn id_el(tag: &str, id: &str, change: u64) -> String {
    format!(
        r#"<t:{tag} Id="{}" ChangeKey="{}"/>"#,
        esc(id),
        change_key(change)
    )
}

/// Change keys look like base64 and change with every version.
pub fn change_key(n: u64) -> String {
    format!("CQAAAB{n:08}")
}

/// Parse a change key written by [`change_key`].
pub fn parse_change_key(s: &str) -> Option<u64> {
    s.strip_prefix("CQAAAB")?.parse().ok()
}

/// `xs:dateTime` in UTC.
pub fn datetime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
