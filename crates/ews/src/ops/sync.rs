//! SyncFolderItems: what changed in a folder since a sync state (catch-up after a restart).

use crate::ns::{MESSAGES as M, TYPES as T};
use crate::soap::{self, ResponseError, SoapError};
use crate::types::{FolderRef, ItemId};
use crate::xml::{Element, Writer, parse_bool};

/// `m:SyncFolderItems`
#[derive(Debug, Clone)]
pub struct SyncFolderItems {
    pub folder: FolderRef,
    /// None on the first call.
    pub sync_state: Option<String>,
    /// 1..=512
    pub max_changes: u32,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create(ItemId),
    Update(ItemId),
    Delete(ItemId),
    ReadFlag { item: ItemId, is_read: bool },
}

/// One page of changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPage {
    pub sync_state: String,
    pub includes_last: bool,
    pub changes: Vec<Change>,
}

impl SyncFolderItems {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("m:SyncFolderItems", &[])
            .open("m:ItemShape", &[])
            .text_el("t:BaseShape", "IdOnly")
            .close("m:ItemShape")
            .open("m:SyncFolderId", &[]);
        self.folder.write(&mut w);
        w.close("m:SyncFolderId");
        if let Some(s) = &self.sync_state {
            w.text_el("m:SyncState", s);
        }
        w.text_el(
            "m:MaxChangesReturned",
            &self.max_changes.clamp(1, 512).to_string(),
        )
        .close("m:SyncFolderItems");
        w.finish()
    }

    pub fn parse(body: &Element) -> Result<Result<SyncPage, ResponseError>, SoapError> {
        let m = match soap::single(body, "SyncFolderItems")? {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let sync_state = m
            .child_text(M, "SyncState")
            .map(|s| s.trim().to_string())
            .ok_or_else(|| SoapError::Missing("m:SyncState".into()))?;
        let includes_last = m
            .child_text(M, "IncludesLastItemInRange")
            .and_then(parse_bool)
            .unwrap_or(true);
        let mut changes = Vec::new();
        if let Some(cs) = m.child(M, "Changes") {
            for c in &cs.children {
                let id_in_item = || -> Result<ItemId, SoapError> {
                    c.children
                        .first()
                        .and_then(|it| it.child(T, "ItemId"))
                        .ok_or_else(|| SoapError::Missing(format!("{}/*/t:ItemId", c.qname())))
                        .and_then(ItemId::from_element)
                };
                let direct_id = || -> Result<ItemId, SoapError> {
                    c.child(T, "ItemId")
                        .ok_or_else(|| SoapError::Missing(format!("{}/t:ItemId", c.qname())))
                        .and_then(ItemId::from_element)
                };
                changes.push(match c.name.as_str() {
                    "Create" => Change::Create(id_in_item()?),
                    "Update" => Change::Update(id_in_item()?),
                    "Delete" => Change::Delete(direct_id()?),
                    "ReadFlagChange" => Change::ReadFlag {
                        item: direct_id()?,
                        is_read: c
                            .child_text(T, "IsRead")
                            .and_then(parse_bool)
                            .unwrap_or(false),
                    },
                    _ => continue,
                });
            }
        }
        Ok(Ok(SyncPage {
            sync_state,
            includes_last,
            changes,
        }))
    }
}
