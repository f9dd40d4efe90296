//! Notifications: Subscribe (streaming), GetStreamingEvents with its stream of concatenated
//! envelopes, Unsubscribe.

use quick_xml::events::Event as XmlEvent;
use quick_xml::reader::Reader;

use crate::ns::{MESSAGES as M, TYPES as T};
use crate::soap::{self, ResponseError, SoapError};
use crate::types::{FolderRef, ItemId};
use crate::xml::{Element, Writer, XmlError};

/// Event types a subscription can ask for.
pub const MAIL_EVENTS: &[&str] = &[
    "NewMailEvent",
    "CreatedEvent",
    "MovedEvent",
    "ModifiedEvent",
];

/// `m:Subscribe` with a `m:StreamingSubscriptionRequest`.
#[derive(Debug, Clone)]
pub struct SubscribeStreaming {
    pub folders: Vec<FolderRef>,
    pub event_types: Vec<String>,
}

impl SubscribeStreaming {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("m:Subscribe", &[])
            .open("m:StreamingSubscriptionRequest", &[])
            .open("t:FolderIds", &[]);
        for f in &self.folders {
            f.write(&mut w);
        }
        w.close("t:FolderIds").open("t:EventTypes", &[]);
        for e in &self.event_types {
            w.text_el("t:EventType", e);
        }
        w.close("t:EventTypes")
            .close("m:StreamingSubscriptionRequest")
            .close("m:Subscribe");
        w.finish()
    }

    /// The subscription id.
    pub fn parse(body: &Element) -> Result<Result<String, ResponseError>, SoapError> {
        match soap::single(body, "Subscribe")? {
            Ok(m) => m
                .child_text(M, "SubscriptionId")
                .map(|s| Ok(s.trim().to_string()))
                .filter(|s| s.as_ref().is_ok_and(|s| !s.is_empty()))
                .ok_or_else(|| SoapError::Missing("m:SubscriptionId".into())),
            Err(e) => Ok(Err(e)),
        }
    }
}

/// `m:Unsubscribe`
#[derive(Debug, Clone)]
pub struct Unsubscribe {
    pub subscription_id: String,
}

impl Unsubscribe {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("m:Unsubscribe", &[])
            .text_el("m:SubscriptionId", &self.subscription_id)
            .close("m:Unsubscribe");
        w.finish()
    }

    pub fn parse(body: &Element) -> Result<Result<(), ResponseError>, SoapError> {
        Ok(soap::single(body, "Unsubscribe")?.map(|_| ()))
    }
}

/// `m:GetStreamingEvents`: hold a connection open up to `timeout_minutes` (1..=30).
#[derive(Debug, Clone)]
pub struct GetStreamingEvents {
    pub subscription_ids: Vec<String>,
    pub timeout_minutes: u32,
}

/// `m:ConnectionStatus`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    Open,
    Closed,
}

/// What one notification event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationEvent {
    /// Local name: `NewMailEvent`, `CreatedEvent`, `StatusEvent`, …
    pub kind: String,
    pub item: Option<ItemId>,
    pub folder: Option<ItemId>,
    pub parent_folder: Option<ItemId>,
    pub old_item: Option<ItemId>,
}

/// One `Notification`: events of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subscription_id: String,
    pub events: Vec<NotificationEvent>,
}

/// The content of one envelope of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamingBatch {
    pub notifications: Vec<Notification>,
    pub error_subscription_ids: Vec<String>,
    pub status: Option<ConnectionStatus>,
}

/// A stream message with `ResponseClass="Error"`, and the connection status that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingError {
    pub error: ResponseError,
    pub status: Option<ConnectionStatus>,
}

impl GetStreamingEvents {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("m:GetStreamingEvents", &[])
            .open("m:SubscriptionIds", &[]);
        for s in &self.subscription_ids {
            w.text_el("t:SubscriptionId", s);
        }
        w.close("m:SubscriptionIds")
            .text_el(
                "m:ConnectionTimeout",
                &self.timeout_minutes.clamp(1, 30).to_string(),
            )
            .close("m:GetStreamingEvents");
        w.finish()
    }

    /// Read one envelope of the stream (already split off by [`DocumentSplitter`]).
    pub fn parse(body: &Element) -> Result<Result<StreamingBatch, StreamingError>, SoapError> {
        let m = soap::single_element(body, "GetStreamingEvents")?;
        let status = m.child_text(M, "ConnectionStatus").map(|s| match s.trim() {
            "Closed" => ConnectionStatus::Closed,
            _ => ConnectionStatus::Open,
        });
        let m = match soap::message_result(m) {
            Ok(m) => m,
            Err(error) => return Ok(Err(StreamingError { error, status })),
        };
        let mut batch = StreamingBatch {
            status,
            ..StreamingBatch::default()
        };
        if let Some(ns) = m.child(M, "Notifications") {
            // Real servers write m:Notification; the schema says t:Notification: take both.
            for n in ns
                .children
                .iter()
                .filter(|c| c.name == "Notification" && (c.ns == M || c.ns == T))
            {
                batch.notifications.push(notification(n)?);
            }
        }
        if let Some(ids) = m.child(M, "ErrorSubscriptionIds") {
            batch.error_subscription_ids = ids
                .children_named(T, "SubscriptionId")
                .map(|s| s.text.trim().to_string())
                .collect();
        }
        Ok(Ok(batch))
    }
}

fn notification(n: &Element) -> Result<Notification, SoapError> {
    let id = |name: &str, e: &Element| e.child(T, name).map(ItemId::from_element).transpose();
    let mut events = Vec::new();
    for e in n
        .children
        .iter()
        .filter(|c| c.ns == T && c.name.ends_with("Event"))
    {
        events.push(NotificationEvent {
            kind: e.name.clone(),
            item: id("ItemId", e)?,
            folder: id("FolderId", e)?,
            parent_folder: id("ParentFolderId", e)?,
            old_item: id("OldItemId", e)?,
        });
    }
    Ok(Notification {
        subscription_id: n
            .child_text(T, "SubscriptionId")
            .unwrap_or("")
            .trim()
            .to_string(),
        events,
    })
}

/// Cuts a byte stream of concatenated XML documents into whole documents as bytes arrive.
#[derive(Debug)]
pub struct DocumentSplitter {
    buf: Vec<u8>,
    max_document: usize,
}

impl DocumentSplitter {
    /// `max_document`: the largest document accepted; a stream that exceeds it is an error.
    pub fn new(max_document: usize) -> Self {
        DocumentSplitter {
            buf: Vec::new(),
            max_document,
        }
    }

    /// Feed bytes; get every document completed by them.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>, XmlError> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = complete_document(&self.buf) {
            let doc: Vec<u8> = self.buf.drain(..end).collect();
            out.push(doc);
        }
        let pending = self
            .buf
            .iter()
            .skip_while(|b| b.is_ascii_whitespace())
            .count();
        if pending > self.max_document {
            return Err(XmlError {
                position: 0,
                message: format!(
                    "a streamed document exceeds {} bytes (or is malformed)",
                    self.max_document
                ),
            });
        }
        Ok(out)
    }

    /// Whether bytes other than whitespace are waiting for the rest of their document.
    pub fn has_partial(&self) -> bool {
        self.buf.iter().any(|b| !b.is_ascii_whitespace())
    }
}

/// The end offset of the first complete document in `buf`, if one is complete.
fn complete_document(buf: &[u8]) -> Option<usize> {
    let mut r = Reader::from_reader(buf);
    let mut depth = 0usize;
    loop {
        match r.read_event() {
            Ok(XmlEvent::Start(_)) => depth += 1,
            Ok(XmlEvent::End(_)) => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(r.buffer_position() as usize);
                }
            }
            Ok(XmlEvent::Empty(_)) if depth == 0 => {
                return Some(r.buffer_position() as usize);
            }
            Ok(XmlEvent::Eof) => return None,
            Ok(_) => {}
            // Incomplete input ends in a syntax error: wait for more bytes.
            Err(_) => return None,
        }
    }
}
