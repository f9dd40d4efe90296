//! The Graph stand-in's mailboxes: folders (the well-known ones and children), messages with
//! their MIME, transport headers and named extended properties, and each folder's change log
//! for delta queries. Ids: a regular id changes on every move; the immutable id never does
//! (reference/graph.md §4.3).

use std::collections::BTreeMap;

use crate::ews::mime;

/// Well-known folder names and their display names.
pub const WELL_KNOWN: &[(&str, &str)] = &[
    ("inbox", "Inbox"),
    ("sentitems", "Sent Items"),
    ("drafts", "Drafts"),
    ("deleteditems", "Deleted Items"),
    ("outbox", "Outbox"),
    ("archive", "Archive"),
];

#[derive(Debug, Clone)]
pub struct Folder {
    pub id: String,
    pub name: String,
    pub well_known: Option<&'static str>,
    pub parent: Option<String>,
    /// (sequence number, message immutable id, created or removed)
    pub log: Vec<(u64, String, Change)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Removed,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub immutable_id: String,
    /// Changes on every move.
    pub id: String,
    pub folder: String,
    pub mime: Vec<u8>,
    /// `PR_TRANSPORT_MESSAGE_HEADERS` (delivered mail only).
    pub transport_headers: Option<String>,
    pub subject: String,
    pub from: Option<(Option<String>, String)>,
    pub sender: Option<(Option<String>, String)>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub internet_message_id: String,
    pub body: String,
    pub body_type: &'static str,
    pub is_read: bool,
    pub is_draft: bool,
    pub received_ms: i64,
    pub sent_ms: Option<i64>,
    pub change: u64,
    /// Named extended properties: (full id as set, value).
    pub properties: Vec<(String, String)>,
    /// `internetMessageHeaders` set on a draft (`x-` names only, as Graph allows).
    pub internet_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Mailbox {
    pub address: String,
    pub folders: Vec<Folder>,
    pub messages: BTreeMap<String, Message>,
}

#[derive(Debug, Default)]
pub struct Store {
    pub mailboxes: BTreeMap<String, Mailbox>,
    /// Message-IDs (brackets and case ignored) whose MIME (`$value`) always answers 500
    /// `ErrorInternalServerError` (a test control: a mail that cannot be read, ASSUMPTIONS.md).
    pub unreadable: std::collections::BTreeSet<String>,
    pub seq: u64,
    /// Every mail sent, oldest first.
    pub sent: Vec<super::mail::Sent>,
}

impl Store {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn new_id(&mut self, prefix: &str) -> String {
        let r: u64 = rand::random();
        let n = self.next_seq();
        format!("{prefix}{n:08x}{r:016x}")
    }

    pub fn add_mailbox(&mut self, address: &str) {
        let key = address.to_ascii_lowercase();
        if self.mailboxes.contains_key(&key) {
            return;
        }
        let mut folders = Vec::new();
        for (wk, name) in WELL_KNOWN {
            let id = self.new_id("AQMkFolder");
            folders.push(Folder {
                id,
                name: (*name).to_string(),
                well_known: Some(wk),
                parent: None,
                log: Vec::new(),
            });
        }
        self.mailboxes.insert(
            key,
            Mailbox {
                address: address.to_string(),
                folders,
                messages: BTreeMap::new(),
            },
        );
    }

    pub fn mailbox_mut(&mut self, address: &str) -> Option<&mut Mailbox> {
        self.mailboxes.get_mut(&address.to_ascii_lowercase())
    }

    /// Put a message into a folder (delivered: the header block becomes its transport
    /// headers); returns its immutable id.
    pub fn place(
        &mut self,
        address: &str,
        folder: &str,
        raw: Vec<u8>,
        now_ms: i64,
        delivered: bool,
    ) -> Result<String, String> {
        let immutable_id = self.new_id("AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A");
        let id = self.new_id("AAMkAGI2TG93AAA=");
        let seq = self.next_seq();
        let m = self
            .mailbox_mut(address)
            .ok_or_else(|| format!("no mailbox {address}"))?;
        let fid = m
            .folder_id(folder)
            .ok_or_else(|| format!("no folder {folder} in {address}"))?;
        let hs = mime::headers(&raw);
        let get = |n: &str| mime::header(&hs, n).map(str::to_string);
        let addrs = |n: &str| {
            get(n)
                .map(|v| {
                    v.split(',')
                        .map(|a| mime::address(a).1)
                        .filter(|a| !a.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let (block, _) = mime::split(&raw);
        let msg = Message {
            immutable_id: immutable_id.clone(),
            id,
            folder: fid.clone(),
            transport_headers: delivered.then_some(block),
            subject: get("Subject").unwrap_or_default(),
            from: get("From").map(|v| mime::address(&v)),
            sender: get("Sender")
                .or_else(|| get("From"))
                .map(|v| mime::address(&v)),
            to: addrs("To"),
            cc: addrs("Cc"),
            internet_message_id: get("Message-ID").unwrap_or_default(),
            body: mime::text_body(&raw),
            body_type: "text",
            mime: raw,
            is_read: false,
            is_draft: false,
            received_ms: now_ms,
            sent_ms: None,
            change: seq,
            properties: Vec::new(),
            internet_headers: Vec::new(),
        };
        m.messages.insert(immutable_id.clone(), msg);
        m.log(&fid, seq, &immutable_id, Change::Created);
        Ok(immutable_id)
    }
}

impl Mailbox {
    /// A folder by id or well-known name (any case).
    pub fn folder_id(&self, key: &str) -> Option<String> {
        self.folders
            .iter()
            .find(|f| f.id == key || f.well_known.is_some_and(|w| w.eq_ignore_ascii_case(key)))
            .map(|f| f.id.clone())
    }

    pub fn folder(&self, id: &str) -> Option<&Folder> {
        self.folders.iter().find(|f| f.id == id)
    }

    pub fn log(&mut self, folder: &str, seq: u64, msg: &str, change: Change) {
        if let Some(f) = self.folders.iter_mut().find(|f| f.id == folder) {
            f.log.push((seq, msg.to_string(), change));
        }
    }

    /// A message by its regular or immutable id.
    pub fn find(&self, id: &str) -> Option<&Message> {
        self.messages
            .get(id)
            .or_else(|| self.messages.values().find(|m| m.id == id))
    }

    pub fn find_key(&self, id: &str) -> Option<String> {
        self.find(id).map(|m| m.immutable_id.clone())
    }
}
