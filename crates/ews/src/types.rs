//! Ids and small shared types: item ids with change keys, folder references (distinguished or
//! by id), mailboxes; how each is written into a request and read from a response.

use crate::ns::TYPES as T;
use crate::soap::SoapError;
use crate::xml::{Element, Writer};

/// `t:ItemId`: the id and the change key of one version of the item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId {
    pub id: String,
    pub change_key: Option<String>,
}

impl ItemId {
    pub fn new(id: impl Into<String>, change_key: Option<String>) -> Self {
        ItemId {
            id: id.into(),
            change_key,
        }
    }

    pub(crate) fn write(&self, w: &mut Writer, tag: &str) {
        match &self.change_key {
            Some(ck) => w.empty(tag, &[("Id", &self.id), ("ChangeKey", ck)]),
            None => w.empty(tag, &[("Id", &self.id)]),
        };
    }

    /// Read an `Id`/`ChangeKey` pair from an element such as `t:ItemId`.
    pub fn from_element(e: &Element) -> Result<Self, SoapError> {
        let id = e
            .attr("Id")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SoapError::Missing(format!("{}/@Id", e.qname())))?;
        Ok(ItemId {
            id: id.to_string(),
            change_key: e.attr("ChangeKey").map(str::to_string),
        })
    }
}

/// `t:FolderId`
pub type FolderId = ItemId;

/// A folder as a request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderRef {
    /// `t:DistinguishedFolderId` (`inbox`, `sentitems`, `root`, `msgfolderroot`, …), optionally
    /// in another mailbox.
    Distinguished { id: String, mailbox: Option<String> },
    /// `t:FolderId`
    Id(FolderId),
}

impl FolderRef {
    pub fn distinguished(id: &str, mailbox: Option<&str>) -> Self {
        FolderRef::Distinguished {
            id: id.to_string(),
            mailbox: mailbox.map(str::to_string),
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        match self {
            FolderRef::Distinguished { id, mailbox: None } => {
                w.empty("t:DistinguishedFolderId", &[("Id", id)]);
            }
            FolderRef::Distinguished {
                id,
                mailbox: Some(mbx),
            } => {
                w.open("t:DistinguishedFolderId", &[("Id", id)])
                    .open("t:Mailbox", &[])
                    .text_el("t:EmailAddress", mbx)
                    .close("t:Mailbox")
                    .close("t:DistinguishedFolderId");
            }
            FolderRef::Id(f) => f.write(w, "t:FolderId"),
        }
    }
}

/// A mailbox (`t:Mailbox`): display name, address and routing type (`SMTP`, `EX`, …).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    pub name: Option<String>,
    pub email: Option<String>,
    pub routing_type: Option<String>,
}

impl Mailbox {
    /// Read the `t:Mailbox` inside an element such as `t:From`.
    pub fn from_wrapper(e: &Element) -> Option<Mailbox> {
        let m = e.child(T, "Mailbox")?;
        let opt = |n: &str| m.child_text(T, n).map(str::to_string);
        Some(Mailbox {
            name: opt("Name"),
            email: opt("EmailAddress"),
            routing_type: opt("RoutingType"),
        })
    }

    pub(crate) fn write_address(w: &mut Writer, address: &str) {
        w.open("t:Mailbox", &[])
            .text_el("t:EmailAddress", address)
            .close("t:Mailbox");
    }
}

/// The first `t:ItemId` of each item in an `Items` list (`t:Message`, `t:Item`, `t:MeetingRequest`…).
pub fn item_ids(items: &Element) -> Result<Vec<ItemId>, SoapError> {
    items
        .children
        .iter()
        .map(|it| {
            it.child(T, "ItemId")
                .ok_or_else(|| SoapError::Missing(format!("{}/t:ItemId", it.qname())))
                .and_then(ItemId::from_element)
        })
        .collect()
}

/// Which folders an operation's paging view asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub max_entries: u32,
    pub offset: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            max_entries: 100,
            offset: 0,
        }
    }
}

/// `IndexedPagingOffset`/`IncludesLastItemInRange` of a `m:RootFolder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub includes_last: bool,
    pub next_offset: Option<u32>,
    pub total: Option<u32>,
}

impl Paging {
    pub(crate) fn of(root: &Element) -> Paging {
        Paging {
            includes_last: root
                .attr("IncludesLastItemInRange")
                .and_then(crate::xml::parse_bool)
                // Absent: assume the last page rather than loop forever.
                .unwrap_or(true),
            next_offset: root
                .attr("IndexedPagingOffset")
                .and_then(|s| s.parse().ok()),
            total: root.attr("TotalItemsInView").and_then(|s| s.parse().ok()),
        }
    }
}
