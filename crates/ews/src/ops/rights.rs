//! Who else holds rights on a mailbox, as far as EWS shows it (read-only): a folder's
//! permission set (`GetFolder` with `folder:PermissionSet`) and the mailbox's delegates
//! (`GetDelegate`). Full Access and application access policies are not visible through EWS.

use crate::ns::{MESSAGES as M, TYPES as T};
use crate::soap::{self, ResponseError, SoapError};
use crate::types::FolderRef;
use crate::xml::{Element, Writer, parse_bool};

/// `t:UserId`: whom an entry names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserId {
    pub sid: Option<String>,
    pub primary_smtp_address: Option<String>,
    pub display_name: Option<String>,
    /// `Default` (every authenticated user not listed) or `Anonymous`.
    pub distinguished_user: Option<String>,
}

impl UserId {
    fn from_element(e: &Element) -> UserId {
        let text = |n: &str| {
            e.child_text(T, n)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        UserId {
            sid: text("SID"),
            primary_smtp_address: text("PrimarySmtpAddress"),
            display_name: text("DisplayName"),
            distinguished_user: text("DistinguishedUser"),
        }
    }

    /// A short human name: display name and address, else the distinguished user, else the SID.
    pub fn describe(&self) -> String {
        match (
            &self.display_name,
            &self.primary_smtp_address,
            &self.distinguished_user,
            &self.sid,
        ) {
            (Some(n), Some(a), _, _) => format!("{n} <{a}>"),
            (None, Some(a), _, _) => a.clone(),
            (Some(n), None, _, _) => n.clone(),
            (None, None, Some(d), _) => d.clone(),
            (None, None, None, Some(s)) => format!("SID {s}"),
            _ => "an unnamed entry".into(),
        }
    }
}

/// One `t:Permission` of a folder's `t:PermissionSet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPermission {
    pub user: UserId,
    pub can_create_items: Option<bool>,
    pub can_create_subfolders: Option<bool>,
    pub is_folder_owner: Option<bool>,
    pub is_folder_visible: Option<bool>,
    /// `None`, `Owned`, `All`.
    pub edit_items: Option<String>,
    pub delete_items: Option<String>,
    /// `None`, `FullDetails`.
    pub read_items: Option<String>,
    /// `None`, `Owner`, `PublishingEditor`, `Editor`, `PublishingAuthor`, `Author`,
    /// `NoneditingAuthor`, `Reviewer`, `Contributor`, `Custom`.
    pub level: String,
}

/// The permission levels that include creating items (the roles of MS-OXCPERM: every role
/// from Contributor up; Reviewer and None do not).
pub const CREATING_LEVELS: &[&str] = &[
    "Owner",
    "PublishingEditor",
    "Editor",
    "PublishingAuthor",
    "Author",
    "NoneditingAuthor",
    "Contributor",
];

impl FolderPermission {
    /// Whether this entry may create items in the folder: `CanCreateItems`, or a level that
    /// implies it. Unknown is read as "may" (fail closed).
    pub fn can_create(&self) -> bool {
        if self.can_create_items == Some(true) || self.is_folder_owner == Some(true) {
            // A folder owner may grant itself any right.
            return true;
        }
        match self.level.as_str() {
            l if CREATING_LEVELS.contains(&l) => true,
            "None" | "Reviewer" => false,
            "Custom" => self.can_create_items != Some(false),
            _ => true,
        }
    }

    fn from_element(p: &Element) -> Result<FolderPermission, SoapError> {
        let user = p
            .child(T, "UserId")
            .map(UserId::from_element)
            .ok_or_else(|| SoapError::Missing("t:Permission/t:UserId".into()))?;
        let b = |n: &str| p.child_text(T, n).and_then(parse_bool);
        let s = |n: &str| p.child_text(T, n).map(|v| v.trim().to_string());
        Ok(FolderPermission {
            user,
            can_create_items: b("CanCreateItems"),
            can_create_subfolders: b("CanCreateSubFolders"),
            is_folder_owner: b("IsFolderOwner"),
            is_folder_visible: b("IsFolderVisible"),
            edit_items: s("EditItems"),
            delete_items: s("DeleteItems"),
            read_items: s("ReadItems"),
            level: s("PermissionLevel")
                .ok_or_else(|| SoapError::Missing("t:Permission/t:PermissionLevel".into()))?,
        })
    }
}

/// `m:GetFolder` asking for one folder's `folder:PermissionSet` (and its display name).
#[derive(Debug, Clone)]
pub struct GetFolderPermissions {
    pub folder: FolderRef,
}

impl GetFolderPermissions {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("m:GetFolder", &[])
            .open("m:FolderShape", &[])
            .text_el("t:BaseShape", "IdOnly")
            .open("t:AdditionalProperties", &[]);
        for f in ["folder:DisplayName", "folder:PermissionSet"] {
            w.empty("t:FieldURI", &[("FieldURI", f)]);
        }
        w.close("t:AdditionalProperties")
            .close("m:FolderShape")
            .open("m:FolderIds", &[]);
        self.folder.write(&mut w);
        w.close("m:FolderIds").close("m:GetFolder");
        w.finish()
    }

    /// The folder's permission entries. A folder answered without `t:PermissionSet` is an
    /// error: the caller must not read "nobody" from an absent set.
    pub fn parse(
        body: &Element,
    ) -> Result<Result<Vec<FolderPermission>, ResponseError>, SoapError> {
        let m = match soap::single(body, "GetFolder")? {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let folder = m
            .child(M, "Folders")
            .and_then(|fs| fs.children.first())
            .ok_or_else(|| SoapError::Missing("m:Folders/t:Folder".into()))?;
        let set = folder
            .child(T, "PermissionSet")
            .ok_or_else(|| SoapError::Missing(format!("{}/t:PermissionSet", folder.qname())))?;
        let perms = set
            .child(T, "Permissions")
            .ok_or_else(|| SoapError::Missing("t:PermissionSet/t:Permissions".into()))?;
        let out = perms
            .children_named(T, "Permission")
            .map(FolderPermission::from_element)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ok(out))
    }
}

/// One delegate of a mailbox (`t:DelegateUser`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegateUser {
    pub user: UserId,
    /// `t:DelegatePermissions/t:InboxFolderPermissionLevel`: `None`, `Editor`, `Reviewer`,
    /// `Author`, `Custom`.
    pub inbox_level: Option<String>,
    pub calendar_level: Option<String>,
}

/// `m:GetDelegate` for a mailbox, with the delegates' folder permissions.
#[derive(Debug, Clone)]
pub struct GetDelegate {
    pub mailbox: String,
}

impl GetDelegate {
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("m:GetDelegate", &[("IncludePermissions", "true")])
            .open("m:Mailbox", &[])
            .text_el("t:EmailAddress", &self.mailbox)
            .close("m:Mailbox")
            .close("m:GetDelegate");
        w.finish()
    }

    /// The delegates. `ErrorDelegateNoUser` (no delegate) answers an empty list; any other
    /// error of the response, or of one delegate's message, is returned.
    pub fn parse(body: &Element) -> Result<Result<Vec<DelegateUser>, ResponseError>, SoapError> {
        if !body.is(M, "GetDelegateResponse") {
            return Err(SoapError::Unexpected {
                expected: "m:GetDelegateResponse".into(),
                found: body.qname(),
            });
        }
        match soap::message_result(body) {
            Ok(_) => {}
            Err(e) if e.code == "ErrorDelegateNoUser" => return Ok(Ok(Vec::new())),
            Err(e) => return Ok(Err(e)),
        }
        let mut out = Vec::new();
        let Some(list) = body.child(M, "ResponseMessages") else {
            return Ok(Ok(out));
        };
        for m in &list.children {
            if !m.is(M, "DelegateUserResponseMessageType") {
                return Err(SoapError::Unexpected {
                    expected: "m:DelegateUserResponseMessageType".into(),
                    found: m.qname(),
                });
            }
            let m = match soap::message_result(m) {
                Ok(m) => m,
                Err(e) if e.code == "ErrorDelegateNoUser" => continue,
                Err(e) => return Ok(Err(e)),
            };
            // `m:DelegateUser` in the schema (messages.xsd declares it).
            let Some(d) = m
                .child(M, "DelegateUser")
                .or_else(|| m.child(T, "DelegateUser"))
            else {
                continue;
            };
            let user = d
                .child(T, "UserId")
                .map(UserId::from_element)
                .ok_or_else(|| SoapError::Missing("t:DelegateUser/t:UserId".into()))?;
            let perms = d.child(T, "DelegatePermissions");
            let level = |n: &str| {
                perms
                    .and_then(|p| p.child_text(T, n))
                    .map(|s| s.trim().to_string())
            };
            out.push(DelegateUser {
                user,
                inbox_level: level("InboxFolderPermissionLevel"),
                calendar_level: level("CalendarFolderPermissionLevel"),
            });
        }
        Ok(Ok(out))
    }
}
