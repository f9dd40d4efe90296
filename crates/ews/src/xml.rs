//! The XML underneath: a small writer for requests (escaping every value) and a namespace-
//! resolved element tree read with quick-xml for responses.
//!
//! Responses come from a server we do not control: the reader refuses DTDs and unknown entity
//! references instead of expanding them, and bounds nesting depth and element count.

use std::borrow::Cow;
use std::fmt::Write as _;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::ns;

/// Deepest nesting accepted in a response (real EWS stays under 20).
const MAX_DEPTH: usize = 64;
/// Most elements accepted in one response document.
const MAX_ELEMENTS: usize = 2_000_000;

/// A response that is not the XML we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML at byte {position}: {message}")]
pub struct XmlError {
    pub position: u64,
    pub message: String,
}

/// One element: namespace URI, local name, attributes (local name -> value), children, text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// Whether this element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The value of an unqualified attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child `{ns}name`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// Text of the first child `{ns}name`.
    pub fn child_text(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name).map(|c| c.text.as_str())
    }

    /// Follow a path of `t:`/`m:` children.
    pub fn path(&self, steps: &[(&str, &str)]) -> Option<&Element> {
        let mut cur = self;
        for (ns, name) in steps {
            cur = cur.child(ns, name)?;
        }
        Some(cur)
    }

    /// `{ns}name` written the usual way, for error messages.
    pub fn qname(&self) -> String {
        format!("{}:{}", ns::prefix_of(&self.ns), self.name)
    }
}

/// Parse an `xs:boolean`: `true`/`false` and `1`/`0`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Parse one XML document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_reader(bytes);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let pos = reader.buffer_position();
        let err = |m: String| XmlError {
            position: pos,
            message: m,
        };
        let (res, ev) = reader
            .read_resolved_event()
            .map_err(|e| err(e.to_string()))?;
        let ns_uri = match res {
            ResolveResult::Bound(n) => n.as_ref().to_string(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => {
                return Err(err(format!("undeclared namespace prefix `{}`", p)));
            }
        };
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                    return Err(err("document too large or too deeply nested".into()));
                }
                if root.is_some() && stack.is_empty() {
                    return Err(err("content after the root element".into()));
                }
                let mut el = Element {
                    ns: ns_uri,
                    name: e.local_name().as_ref().to_string(),
                    ..Element::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| err(e.to_string()))?;
                    let key = a.key;
                    if key.as_ref() == "xmlns" || key.as_ref().starts_with("xmlns:") {
                        continue;
                    }
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| err(e.to_string()))?;
                    el.attrs
                        .push((key.local_name().as_ref().to_string(), v.into_owned()));
                }
                if matches!(ev, Event::Empty(_)) {
                    close(el, &mut stack, &mut root);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| err("unbalanced end tag".into()))?;
                close(el, &mut stack, &mut root);
            }
            Event::Text(t) => {
                let s = t.xml10_content();
                push_text(&mut stack, &s, &root).map_err(err)?;
            }
            Event::CData(t) => {
                let s = t.xml10_content();
                push_text(&mut stack, &s, &root).map_err(err)?;
            }
            Event::GeneralRef(r) => {
                let s: Cow<'_, str> = match r.resolve_char_ref() {
                    Ok(Some(c)) => Cow::Owned(c.to_string()),
                    Ok(None) => {
                        let name = r.xml10_content();
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(v) => Cow::Borrowed(v),
                            None => return Err(err(format!("unknown entity `&{name};`"))),
                        }
                    }
                    Err(e) => return Err(err(e.to_string())),
                };
                push_text(&mut stack, &s, &root).map_err(err)?;
            }
            Event::DocType(_) => return Err(err("DTDs are not accepted".into())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError {
            position: reader.buffer_position(),
            message: "document ends inside an element".into(),
        });
    }
    root.ok_or(XmlError {
        position: 0,
        message: "empty document".into(),
    })
}

fn close(el: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Element], s: &str, root: &Option<Element>) -> Result<(), String> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None if root.is_some() => Err("text after the root element".into()),
        None => Err("text before the root element".into()),
    }
}

/// Escape text or an attribute value. Characters XML 1.0 cannot carry at all (most C0
/// controls) are dropped rather than written as invalid references.
pub fn escape(s: &str) -> Cow<'_, str> {
    let needs = s
        .chars()
        .any(|c| matches!(c, '<' | '>' | '&' | '"' | '\'' | '\r') || is_forbidden(c));
    if !needs {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c if is_forbidden(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_forbidden(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

/// A tiny writer of prefixed elements into a String.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    /// `<name a="v" …>`
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push('>');
        self
    }

    /// `<name a="v" …/>`
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push_str("/>");
        self
    }

    /// `</name>`
    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.out, "</{name}>");
        self
    }

    /// `<name>text</name>`
    pub fn text_el(&mut self, name: &str, text: &str) -> &mut Self {
        self.text_el_attrs(name, &[], text)
    }

    /// `<name a="v">text</name>`
    pub fn text_el_attrs(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        self.open(name, attrs);
        self.out.push_str(&escape(text));
        self.close(name)
    }

    /// Already well-formed XML produced by another writer.
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.out.push_str(xml);
        self
    }

    fn attrs(&mut self, attrs: &[(&str, &str)]) {
        for (k, v) in attrs {
            let _ = write!(self.out, " {k}=\"{}\"", escape(v));
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaces_entities_and_char_refs() {
        let doc = br#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <s:Body><t:Value Name="a&amp;b">x &lt;y&gt; &#13;&#10;z</t:Value><t:E/></s:Body></s:Envelope>"#;
        let root = parse(doc).expect("parses");
        assert!(root.is(ns::SOAP, "Envelope"));
        let body = root.child(ns::SOAP, "Body").expect("body");
        let v = body.child(ns::TYPES, "Value").expect("value");
        assert_eq!(v.attr("Name"), Some("a&b"));
        assert_eq!(v.text, "x <y> \r\nz");
        assert!(body.child(ns::TYPES, "E").is_some());
    }

    #[test]
    fn refuses_dtd_unknown_entities_and_undeclared_prefixes() {
        let dtd = br#"<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#;
        assert!(parse(dtd).is_err());
        assert!(parse(b"<x>&nbsp;</x>").is_err());
        assert!(parse(b"<q:x/>").is_err());
        assert!(parse(b"<x><y></x>").is_err());
        assert!(parse(b"<x/><y/>").is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn escape_round_trips_through_the_parser() {
        let nasty = "a<b>&\"c'\r\n\u{1}d";
        let mut w = Writer::new();
        w.text_el_attrs("x", &[("v", nasty)], nasty);
        let el = parse(w.finish().as_bytes()).expect("parses");
        assert_eq!(el.text, "a<b>&\"c'\r\nd");
        // attribute values are normalised as XML requires: a literal LF becomes a space, the
        // escaped CR survives
        assert_eq!(el.attr("v"), Some("a<b>&\"c'\r d"));
    }

    #[test]
    fn booleans_accept_both_spellings() {
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
