//! The MIME layer: `mail-parser` does the decoding (multipart, quoted-printable, base64,
//! charsets, RFC 2047 words, `message/rfc822`); this module wraps it so nothing it does can
//! panic through us, and offers the few views the notice reader needs.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::{
    Address, Header, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders,
    PartType,
};

use super::html;
use super::text::clean_value;

/// Deepest chain of attached messages we follow (real forwards nest two or three deep).
pub const MAX_DEPTH: usize = 8;
/// Most MIME parts, all levels together, that we look at.
pub const MAX_PARTS: usize = 1000;

/// Parse a raw message. None when it is not a message at all or the parser gave up; a panic
/// inside the parser is caught and counts as unreadable (fail closed).
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    catch_unwind(AssertUnwindSafe(|| MessageParser::new().parse(raw)))
        .ok()
        .flatten()
        .filter(|m| !m.parts.is_empty())
}

/// True when a `message/*` part (an attached mail) carries a transfer encoding other than
/// 7bit/8bit/binary. RFC 2046 forbids that, no mail client does it, and `mail-parser` handles it
/// by parsing the decoded part again and copying it once per nested level: a small mail could
/// make it use gigabytes. So such mails are refused before the real parse. This pre-pass parses
/// without decoding anything (Content-Transfer-Encoding ignored), which has no such cost.
pub fn has_encoded_message_part(raw: &[u8]) -> bool {
    let scan = catch_unwind(AssertUnwindSafe(|| {
        let parser = MessageParser::new()
            .with_mime_headers()
            .ignore_header(HeaderName::ContentTransferEncoding);
        let msg = parser.parse(raw)?;
        let mut stack: Vec<&Message<'_>> = vec![&msg];
        let mut seen = 0usize;
        while let Some(m) = stack.pop() {
            // Children of a multipart/digest default to message/rfc822.
            let mut digest_children: Vec<u32> = Vec::new();
            for part in &m.parts {
                if let PartType::Multipart(ids) = &part.body
                    && content_type(part) == "multipart/digest"
                {
                    digest_children.extend(ids.iter().copied());
                }
            }
            for (id, part) in m.parts.iter().enumerate() {
                seen += 1;
                if seen > MAX_PARTS * 4 {
                    return Some(true);
                }
                let has_type = part
                    .headers
                    .iter()
                    .any(|h| h.name.as_str().eq_ignore_ascii_case("content-type"));
                let is_message = content_type(part).starts_with("message/")
                    || (!has_type && digest_children.iter().any(|c| *c as usize == id));
                let encoded = part.headers.iter().any(|h| {
                    h.name
                        .as_str()
                        .eq_ignore_ascii_case("content-transfer-encoding")
                        && !matches!(
                            raw_value(raw, h).to_ascii_lowercase().as_str(),
                            "7bit" | "8bit" | "binary" | ""
                        )
                });
                if is_message && encoded {
                    return Some(true);
                }
                if let PartType::Message(inner) = &part.body {
                    stack.push(inner);
                }
            }
        }
        Some(false)
    }));
    // A panic in the pre-pass is doubt: refuse.
    scan.unwrap_or(Some(true)).unwrap_or(false)
}

/// A parser will read headers out of anything; a mail has at least one of these.
pub fn looks_like_mail(msg: &Message<'_>) -> bool {
    const BASIC: &[&str] = &[
        "from",
        "sender",
        "date",
        "subject",
        "message-id",
        "received",
        "mime-version",
        "to",
    ];
    headers(msg).iter().any(|h| {
        BASIC
            .iter()
            .any(|b| h.name.as_str().eq_ignore_ascii_case(b))
    })
}

/// Parse only the top header block of a raw message (or a bare header block, as EWS's
/// PR_TRANSPORT_MESSAGE_HEADERS hands it over). Every instance of every header, in order, with
/// folded lines joined. Empty when nothing can be read.
pub fn header_block(raw: &[u8]) -> Vec<(String, String)> {
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        let msg = MessageParser::new().parse_headers(raw)?;
        let part = msg.parts.first()?;
        Some(
            part.headers
                .iter()
                .map(|h| (h.name.as_str().trim().to_string(), raw_value(raw, h)))
                .collect::<Vec<_>>(),
        )
    }));
    parsed.ok().flatten().unwrap_or_default()
}

/// The raw text of a header's value with folding undone (CR/LF removed, the following
/// whitespace kept), trimmed. Bytes that are not UTF-8 become U+FFFD.
fn raw_value(raw: &[u8], h: &Header<'_>) -> String {
    let bytes = raw
        .get(h.offset_start as usize..h.offset_end as usize)
        .unwrap_or_default();
    let text = String::from_utf8_lossy(bytes);
    text.chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect::<String>()
        .trim()
        .to_string()
}

/// Headers of a message's root part.
pub fn headers<'a>(msg: &'a Message<'a>) -> &'a [Header<'a>] {
    msg.parts
        .first()
        .map(|p| p.headers.as_slice())
        .unwrap_or(&[])
}

/// Every value of a header (case-insensitive name), as text.
pub fn header_texts(msg: &Message<'_>, name: &str) -> Vec<String> {
    headers(msg)
        .iter()
        .filter(|h| h.name.as_str().trim().eq_ignore_ascii_case(name))
        .map(|h| value_text(&h.value, msg.raw_message.as_ref(), h))
        .collect()
}

/// The first value of a header, cleaned for display.
pub fn header_text(msg: &Message<'_>, name: &str) -> Option<String> {
    header_texts(msg, name)
        .into_iter()
        .map(|v| clean_value(&v))
        .find(|v| !v.is_empty())
}

fn value_text(v: &HeaderValue<'_>, raw: &[u8], h: &Header<'_>) -> String {
    match v {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(", "),
        HeaderValue::DateTime(d) => d.to_rfc3339(),
        _ => raw_value(raw, h),
    }
}

/// A mailbox from an address header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

/// The mailboxes in every instance of an address header (`From`, `Sender`), flattened.
pub fn mailboxes(msg: &Message<'_>, name: &str) -> Vec<Mailbox> {
    let mut out = Vec::new();
    for h in headers(msg)
        .iter()
        .filter(|h| h.name.as_str().trim().eq_ignore_ascii_case(name))
    {
        if let HeaderValue::Address(a) = &h.value {
            out.extend(address_mailboxes(a));
        }
    }
    out
}

pub fn address_mailboxes(a: &Address<'_>) -> Vec<Mailbox> {
    a.iter()
        .map(|addr| Mailbox {
            name: addr.name().map(clean_value).filter(|n| !n.is_empty()),
            address: addr.address().map(clean_value).unwrap_or_default(),
        })
        .collect()
}

/// `type/subtype` of a part, lower case; `text/plain` when absent (RFC 2045 default).
pub fn content_type(part: &MessagePart<'_>) -> String {
    for h in &part.headers {
        if h.name.as_str().eq_ignore_ascii_case("content-type")
            && let HeaderValue::ContentType(ct) = &h.value
        {
            let sub = ct.subtype().unwrap_or("");
            return format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase();
        }
    }
    "text/plain".into()
}

/// One rendering of a message's text, read on its own (issue 25): the text/plain body, the
/// HTML body as most clients show it, the HTML body as Outlook for Windows shows it, and each
/// text or HTML attachment (Thunderbird and Apple Mail show them inline).
#[derive(Debug, Clone)]
pub struct Rendered {
    /// How `--explain` and refusals name it ("the text/plain part", …).
    pub name: String,
    /// Lines, HTML marks included (see `html::Mark`).
    pub text: String,
    /// What the marks stand for.
    pub findings: Vec<String>,
    /// A rendering of the message's own body (not of an attachment).
    pub body: bool,
}

/// Every rendering of one message (attached messages are read on their own).
pub fn renderings(msg: &Message<'_>) -> Vec<Rendered> {
    let (mut out, used) = body(msg);
    // Text and HTML parts the body does not include: attachments and inline parts.
    for (id, part) in msg.parts.iter().enumerate().take(MAX_PARTS) {
        if used.contains(&(id as u32)) {
            continue;
        }
        let name = part
            .attachment_name()
            .map(clean_value)
            .map(|n| format!("the attachment \"{n}\""))
            .unwrap_or_else(|| format!("MIME part {}", id + 1));
        match &part.body {
            PartType::Text(t) if !t.trim().is_empty() => out.push(Rendered {
                name,
                text: unflow_part(part, t),
                findings: Vec::new(),
                body: false,
            }),
            PartType::Html(h) if !h.trim().is_empty() => {
                out.extend(join_html(vec![html::renderings(h)], &name, false));
            }
            _ => {}
        }
    }
    out
}

/// The body's renderings and the part ids they used.
fn body(msg: &Message<'_>) -> (Vec<Rendered>, Vec<u32>) {
    let mut out = Vec::new();
    let mut plain = String::new();
    let mut html_parts: Vec<Vec<html::Rendering>> = Vec::new();
    let mut used: Vec<u32> = Vec::new();
    for id in msg.text_body.iter().take(MAX_PARTS) {
        if let Some(
            part @ MessagePart {
                body: PartType::Text(t),
                ..
            },
        ) = msg.parts.get(*id as usize)
        {
            plain.push_str(&unflow_part(part, t));
            plain.push('\n');
            used.push(*id);
        }
    }
    for id in msg.html_body.iter().take(MAX_PARTS) {
        if let Some(MessagePart {
            body: PartType::Html(h),
            ..
        }) = msg.parts.get(*id as usize)
        {
            html_parts.push(html::renderings(h));
            used.push(*id);
        }
    }
    if !plain.trim().is_empty() {
        out.push(Rendered {
            name: "the text/plain part".into(),
            text: plain,
            findings: Vec::new(),
            body: true,
        });
    }
    out.extend(join_html(html_parts, "the HTML part", true));
    (out, used)
}

/// The HTML parts of a body, one text per client (parts joined by a line break, marks
/// renumbered so each text has one findings table).
fn join_html(parts: Vec<Vec<html::Rendering>>, name: &str, body: bool) -> Vec<Rendered> {
    if parts.is_empty() {
        return Vec::new();
    }
    let outlook_differs = parts.iter().any(|p| p.len() > 1);
    let clients: &[html::Client] = if outlook_differs {
        &[html::Client::Browser, html::Client::Outlook]
    } else {
        &[html::Client::Browser]
    };
    let mut out = Vec::new();
    for client in clients {
        let mut text = String::new();
        let mut findings: Vec<String> = Vec::new();
        for p in &parts {
            let Some(r) = p.iter().find(|r| r.client == *client).or_else(|| p.first()) else {
                continue;
            };
            let offset = findings.len();
            findings.extend(r.findings.iter().cloned());
            text.push_str(&html::renumber(&r.text, offset));
            text.push('\n');
        }
        if text.trim().is_empty() {
            continue;
        }
        let name = if outlook_differs {
            format!("{name} ({})", client.name())
        } else {
            name.to_string()
        };
        out.push(Rendered {
            name,
            text,
            findings,
            body,
        });
    }
    out
}

/// The `Content-Type` parameter of a part, lower case.
fn ct_param(part: &MessagePart<'_>, name: &str) -> Option<String> {
    part.headers.iter().find_map(|h| match &h.value {
        HeaderValue::ContentType(ct) if h.name.as_str().eq_ignore_ascii_case("content-type") => {
            ct.attribute(name).map(|v| v.trim().to_ascii_lowercase())
        }
        _ => None,
    })
}

fn unflow_part(part: &MessagePart<'_>, text: &str) -> String {
    // The private-use planes HTML marks use mean nothing in a text part.
    let owned;
    let text = if text.chars().any(html::is_reserved) {
        owned = text
            .chars()
            .map(|c| if html::is_reserved(c) { '\u{FFFD}' } else { c })
            .collect::<String>();
        owned.as_str()
    } else {
        text
    };
    if ct_param(part, "format").as_deref() == Some("flowed") {
        let delsp = ct_param(part, "delsp").as_deref() == Some("yes");
        super::text::unflow(text, delsp)
    } else {
        text.to_string()
    }
}

/// True when the message carries a TNEF part (`application/ms-tnef`, winmail.dat): what
/// Outlook shows of it cannot be read here.
pub fn has_tnef(msg: &Message<'_>) -> bool {
    msg.parts.iter().take(MAX_PARTS).any(|p| {
        let ct = content_type(p);
        ct == "application/ms-tnef"
            || ct == "application/vnd.ms-tnef"
            || p.attachment_name()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("winmail.dat"))
    })
}

/// Messages attached to this one (`message/rfc822`), in order.
pub fn attached_messages<'a>(msg: &'a Message<'a>) -> Vec<&'a Message<'a>> {
    msg.parts
        .iter()
        .take(MAX_PARTS)
        .filter_map(|p| match &p.body {
            PartType::Message(m) if !m.parts.is_empty() => Some(m),
            _ => None,
        })
        .collect()
}

/// Total parts in a message tree, stopping early past `limit`; also the depth reached.
pub fn size_of_tree(msg: &Message<'_>, depth: usize, limit: usize) -> (usize, usize) {
    let mut count = msg.parts.len();
    let mut max_depth = depth;
    if count > limit || depth > MAX_DEPTH {
        return (count, max_depth);
    }
    for p in &msg.parts {
        if let PartType::Message(m) = &p.body {
            let (c, d) = size_of_tree(m, depth + 1, limit.saturating_sub(count));
            count = count.saturating_add(c);
            max_depth = max_depth.max(d);
            if count > limit || max_depth > MAX_DEPTH {
                break;
            }
        }
    }
    (count, max_depth)
}
