//! Who else holds rights on a mailbox of the stand-in: folder permissions (`t:PermissionSet`
//! of GetFolder, when asked for `folder:PermissionSet`) and delegates (GetDelegate), from the
//! scenario's `[[ews.folder_permissions]]`, `[[ews.delegates]]` and `get_delegate_denied`.
//! Nothing here changes them: the stand-in models reading only (ASSUMPTIONS.md E24).

use roxmltree::Node;
use serde::{Deserialize, Serialize};

use super::ops::{Ctx, OpResult};
use super::store::{Folder, Store};
use super::wire::{self, EwsErr, M, T, child, child_text, children, esc};

/// `[[ews.folder_permissions]]`: one entry of a folder's permissions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FolderPermissionSpec {
    /// The mailbox (SMTP address) holding the folder.
    pub mailbox: String,
    /// The folder: a distinguished id (`inbox`) or a display name.
    #[serde(default = "default_folder")]
    pub folder: String,
    /// Whom the entry names: an SMTP address, or `Default` / `Anonymous`.
    pub user: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// `None`, `Owner`, `PublishingEditor`, `Editor`, `PublishingAuthor`, `Author`,
    /// `NoneditingAuthor`, `Reviewer`, `Contributor`, or `FolderVisible` (shown as `Custom`).
    pub level: String,
}

/// `[[ews.delegates]]`: one delegate of a mailbox.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DelegateSpec {
    pub mailbox: String,
    /// The delegate's SMTP address.
    pub user: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// Permission level on the Inbox: `None`, `Reviewer`, `Author`, `Editor`.
    #[serde(default = "default_delegate_level")]
    pub inbox: String,
}

fn default_folder() -> String {
    "inbox".into()
}

fn default_delegate_level() -> String {
    "Editor".into()
}

const LEVELS: &[&str] = &[
    "None",
    "Owner",
    "PublishingEditor",
    "Editor",
    "PublishingAuthor",
    "Author",
    "NoneditingAuthor",
    "Reviewer",
    "Contributor",
    "FolderVisible",
];
const DELEGATE_LEVELS: &[&str] = &["None", "Reviewer", "Author", "Editor"];

/// The rights part of the store.
#[derive(Debug, Clone, Default)]
pub struct Rights {
    pub folder_permissions: Vec<FolderPermissionSpec>,
    pub delegates: Vec<DelegateSpec>,
    /// Mailboxes whose GetDelegate answers `ErrorAccessDenied`.
    pub get_delegate_denied: Vec<String>,
}

impl Rights {
    pub fn new(
        folder_permissions: &[FolderPermissionSpec],
        delegates: &[DelegateSpec],
        denied: &[String],
    ) -> anyhow::Result<Self> {
        for p in folder_permissions {
            if !LEVELS.contains(&p.level.as_str()) {
                anyhow::bail!(
                    "ews.folder_permissions: unknown level {:?} for {} ({})",
                    p.level,
                    p.user,
                    LEVELS.join(", ")
                );
            }
        }
        for d in delegates {
            if !DELEGATE_LEVELS.contains(&d.inbox.as_str()) {
                anyhow::bail!(
                    "ews.delegates: unknown inbox level {:?} for {} ({})",
                    d.inbox,
                    d.user,
                    DELEGATE_LEVELS.join(", ")
                );
            }
        }
        Ok(Rights {
            folder_permissions: folder_permissions.to_vec(),
            delegates: delegates.to_vec(),
            get_delegate_denied: denied.iter().map(|m| m.to_ascii_lowercase()).collect(),
        })
    }
}

/// The role table of MS-OXCPERM as EWS shows it: (CanCreateItems, CanCreateSubFolders,
/// IsFolderOwner, IsFolderVisible, IsFolderContact, EditItems, DeleteItems, ReadItems, level).
fn role(level: &str) -> (bool, bool, bool, bool, bool, &str, &str, &str, &str) {
    match level {
        "Owner" => (
            true,
            true,
            true,
            true,
            true,
            "All",
            "All",
            "FullDetails",
            "Owner",
        ),
        "PublishingEditor" => (
            true,
            true,
            false,
            true,
            false,
            "All",
            "All",
            "FullDetails",
            "PublishingEditor",
        ),
        "Editor" => (
            true,
            false,
            false,
            true,
            false,
            "All",
            "All",
            "FullDetails",
            "Editor",
        ),
        "PublishingAuthor" => (
            true,
            true,
            false,
            true,
            false,
            "Owned",
            "Owned",
            "FullDetails",
            "PublishingAuthor",
        ),
        "Author" => (
            true,
            false,
            false,
            true,
            false,
            "Owned",
            "Owned",
            "FullDetails",
            "Author",
        ),
        "NoneditingAuthor" => (
            true,
            false,
            false,
            true,
            false,
            "None",
            "Owned",
            "FullDetails",
            "NoneditingAuthor",
        ),
        "Reviewer" => (
            false,
            false,
            false,
            true,
            false,
            "None",
            "None",
            "FullDetails",
            "Reviewer",
        ),
        "Contributor" => (
            true,
            false,
            false,
            true,
            false,
            "None",
            "None",
            "None",
            "Contributor",
        ),
        "FolderVisible" => (
            false, false, false, true, false, "None", "None", "None", "Custom",
        ),
        _ => (
            false, false, false, false, false, "None", "None", "None", "None",
        ),
    }
}

fn user_id(user: &str, display_name: Option<&str>) -> String {
    if user == "Default" || user == "Anonymous" {
        return format!("<t:UserId><t:DistinguishedUser>{user}</t:DistinguishedUser></t:UserId>");
    }
    let name = display_name
        .map(|n| format!("<t:DisplayName>{}</t:DisplayName>", esc(n)))
        .unwrap_or_default();
    format!(
        "<t:UserId><t:PrimarySmtpAddress>{}</t:PrimarySmtpAddress>{name}</t:UserId>",
        esc(user)
    )
}

fn permission_xml(user: &str, display_name: Option<&str>, level: &str) -> String {
    let (create, sub, owner, visible, contact, edit, delete, read, shown) = role(level);
    format!(
        concat!(
            "<t:Permission>{uid}<t:CanCreateItems>{create}</t:CanCreateItems>",
            "<t:CanCreateSubFolders>{sub}</t:CanCreateSubFolders><t:IsFolderOwner>{owner}</t:IsFolderOwner>",
            "<t:IsFolderVisible>{visible}</t:IsFolderVisible><t:IsFolderContact>{contact}</t:IsFolderContact>",
            "<t:EditItems>{edit}</t:EditItems><t:DeleteItems>{delete}</t:DeleteItems>",
            "<t:ReadItems>{read}</t:ReadItems><t:PermissionLevel>{shown}</t:PermissionLevel></t:Permission>"
        ),
        uid = user_id(user, display_name),
        create = create,
        sub = sub,
        owner = owner,
        visible = visible,
        contact = contact,
        edit = edit,
        delete = delete,
        read = read,
        shown = shown,
    )
}

/// Whether the GetFolder request asks for `folder:PermissionSet`.
pub fn asks_permission_set(op: Node<'_, '_>) -> bool {
    op.descendants().any(|n| {
        n.is_element()
            && n.tag_name().name() == "FieldURI"
            && n.attribute("FieldURI") == Some("folder:PermissionSet")
    })
}

/// `t:PermissionSet` of a folder: the scenario's entries for it, with `Default` and
/// `Anonymous` at `None` unless the scenario names them.
pub fn permission_set(r: &Rights, mailbox: &str, f: &Folder) -> String {
    let mine: Vec<&FolderPermissionSpec> = r
        .folder_permissions
        .iter()
        .filter(|p| p.mailbox.eq_ignore_ascii_case(mailbox))
        .filter(|p| {
            f.distinguished
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(&p.folder))
                || f.name.eq_ignore_ascii_case(&p.folder)
        })
        .collect();
    let mut out = String::from("<t:PermissionSet><t:Permissions>");
    for builtin in ["Default", "Anonymous"] {
        if !mine.iter().any(|p| p.user == builtin) {
            out.push_str(&permission_xml(builtin, None, "None"));
        }
    }
    for p in mine {
        out.push_str(&permission_xml(
            &p.user,
            p.display_name.as_deref(),
            &p.level,
        ));
    }
    out.push_str("</t:Permissions></t:PermissionSet>");
    out
}

/// The outer `m:GetDelegateResponse` (it is itself a response message).
fn delegate_response(class: &str, code: &str, text: Option<&str>, inner: &str) -> String {
    let text = text
        .map(|t| format!("<m:MessageText>{}</m:MessageText>", esc(t)))
        .unwrap_or_default();
    let link = if class == "Error" {
        "<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>"
    } else {
        ""
    };
    format!(
        r#"<m:GetDelegateResponse xmlns:m="{M}" xmlns:t="{T}" ResponseClass="{class}">{text}<m:ResponseCode>{code}</m:ResponseCode>{link}{inner}</m:GetDelegateResponse>"#
    )
}

/// `m:GetDelegate`: the delegates of the named mailbox (all, or those in `m:UserIds`).
pub fn get_delegate(st: &Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let addr = child(op, M, "Mailbox")
        .and_then(|m| child_text(m, T, "EmailAddress"))
        .map(|a| a.trim().to_ascii_lowercase())
        .unwrap_or_else(|| ctx.mailbox.clone());
    if st.mailbox(&addr).is_none() {
        let e = EwsErr::no_mailbox(&addr);
        return Ok(delegate_response("Error", e.code, Some(&e.text), ""));
    }
    if st.rights.get_delegate_denied.contains(&addr) {
        return Ok(delegate_response(
            "Error",
            "ErrorAccessDenied",
            Some("Access is denied. Check credentials and try again."),
            "",
        ));
    }
    let with_perms = op
        .attribute("IncludePermissions")
        .and_then(wire::boolean)
        .unwrap_or(false);
    let mine: Vec<&DelegateSpec> = st
        .rights
        .delegates
        .iter()
        .filter(|d| d.mailbox.eq_ignore_ascii_case(&addr))
        .collect();
    let wanted: Option<Vec<String>> = child(op, M, "UserIds").map(|ids| {
        children(ids, T, "UserId")
            .filter_map(|u| child_text(u, T, "PrimarySmtpAddress"))
            .map(|a| a.trim().to_ascii_lowercase())
            .collect()
    });
    let one = |d: &DelegateSpec| {
        let perms = if with_perms {
            format!(
                "<t:DelegatePermissions><t:CalendarFolderPermissionLevel>None</t:CalendarFolderPermissionLevel><t:TasksFolderPermissionLevel>None</t:TasksFolderPermissionLevel><t:InboxFolderPermissionLevel>{}</t:InboxFolderPermissionLevel><t:ContactsFolderPermissionLevel>None</t:ContactsFolderPermissionLevel><t:NotesFolderPermissionLevel>None</t:NotesFolderPermissionLevel><t:JournalFolderPermissionLevel>None</t:JournalFolderPermissionLevel></t:DelegatePermissions>",
                d.inbox
            )
        } else {
            String::new()
        };
        format!(
            "<m:DelegateUserResponseMessageType ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:DelegateUser>{}{perms}<t:ReceiveCopiesOfMeetingMessages>false</t:ReceiveCopiesOfMeetingMessages><t:ViewPrivateItems>false</t:ViewPrivateItems></m:DelegateUser></m:DelegateUserResponseMessageType>",
            user_id(&d.user, d.display_name.as_deref())
        )
    };
    let msgs: Vec<String> = match &wanted {
        None => mine.iter().map(|d| one(d)).collect(),
        Some(ids) => ids
            .iter()
            .map(|id| match mine.iter().find(|d| d.user.eq_ignore_ascii_case(id)) {
                Some(d) => one(d),
                None => "<m:DelegateUserResponseMessageType ResponseClass=\"Error\"><m:MessageText>The user is not a delegate.</m:MessageText><m:ResponseCode>ErrorNotDelegate</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:DelegateUserResponseMessageType>".to_string(),
            })
            .collect(),
    };
    let inner = if msgs.is_empty() {
        String::new()
    } else {
        format!("<m:ResponseMessages>{}</m:ResponseMessages>", msgs.concat())
    };
    Ok(delegate_response(
        "Success",
        "NoError",
        None,
        &format!("{inner}<m:DeliverMeetingRequests>DelegatesAndMe</m:DeliverMeetingRequests>"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(user: &str, level: &str) -> FolderPermissionSpec {
        FolderPermissionSpec {
            mailbox: "bot@example.com".into(),
            folder: "inbox".into(),
            user: user.into(),
            display_name: None,
            level: level.into(),
        }
    }

    #[test]
    fn an_unknown_level_is_refused_at_load() {
        let e = Rights::new(&[spec("a@example.com", "Writer")], &[], &[]).expect_err("refused");
        assert!(e.to_string().contains("Writer"), "{e}");
    }

    #[test]
    fn default_and_anonymous_are_none_unless_named() {
        let f = Folder {
            id: "F".into(),
            change: 1,
            parent: None,
            name: "Inbox".into(),
            class: None,
            distinguished: Some("inbox".into()),
        };
        let r = Rights::default();
        let x = permission_set(&r, "bot@example.com", &f);
        assert_eq!(
            x.matches("<t:PermissionLevel>None</t:PermissionLevel>")
                .count(),
            2
        );
        assert!(!x.contains("<t:CanCreateItems>true"));
        let r = Rights::new(
            &[
                spec("Default", "FolderVisible"),
                spec("c@example.com", "Contributor"),
            ],
            &[],
            &[],
        )
        .expect("rights");
        let x = permission_set(&r, "BOT@example.com", &f);
        assert_eq!(x.matches("<t:Permission>").count(), 3, "{x}");
        assert!(x.contains(
            "<t:DistinguishedUser>Default</t:DistinguishedUser></t:UserId><t:CanCreateItems>false"
        ));
        assert!(x.contains("<t:PrimarySmtpAddress>c@example.com</t:PrimarySmtpAddress></t:UserId><t:CanCreateItems>true"));
    }
}
