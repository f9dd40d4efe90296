//! Folder operations: GetFolder, FindFolder, CreateFolder, and the folder they return.

use crate::ns::{MESSAGES as M, TYPES as T};
use crate::soap::{self, ResponseError, SoapError};
use crate::types::{FolderId, FolderRef, ItemId, Page, Paging};
use crate::xml::{Element, Writer};

/// What a folder response says about one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderInfo {
    pub id: FolderId,
    pub parent: Option<FolderId>,
    pub display_name: Option<String>,
    pub total_count: Option<u32>,
    pub unread_count: Option<u32>,
    pub child_folder_count: Option<u32>,
}

impl FolderInfo {
    /// Read a `t:Folder` (or `t:CalendarFolder`, `t:SearchFolder`, …).
    pub fn from_element(f: &Element) -> Result<FolderInfo, SoapError> {
        let id = f
            .child(T, "FolderId")
            .ok_or_else(|| SoapError::Missing(format!("{}/t:FolderId", f.qname())))
            .and_then(ItemId::from_element)?;
        let num = |n: &str| f.child_text(T, n).and_then(|s| s.trim().parse().ok());
        Ok(FolderInfo {
            id,
            parent: f
                .child(T, "ParentFolderId")
                .map(ItemId::from_element)
                .transpose()?,
            display_name: f.child_text(T, "DisplayName").map(str::to_string),
            total_count: num("TotalCount"),
            unread_count: num("UnreadCount"),
            child_folder_count: num("ChildFolderCount"),
        })
    }
}

fn folder_shape(w: &mut Writer) {
    w.open("m:FolderShape", &[])
        .text_el("t:BaseShape", "IdOnly")
        .open("t:AdditionalProperties", &[]);
    for f in [
        "folder:DisplayName",
        "folder:TotalCount",
        "folder:UnreadCount",
        "folder:ChildFolderCount",
        "folder:ParentFolderId",
    ] {
        w.empty("t:FieldURI", &[("FieldURI", f)]);
    }
    w.close("t:AdditionalProperties").close("m:FolderShape");
}

fn folders_of(msg: &Element) -> Result<Vec<FolderInfo>, SoapError> {
    msg.child(M, "Folders")
        .map(|fs| fs.children.iter().map(FolderInfo::from_element).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// `m:GetFolder` for one or more folders.
#[derive(Debug, Clone)]
pub struct GetFolder {
    pub folders: Vec<FolderRef>,
}

impl GetFolder {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("m:GetFolder", &[]);
        folder_shape(&mut w);
        w.open("m:FolderIds", &[]);
        for f in &self.folders {
            f.write(&mut w);
        }
        w.close("m:FolderIds").close("m:GetFolder");
        w.finish()
    }

    /// One result per requested folder.
    pub fn parse(
        &self,
        body: &Element,
    ) -> Result<Vec<Result<FolderInfo, ResponseError>>, SoapError> {
        let msgs = soap::expect_count(soap::messages(body, "GetFolder")?, self.folders.len())?;
        msgs.into_iter()
            .map(|m| match m {
                Ok(m) => folders_of(m)?
                    .into_iter()
                    .next()
                    .map(Ok)
                    .ok_or_else(|| SoapError::Missing("m:Folders/t:Folder".into())),
                Err(e) => Ok(Err(e)),
            })
            .collect()
    }
}

/// `Traversal` of FindFolder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traversal {
    Shallow,
    Deep,
}

/// `m:FindFolder`: child folders of a folder, optionally only those with a display name.
#[derive(Debug, Clone)]
pub struct FindFolder {
    pub parent: FolderRef,
    pub traversal: Traversal,
    pub display_name: Option<String>,
    pub page: Page,
}

/// One page of FindFolder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPage {
    pub folders: Vec<FolderInfo>,
    pub paging: Paging,
}

impl FindFolder {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        let trav = match self.traversal {
            Traversal::Shallow => "Shallow",
            Traversal::Deep => "Deep",
        };
        w.open("m:FindFolder", &[("Traversal", trav)]);
        folder_shape(&mut w);
        w.empty(
            "m:IndexedPageFolderView",
            &[
                ("MaxEntriesReturned", &self.page.max_entries.to_string()),
                ("Offset", &self.page.offset.to_string()),
                ("BasePoint", "Beginning"),
            ],
        );
        if let Some(name) = &self.display_name {
            w.open("m:Restriction", &[])
                .open("t:IsEqualTo", &[])
                .empty("t:FieldURI", &[("FieldURI", "folder:DisplayName")])
                .open("t:FieldURIOrConstant", &[])
                .empty("t:Constant", &[("Value", name)])
                .close("t:FieldURIOrConstant")
                .close("t:IsEqualTo")
                .close("m:Restriction");
        }
        w.open("m:ParentFolderIds", &[]);
        self.parent.write(&mut w);
        w.close("m:ParentFolderIds").close("m:FindFolder");
        w.finish()
    }

    pub fn parse(body: &Element) -> Result<Result<FolderPage, ResponseError>, SoapError> {
        let m = match soap::single(body, "FindFolder")? {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let root = m
            .child(M, "RootFolder")
            .ok_or_else(|| SoapError::Missing("m:RootFolder".into()))?;
        let folders = root
            .child(T, "Folders")
            .map(|fs| fs.children.iter().map(FolderInfo::from_element).collect())
            .unwrap_or_else(|| Ok(Vec::new()))?;
        Ok(Ok(FolderPage {
            folders,
            paging: Paging::of(root),
        }))
    }
}

/// `m:CreateFolder`: mail folders (`IPF.Note`) under a parent.
#[derive(Debug, Clone)]
pub struct CreateFolder {
    pub parent: FolderRef,
    pub names: Vec<String>,
}

impl CreateFolder {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("m:CreateFolder", &[]).open("m:ParentFolderId", &[]);
        self.parent.write(&mut w);
        w.close("m:ParentFolderId").open("m:Folders", &[]);
        for n in &self.names {
            w.open("t:Folder", &[])
                .text_el("t:FolderClass", "IPF.Note")
                .text_el("t:DisplayName", n)
                .close("t:Folder");
        }
        w.close("m:Folders").close("m:CreateFolder");
        w.finish()
    }

    /// One new folder id per name (`ErrorFolderExists` when the name is taken).
    pub fn parse(&self, body: &Element) -> Result<Vec<Result<FolderId, ResponseError>>, SoapError> {
        let msgs = soap::expect_count(soap::messages(body, "CreateFolder")?, self.names.len())?;
        msgs.into_iter()
            .map(|m| match m {
                Ok(m) => folders_of(m)?
                    .into_iter()
                    .next()
                    .map(|f| Ok(f.id))
                    .ok_or_else(|| SoapError::Missing("m:Folders/t:Folder".into())),
                Err(e) => Ok(Err(e)),
            })
            .collect()
    }
}
