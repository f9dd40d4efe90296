//! Item operations: FindItem (unread, paged), GetItem (MIME, headers, sender), UpdateItem
//! (read flag), MoveItem (new id), CreateItem (send and save).

use base64::Engine as _;

use crate::ns::{MESSAGES as M, TYPES as T};
use crate::soap::{self, ResponseError, SoapError};
use crate::types::{FolderRef, ItemId, Mailbox, Page, Paging, item_ids};
use crate::xml::{Element, Writer, parse_bool};

/// MAPI property tag of `PR_TRANSPORT_MESSAGE_HEADERS`: the full header block as received.
pub const PR_TRANSPORT_MESSAGE_HEADERS: u32 = 0x007D;

/// Name of the custom (PublicStrings) string property a sent mail carries so that it can be
/// found again in the mailbox: whether a mail was sent is then a question the server answers
/// (`FindItem` with `SendKey`), not a guess after a crash.
pub const SEND_KEY_PROPERTY: &str = "PamApprovalSendKey";

fn send_key_uri(w: &mut Writer) {
    w.empty(
        "t:ExtendedFieldURI",
        &[
            ("DistinguishedPropertySetId", "PublicStrings"),
            ("PropertyName", SEND_KEY_PROPERTY),
            ("PropertyType", "String"),
        ],
    );
}

/// Which items a FindItem returns (none: every item of the folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemFilter {
    /// Unread items only (`message:IsRead` equal to false).
    Unread,
    /// Items whose `SEND_KEY_PROPERTY` equals this key.
    SendKey(String),
}

/// `m:FindItem` in one folder, oldest first, ids only.
#[derive(Debug, Clone)]
pub struct FindItem {
    pub folder: FolderRef,
    pub filter: Option<ItemFilter>,
    pub page: Page,
}

/// One page of FindItem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPage {
    pub items: Vec<ItemId>,
    pub paging: Paging,
}

impl FindItem {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("m:FindItem", &[("Traversal", "Shallow")])
            .open("m:ItemShape", &[])
            .text_el("t:BaseShape", "IdOnly")
            .close("m:ItemShape")
            .empty(
                "m:IndexedPageItemView",
                &[
                    ("MaxEntriesReturned", &self.page.max_entries.to_string()),
                    ("Offset", &self.page.offset.to_string()),
                    ("BasePoint", "Beginning"),
                ],
            );
        if let Some(filter) = &self.filter {
            w.open("m:Restriction", &[]).open("t:IsEqualTo", &[]);
            let value = match filter {
                ItemFilter::Unread => {
                    w.empty("t:FieldURI", &[("FieldURI", "message:IsRead")]);
                    "false"
                }
                ItemFilter::SendKey(key) => {
                    send_key_uri(&mut w);
                    key.as_str()
                }
            };
            w.open("t:FieldURIOrConstant", &[])
                .empty("t:Constant", &[("Value", value)])
                .close("t:FieldURIOrConstant")
                .close("t:IsEqualTo")
                .close("m:Restriction");
        }
        w.open("m:SortOrder", &[])
            .open("t:FieldOrder", &[("Order", "Ascending")])
            .empty("t:FieldURI", &[("FieldURI", "item:DateTimeReceived")])
            .close("t:FieldOrder")
            .close("m:SortOrder")
            .open("m:ParentFolderIds", &[]);
        self.folder.write(&mut w);
        w.close("m:ParentFolderIds").close("m:FindItem");
        w.finish()
    }

    pub fn parse(body: &Element) -> Result<Result<ItemPage, ResponseError>, SoapError> {
        let m = match soap::single(body, "FindItem")? {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let root = m
            .child(M, "RootFolder")
            .ok_or_else(|| SoapError::Missing("m:RootFolder".into()))?;
        let items = match root.child(T, "Items") {
            Some(items) => item_ids(items)?,
            None => Vec::new(),
        };
        Ok(Ok(ItemPage {
            items,
            paging: Paging::of(root),
        }))
    }
}

/// `m:GetItem` for whole messages: MIME, both header views, sender fields, read flag.
#[derive(Debug, Clone)]
pub struct GetItem {
    pub ids: Vec<ItemId>,
}

/// One message as GetItem returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageData {
    pub id: Option<ItemId>,
    pub parent_folder: Option<ItemId>,
    pub item_class: Option<String>,
    pub subject: Option<String>,
    /// The RFC 5322 message (`t:MimeContent`, base64-decoded).
    pub mime: Option<Vec<u8>>,
    /// `t:InternetMessageHeaders` (a subset of the headers, per Microsoft).
    pub internet_headers: Vec<(String, String)>,
    /// `PR_TRANSPORT_MESSAGE_HEADERS`: the whole header block as received.
    pub transport_headers: Option<String>,
    pub from: Option<Mailbox>,
    pub sender: Option<Mailbox>,
    pub internet_message_id: Option<String>,
    pub is_read: Option<bool>,
    pub date_time_received: Option<String>,
}

impl GetItem {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("m:GetItem", &[])
            .open("m:ItemShape", &[])
            .text_el("t:BaseShape", "IdOnly")
            .text_el("t:IncludeMimeContent", "true")
            .text_el("t:BodyType", "Text")
            .open("t:AdditionalProperties", &[]);
        for f in [
            "item:ItemClass",
            "item:ParentFolderId",
            "item:Subject",
            "item:DateTimeReceived",
            "item:InternetMessageHeaders",
            "message:From",
            "message:Sender",
            "message:InternetMessageId",
            "message:IsRead",
        ] {
            w.empty("t:FieldURI", &[("FieldURI", f)]);
        }
        w.empty(
            "t:ExtendedFieldURI",
            &[("PropertyTag", "0x007D"), ("PropertyType", "String")],
        );
        w.close("t:AdditionalProperties")
            .close("m:ItemShape")
            .open("m:ItemIds", &[]);
        for id in &self.ids {
            id.write(&mut w, "t:ItemId");
        }
        w.close("m:ItemIds").close("m:GetItem");
        w.finish()
    }

    pub fn parse(
        &self,
        body: &Element,
    ) -> Result<Vec<Result<MessageData, ResponseError>>, SoapError> {
        let msgs = soap::expect_count(soap::messages(body, "GetItem")?, self.ids.len())?;
        msgs.into_iter()
            .map(|m| match m {
                Ok(m) => {
                    let item = m
                        .child(M, "Items")
                        .and_then(|i| i.children.first())
                        .ok_or_else(|| SoapError::Missing("m:Items/t:Message".into()))?;
                    message_data(item).map(Ok)
                }
                Err(e) => Ok(Err(e)),
            })
            .collect()
    }
}

fn message_data(it: &Element) -> Result<MessageData, SoapError> {
    let text = |n: &str| it.child_text(T, n).map(str::to_string);
    let mime = match it.child(T, "MimeContent") {
        Some(mc) => {
            let compact: String = mc.text.chars().filter(|c| !c.is_whitespace()).collect();
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .map_err(|e| SoapError::NotSoap(format!("t:MimeContent is not base64: {e}")))?,
            )
        }
        None => None,
    };
    let internet_headers = it
        .child(T, "InternetMessageHeaders")
        .map(|hs| {
            hs.children_named(T, "InternetMessageHeader")
                .map(|h| {
                    (
                        h.attr("HeaderName").unwrap_or("").to_string(),
                        h.text.clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let transport_headers = it
        .children_named(T, "ExtendedProperty")
        .find(|p| {
            p.child(T, "ExtendedFieldURI")
                .and_then(|u| u.attr("PropertyTag"))
                .and_then(parse_tag)
                == Some(PR_TRANSPORT_MESSAGE_HEADERS)
        })
        .and_then(|p| p.child_text(T, "Value"))
        .map(str::to_string);
    Ok(MessageData {
        id: it
            .child(T, "ItemId")
            .map(ItemId::from_element)
            .transpose()?,
        parent_folder: it
            .child(T, "ParentFolderId")
            .map(ItemId::from_element)
            .transpose()?,
        item_class: text("ItemClass"),
        subject: text("Subject"),
        mime,
        internet_headers,
        transport_headers,
        from: it.child(T, "From").and_then(Mailbox::from_wrapper),
        sender: it.child(T, "Sender").and_then(Mailbox::from_wrapper),
        internet_message_id: text("InternetMessageId"),
        is_read: it.child_text(T, "IsRead").and_then(parse_bool),
        date_time_received: text("DateTimeReceived"),
    })
}

/// `0x7d`, `0x007D` or `125`.
fn parse_tag(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `m:UpdateItem` setting `message:IsRead` on items.
#[derive(Debug, Clone)]
pub struct SetRead {
    pub items: Vec<ItemId>,
    pub read: bool,
}

impl SetRead {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open(
            "m:UpdateItem",
            &[
                ("ConflictResolution", "AutoResolve"),
                ("MessageDisposition", "SaveOnly"),
                ("SuppressReadReceipts", "true"),
            ],
        )
        .open("m:ItemChanges", &[]);
        let value = if self.read { "true" } else { "false" };
        for id in &self.items {
            w.open("t:ItemChange", &[]);
            id.write(&mut w, "t:ItemId");
            w.open("t:Updates", &[])
                .open("t:SetItemField", &[])
                .empty("t:FieldURI", &[("FieldURI", "message:IsRead")])
                .open("t:Message", &[])
                .text_el("t:IsRead", value)
                .close("t:Message")
                .close("t:SetItemField")
                .close("t:Updates")
                .close("t:ItemChange");
        }
        w.close("m:ItemChanges").close("m:UpdateItem");
        w.finish()
    }

    /// The item's id with its new change key, per item.
    pub fn parse(&self, body: &Element) -> Result<Vec<Result<ItemId, ResponseError>>, SoapError> {
        first_item_each(body, "UpdateItem", self.items.len())
    }
}

fn first_item_each(
    body: &Element,
    op: &str,
    n: usize,
) -> Result<Vec<Result<ItemId, ResponseError>>, SoapError> {
    let msgs = soap::expect_count(soap::messages(body, op)?, n)?;
    msgs.into_iter()
        .map(|m| match m {
            Ok(m) => {
                let items = m
                    .child(M, "Items")
                    .ok_or_else(|| SoapError::Missing("m:Items".into()))?;
                item_ids(items)?
                    .into_iter()
                    .next()
                    .map(Ok)
                    .ok_or_else(|| SoapError::Missing("m:Items/t:ItemId".into()))
            }
            Err(e) => Ok(Err(e)),
        })
        .collect()
}

/// `m:MoveItem` into a folder; the moved items get new ids.
#[derive(Debug, Clone)]
pub struct MoveItem {
    pub to: FolderRef,
    pub items: Vec<ItemId>,
}

impl MoveItem {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("m:MoveItem", &[]).open("m:ToFolderId", &[]);
        self.to.write(&mut w);
        w.close("m:ToFolderId").open("m:ItemIds", &[]);
        for id in &self.items {
            id.write(&mut w, "t:ItemId");
        }
        w.close("m:ItemIds")
            .text_el("m:ReturnNewItemIds", "true")
            .close("m:MoveItem");
        w.finish()
    }

    /// The new id of each moved item.
    pub fn parse(&self, body: &Element) -> Result<Vec<Result<ItemId, ResponseError>>, SoapError> {
        first_item_each(body, "MoveItem", self.items.len())
    }
}

/// `m:CreateItem` of a message that is sent (and saved to Sent Items when `save_copy`).
#[derive(Debug, Clone, Default)]
pub struct SendMessage {
    pub subject: String,
    pub text: String,
    /// When present, the body is sent as HTML (Exchange derives the text part).
    pub html: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// `SendAndSaveCopy` into `sentitems` of this mailbox (None: the caller's own).
    pub save_copy: bool,
    pub mailbox: Option<String>,
    /// Stored on the mail as `SEND_KEY_PROPERTY`, so that the saved copy can be found again.
    pub send_key: Option<String>,
    /// Internet headers the sent mail carries (name, value), e.g. `Auto-Submitted`: each is an
    /// extended property of the `InternetHeaders` property set on the created item, which
    /// Exchange writes into the header block of the mail it sends.
    pub headers: Vec<(String, String)>,
}

impl SendMessage {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        let disposition = if self.save_copy {
            "SendAndSaveCopy"
        } else {
            "SendOnly"
        };
        w.open("m:CreateItem", &[("MessageDisposition", disposition)]);
        if self.save_copy {
            w.open("m:SavedItemFolderId", &[]);
            FolderRef::distinguished("sentitems", self.mailbox.as_deref()).write(&mut w);
            w.close("m:SavedItemFolderId");
        }
        w.open("m:Items", &[])
            .open("t:Message", &[])
            .text_el("t:Subject", &self.subject);
        match &self.html {
            Some(html) => w.text_el_attrs("t:Body", &[("BodyType", "HTML")], html),
            None => w.text_el_attrs("t:Body", &[("BodyType", "Text")], &self.text),
        };
        if let Some(key) = &self.send_key {
            w.open("t:ExtendedProperty", &[]);
            send_key_uri(&mut w);
            w.text_el("t:Value", key).close("t:ExtendedProperty");
        }
        for (name, value) in &self.headers {
            w.open("t:ExtendedProperty", &[]);
            w.empty(
                "t:ExtendedFieldURI",
                &[
                    ("DistinguishedPropertySetId", "InternetHeaders"),
                    ("PropertyName", name.as_str()),
                    ("PropertyType", "String"),
                ],
            );
            w.text_el("t:Value", value).close("t:ExtendedProperty");
        }
        for (tag, list) in [("t:ToRecipients", &self.to), ("t:CcRecipients", &self.cc)] {
            if list.is_empty() {
                continue;
            }
            w.open(tag, &[]);
            for a in list {
                Mailbox::write_address(&mut w, a);
            }
            w.close(tag);
        }
        w.close("t:Message").close("m:Items").close("m:CreateItem");
        w.finish()
    }

    pub fn parse(body: &Element) -> Result<Result<(), ResponseError>, SoapError> {
        Ok(soap::single(body, "CreateItem")?.map(|_| ()))
    }
}
