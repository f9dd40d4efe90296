//! The stored mailboxes: folders and RFC 5322 messages with item ids and change keys, a change
//! sequence for SyncFolderItems, subscriptions with their event queues, and the record of sent
//! mail and deliveries that the admin API reads.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

/// Distinguished folders every mailbox has: (id, display name, parent, folder class).
pub const DISTINGUISHED: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("root", "Root", None, None),
    (
        "msgfolderroot",
        "Top of Information Store",
        Some("root"),
        Some("IPF.Note"),
    ),
    ("inbox", "Inbox", Some("msgfolderroot"), Some("IPF.Note")),
    (
        "sentitems",
        "Sent Items",
        Some("msgfolderroot"),
        Some("IPF.Note"),
    ),
    (
        "deleteditems",
        "Deleted Items",
        Some("msgfolderroot"),
        Some("IPF.Note"),
    ),
    ("drafts", "Drafts", Some("msgfolderroot"), Some("IPF.Note")),
    ("outbox", "Outbox", Some("msgfolderroot"), Some("IPF.Note")),
    (
        "junkemail",
        "Junk Email",
        Some("msgfolderroot"),
        Some("IPF.Note"),
    ),
];

#[derive(Debug, Clone)]
pub struct Folder {
    pub id: String,
    pub change: u64,
    pub parent: Option<String>,
    pub name: String,
    pub class: Option<String>,
    pub distinguished: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub change: u64,
    pub folder: String,
    pub mime: Vec<u8>,
    pub is_read: bool,
    pub received_ms: i64,
    /// Change sequence when the item arrived in its folder / was last modified.
    pub arrived_seq: u64,
    pub modified_seq: u64,
    pub read_changed_seq: u64,
    /// Custom named string properties (`PublicStrings` set), by property name.
    pub props: BTreeMap<String, String>,
    /// Arrived through transport (delivered): only such an item has the transport headers
    /// (PR_TRANSPORT_MESSAGE_HEADERS, 0x007D); one saved by CreateItem, dragged in or imported
    /// has none.
    pub transported: bool,
}

/// An item that left a folder (moved or deleted), for SyncFolderItems.
#[derive(Debug, Clone)]
pub struct Tombstone {
    pub folder: String,
    pub item: String,
    pub change: u64,
    pub arrived_seq: u64,
    pub seq: u64,
}

#[derive(Debug, Default)]
pub struct Mbx {
    pub address: String,
    pub folders: Vec<Folder>,
    pub items: BTreeMap<String, Item>,
    pub tombstones: Vec<Tombstone>,
}

/// One queued notification event.
#[derive(Debug, Clone)]
pub struct Ev {
    pub kind: &'static str,
    pub item: Option<(String, u64)>,
    pub parent: (String, u64),
    pub old_item: Option<(String, u64)>,
    pub old_parent: Option<(String, u64)>,
    pub time_ms: i64,
    pub watermark: u64,
}

#[derive(Debug)]
pub struct Sub {
    pub id: String,
    pub mailbox: String,
    pub folders: Vec<String>,
    pub event_types: Vec<String>,
    pub queue: VecDeque<Ev>,
    pub streaming: bool,
    pub watermark: u64,
}

/// A mail sent through CreateItem.
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    pub mailbox: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub body: String,
    pub body_type: String,
    pub sent_ms: i64,
    pub saved_item: Option<String>,
    pub disposition: String,
    /// Custom named string properties the client set on the mail.
    pub props: BTreeMap<String, String>,
    /// Internet headers the client set (`InternetHeaders` extended properties), in order.
    pub headers: Vec<(String, String)>,
}

/// A delivery through the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub mailbox: String,
    pub item_id: String,
    pub internet_message_id: Option<String>,
    pub delivered_ms: i64,
}

/// Injected throttling.
#[derive(Debug, Clone, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Busy {
    /// How many calls answer ErrorServerBusy.
    pub count: u32,
    #[serde(default = "default_back_off")]
    pub back_off_ms: u64,
    /// `fault` (SOAP fault, HTTP 500) or `message` (ResponseClass="Error" in the response).
    #[serde(default = "default_shape")]
    pub shape: String,
    /// Only this operation (e.g. `FindItem`); every operation when absent.
    #[serde(default)]
    pub operation: Option<String>,
}

fn default_back_off() -> u64 {
    50
}
fn default_shape() -> String {
    "fault".into()
}

#[derive(Debug, Default)]
pub struct Store {
    pub seq: u64,
    next_id: u64,
    pub mailboxes: BTreeMap<String, Mbx>,
    pub subs: BTreeMap<String, Sub>,
    pub sent: Vec<Sent>,
    pub deliveries: Vec<Delivery>,
    pub busy: Vec<Busy>,
    /// Folder permissions and delegates from the scenario (read-only).
    pub rights: super::rights::Rights,
    /// Message-IDs (as in the header, brackets and case ignored) whose GetItem always fails
    /// with `ErrorItemCorrupt` (a test control: a mail that cannot be read, ASSUMPTIONS.md).
    pub unreadable: std::collections::BTreeSet<String>,
    /// The sending rate per mailbox (`send_limit`).
    pub send_rate: crate::send_limit::SendRate,
}

impl Store {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A fresh opaque id with the given prefix (real ids are long base64 strings).
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        let r: u64 = rand::random();
        format!("{prefix}{:06}{r:016X}AAA=", self.next_id)
    }

    pub fn add_mailbox(&mut self, address: &str) {
        let key = address.to_ascii_lowercase();
        if self.mailboxes.contains_key(&key) {
            return;
        }
        let mut mbx = Mbx {
            address: address.to_string(),
            ..Mbx::default()
        };
        let mut ids: BTreeMap<&str, String> = BTreeMap::new();
        for (dist, name, parent, class) in DISTINGUISHED {
            let id = self.new_id("AQMkF");
            ids.insert(dist, id.clone());
            mbx.folders.push(Folder {
                id,
                change: 1,
                parent: parent.and_then(|p| ids.get(p).cloned()),
                name: name.to_string(),
                class: class.map(str::to_string),
                distinguished: Some(dist.to_string()),
            });
        }
        self.mailboxes.insert(key, mbx);
    }

    pub fn mailbox(&self, address: &str) -> Option<&Mbx> {
        self.mailboxes.get(&address.to_ascii_lowercase())
    }

    pub fn mailbox_mut(&mut self, address: &str) -> Option<&mut Mbx> {
        self.mailboxes.get_mut(&address.to_ascii_lowercase())
    }

    /// The mailbox holding a folder id.
    pub fn mailbox_of_folder(&self, folder: &str) -> Option<String> {
        self.mailboxes
            .iter()
            .find(|(_, m)| m.folders.iter().any(|f| f.id == folder))
            .map(|(k, _)| k.clone())
    }

    /// The mailbox holding an item id.
    pub fn mailbox_of_item(&self, item: &str) -> Option<String> {
        self.mailboxes
            .iter()
            .find(|(_, m)| m.items.contains_key(item))
            .map(|(k, _)| k.clone())
    }

    /// Store a message in a folder and queue the events; returns the new item id.
    pub fn add_item(
        &mut self,
        mbx_key: &str,
        folder: &str,
        mime: Vec<u8>,
        is_read: bool,
        now_ms: i64,
        new_mail: bool,
    ) -> Option<String> {
        let id = self.new_id("AAMkI");
        let seq = self.next_seq();
        let mbx = self.mailboxes.get_mut(mbx_key)?;
        let fchange = mbx.folders.iter().find(|f| f.id == folder)?.change;
        mbx.items.insert(
            id.clone(),
            Item {
                id: id.clone(),
                change: 1,
                folder: folder.to_string(),
                mime,
                is_read,
                received_ms: now_ms,
                arrived_seq: seq,
                modified_seq: seq,
                read_changed_seq: 0,
                props: BTreeMap::new(),
                transported: new_mail,
            },
        );
        let parent = (folder.to_string(), fchange);
        let item = Some((id.clone(), 1));
        if new_mail {
            self.queue_event(
                mbx_key,
                "NewMailEvent",
                item.clone(),
                parent.clone(),
                None,
                None,
                now_ms,
            );
        }
        self.queue_event(mbx_key, "CreatedEvent", item, parent, None, None, now_ms);
        Some(id)
    }

    /// Queue an event for every subscription that watches the folder and the event type.
    #[allow(clippy::too_many_arguments)]
    pub fn queue_event(
        &mut self,
        mbx_key: &str,
        kind: &'static str,
        item: Option<(String, u64)>,
        parent: (String, u64),
        old_item: Option<(String, u64)>,
        old_parent: Option<(String, u64)>,
        now_ms: i64,
    ) {
        let wm = self.next_seq();
        for s in self.subs.values_mut() {
            let watches = s
                .folders
                .iter()
                .any(|f| *f == parent.0 || old_parent.as_ref().is_some_and(|o| &o.0 == f));
            if s.mailbox == mbx_key && watches && s.event_types.iter().any(|t| t == kind) {
                s.queue.push_back(Ev {
                    kind,
                    item: item.clone(),
                    parent: parent.clone(),
                    old_item: old_item.clone(),
                    old_parent: old_parent.clone(),
                    time_ms: now_ms,
                    watermark: wm,
                });
            }
        }
    }
}
