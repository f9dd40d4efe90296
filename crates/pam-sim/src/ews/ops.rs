//! The EWS operations of the stand-in, over the store: each takes the operation element of the
//! request and answers the response element (or a SOAP fault).

use std::collections::BTreeMap;

use base64::Engine as _;
use roxmltree::Node;

use super::mime;
use super::store::{Folder, Item, Mbx, Sent, Store, Sub, Tombstone};
use super::wire::{
    self, EwsErr, M, T, boolean, child, child_text, children, datetime, elements, esc, id_el,
};

/// Who is calling and which mailbox is theirs by default.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Lowercase address of the mailbox used when a request names none.
    pub mailbox: String,
    pub now_ms: i64,
}

pub type OpResult = Result<String, EwsErr>;

/// Resolve `t:DistinguishedFolderId` / `t:FolderId` to (mailbox key, folder id).
fn resolve_folder(st: &Store, ctx: &Ctx, n: Node<'_, '_>) -> Result<(String, String), EwsErr> {
    match n.tag_name().name() {
        "DistinguishedFolderId" => {
            let addr = child(n, T, "Mailbox")
                .and_then(|m| child_text(m, T, "EmailAddress"))
                .map(|a| a.trim().to_ascii_lowercase())
                .unwrap_or_else(|| ctx.mailbox.clone());
            let mbx = st.mailbox(&addr).ok_or_else(|| EwsErr::no_mailbox(&addr))?;
            let dist = n.attribute("Id").unwrap_or("");
            let f = mbx
                .folders
                .iter()
                .find(|f| f.distinguished.as_deref() == Some(dist))
                .ok_or_else(EwsErr::folder_not_found)?;
            Ok((addr, f.id.clone()))
        }
        "FolderId" => {
            let id = n.attribute("Id").unwrap_or("");
            let key = st
                .mailbox_of_folder(id)
                .ok_or_else(EwsErr::folder_not_found)?;
            Ok((key, id.to_string()))
        }
        other => Err(EwsErr::new(
            "ErrorInvalidIdMalformed",
            format!("unsupported folder reference {other}"),
        )),
    }
}

fn folder<'a>(m: &'a Mbx, id: &str) -> Option<&'a Folder> {
    m.folders.iter().find(|f| f.id == id)
}

fn folder_xml(m: &Mbx, f: &Folder, perms: &str) -> String {
    let total = m.items.values().filter(|i| i.folder == f.id).count();
    let unread = m
        .items
        .values()
        .filter(|i| i.folder == f.id && !i.is_read)
        .count();
    let kids = m
        .folders
        .iter()
        .filter(|c| c.parent.as_deref() == Some(&f.id))
        .count();
    let parent = f
        .parent
        .as_ref()
        .and_then(|p| folder(m, p))
        .map(|p| id_el("ParentFolderId", &p.id, p.change))
        .unwrap_or_default();
    let class = f
        .class
        .as_ref()
        .map(|c| format!("<t:FolderClass>{}</t:FolderClass>", esc(c)))
        .unwrap_or_default();
    let dist = f
        .distinguished
        .as_ref()
        .map(|d| format!("<t:DistinguishedFolderId>{d}</t:DistinguishedFolderId>"))
        .unwrap_or_default();
    format!(
        concat!(
            "<t:Folder>{id}{parent}{class}<t:DisplayName>{name}</t:DisplayName>",
            "<t:TotalCount>{total}</t:TotalCount><t:ChildFolderCount>{kids}</t:ChildFolderCount>",
            "<t:EffectiveRights><t:CreateAssociated>true</t:CreateAssociated><t:CreateContents>true</t:CreateContents>",
            "<t:CreateHierarchy>true</t:CreateHierarchy><t:Delete>true</t:Delete><t:Modify>true</t:Modify>",
            "<t:Read>true</t:Read><t:ViewPrivateItems>true</t:ViewPrivateItems></t:EffectiveRights>",
            "{dist}{perms}<t:UnreadCount>{unread}</t:UnreadCount></t:Folder>"
        ),
        id = id_el("FolderId", &f.id, f.change),
        name = esc(&f.name),
        parent = parent,
        class = class,
        total = total,
        kids = kids,
        dist = dist,
        perms = perms,
        unread = unread,
    )
}

/// Ids of the folder and everything under it (Deep) or its children (Shallow).
fn subfolders(m: &Mbx, parent: &str, deep: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![parent.to_string()];
    while let Some(p) = todo.pop() {
        for f in m.folders.iter().filter(|f| f.parent.as_deref() == Some(&p)) {
            out.push(f.id.clone());
            if deep {
                todo.push(f.id.clone());
            }
        }
    }
    out
}

/// `m:IndexedPage…View` -> (max, offset).
fn paging(op: Node<'_, '_>, view: &str) -> (usize, usize) {
    child(op, M, view)
        .map(|v| {
            (
                v.attribute("MaxEntriesReturned")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1000)
                    .min(1000),
                v.attribute("Offset")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            )
        })
        .unwrap_or((1000, 0))
}

fn root_folder(inner_tag: &str, inner: &str, offset: usize, shown: usize, total: usize) -> String {
    let last = offset + shown >= total;
    format!(
        r#"<m:RootFolder IndexedPagingOffset="{}" TotalItemsInView="{total}" IncludesLastItemInRange="{last}"><t:{inner_tag}>{inner}</t:{inner_tag}></m:RootFolder>"#,
        offset + shown
    )
}

// ------------------------------------------------------------------ folders

pub fn get_folder(st: &Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let ids = child(op, M, "FolderIds").ok_or_else(|| schema("m:FolderIds missing"))?;
    let with_perms = super::rights::asks_permission_set(op);
    let msgs: Vec<String> = elements(ids)
        .map(|n| match resolve_folder(st, ctx, n) {
            Ok((key, id)) => {
                let m = st.mailbox(&key).expect("resolved mailbox exists");
                let f = folder(m, &id).expect("resolved folder exists");
                let perms = if with_perms {
                    super::rights::permission_set(&st.rights, &m.address, f)
                } else {
                    String::new()
                };
                wire::ok(
                    "GetFolder",
                    &format!("<m:Folders>{}</m:Folders>", folder_xml(m, f, &perms)),
                )
            }
            Err(e) => wire::err("GetFolder", &e, ""),
        })
        .collect();
    Ok(wire::response("GetFolder", &msgs))
}

pub fn find_folder(st: &Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let deep = op.attribute("Traversal") == Some("Deep");
    let name = child(op, M, "Restriction").and_then(display_name_restriction);
    let (max, offset) = paging(op, "IndexedPageFolderView");
    let parents =
        child(op, M, "ParentFolderIds").ok_or_else(|| schema("m:ParentFolderIds missing"))?;
    let msgs: Vec<String> = elements(parents)
        .map(|n| match resolve_folder(st, ctx, n) {
            Ok((key, id)) => {
                let m = st.mailbox(&key).expect("resolved mailbox exists");
                let all: Vec<&Folder> = subfolders(m, &id, deep)
                    .iter()
                    .filter_map(|i| folder(m, i))
                    .filter(|f| name.as_ref().is_none_or(|n| f.name.eq_ignore_ascii_case(n)))
                    .collect();
                let page: String = all
                    .iter()
                    .skip(offset)
                    .take(max)
                    .map(|f| folder_xml(m, f, ""))
                    .collect();
                let shown = all.len().saturating_sub(offset).min(max);
                wire::ok(
                    "FindFolder",
                    &root_folder("Folders", &page, offset, shown, all.len()),
                )
            }
            Err(e) => wire::err("FindFolder", &e, ""),
        })
        .collect();
    Ok(wire::response("FindFolder", &msgs))
}

/// `IsEqualTo folder:DisplayName Constant` -> the name.
fn display_name_restriction(r: Node<'_, '_>) -> Option<String> {
    let eq = child(r, T, "IsEqualTo")?;
    let f = child(eq, T, "FieldURI")?;
    if f.attribute("FieldURI") != Some("folder:DisplayName") {
        return None;
    }
    child(eq, T, "FieldURIOrConstant")
        .and_then(|c| child(c, T, "Constant"))
        .and_then(|c| c.attribute("Value"))
        .map(str::to_string)
}

pub fn create_folder(st: &mut Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let parent = child(op, M, "ParentFolderId")
        .and_then(|p| elements(p).next())
        .ok_or_else(|| schema("m:ParentFolderId missing"))?;
    let folders = child(op, M, "Folders").ok_or_else(|| schema("m:Folders missing"))?;
    let resolved = resolve_folder(st, ctx, parent);
    let mut msgs = Vec::new();
    for f in elements(folders) {
        let (key, pid) = match &resolved {
            Ok(r) => r.clone(),
            Err(e) => {
                msgs.push(wire::err("CreateFolder", e, ""));
                continue;
            }
        };
        let name = child_text(f, T, "DisplayName").unwrap_or_default();
        let class = child_text(f, T, "FolderClass")
            .or_else(|| (f.tag_name().name() == "Folder").then(|| "IPF.Note".to_string()));
        let exists = st.mailbox(&key).is_some_and(|m| {
            m.folders
                .iter()
                .any(|x| x.parent.as_deref() == Some(&pid) && x.name.eq_ignore_ascii_case(&name))
        });
        if name.trim().is_empty() {
            msgs.push(wire::err(
                "CreateFolder",
                &EwsErr::new("ErrorInvalidOperation", "A folder needs a display name."),
                "",
            ));
            continue;
        }
        if exists {
            msgs.push(wire::err(
                "CreateFolder",
                &EwsErr::new(
                    "ErrorFolderExists",
                    "A folder with the specified name already exists.",
                ),
                "",
            ));
            continue;
        }
        let id = st.new_id("AQMkF");
        let m = st.mailbox_mut(&key).expect("resolved mailbox exists");
        m.folders.push(Folder {
            id: id.clone(),
            change: 1,
            parent: Some(pid.clone()),
            name,
            class,
            distinguished: None,
        });
        if let Some(p) = m.folders.iter_mut().find(|x| x.id == pid) {
            p.change += 1;
        }
        msgs.push(wire::ok(
            "CreateFolder",
            &format!(
                "<m:Folders><t:Folder>{}</t:Folder></m:Folders>",
                id_el("FolderId", &id, 1)
            ),
        ));
    }
    Ok(wire::response("CreateFolder", &msgs))
}

// ------------------------------------------------------------------ items

/// A FindItem restriction pam-sim understands.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    /// `IsEqualTo message:IsRead` with a constant.
    Read(bool),
    /// `IsEqualTo` a `PublicStrings` string property (by name) with a constant.
    Prop(String, String),
}

/// Restriction support: `IsEqualTo` on `message:IsRead` or on a named `PublicStrings` string
/// property, with a constant; anything else is refused (fail loudly rather than return
/// unfiltered mail).
fn item_filter(op: Node<'_, '_>) -> Result<Option<Filter>, EwsErr> {
    let Some(r) = child(op, M, "Restriction") else {
        return Ok(None);
    };
    let unsupported = || {
        EwsErr::new(
            "ErrorUnsupportedQueryFilter",
            "pam-sim supports only IsEqualTo restrictions on message:IsRead or a PublicStrings string property.",
        )
    };
    let eq = child(r, T, "IsEqualTo").ok_or_else(unsupported)?;
    let constant = child(eq, T, "FieldURIOrConstant")
        .and_then(|c| child(c, T, "Constant"))
        .and_then(|c| c.attribute("Value"))
        .ok_or_else(unsupported)?;
    if let Some(f) = child(eq, T, "FieldURI") {
        if f.attribute("FieldURI") != Some("message:IsRead") {
            return Err(unsupported());
        }
        return boolean(constant)
            .map(|b| Some(Filter::Read(b)))
            .ok_or_else(unsupported);
    }
    let x = child(eq, T, "ExtendedFieldURI").ok_or_else(unsupported)?;
    let name = public_string_name(x).ok_or_else(unsupported)?;
    Ok(Some(Filter::Prop(name, constant.to_string())))
}

/// The property name of an `ExtendedFieldURI` naming a `PublicStrings` string property.
fn public_string_name(x: Node<'_, '_>) -> Option<String> {
    (x.attribute("DistinguishedPropertySetId") == Some("PublicStrings")
        && x.attribute("PropertyType") == Some("String"))
    .then(|| x.attribute("PropertyName").map(str::to_string))
    .flatten()
}

pub fn find_item(st: &Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let (max, offset) = paging(op, "IndexedPageItemView");
    let filter = item_filter(op);
    let ascending = child(op, M, "SortOrder")
        .and_then(|s| child(s, T, "FieldOrder"))
        .and_then(|f| f.attribute("Order"))
        .is_some_and(|o| o == "Ascending");
    let parents =
        child(op, M, "ParentFolderIds").ok_or_else(|| schema("m:ParentFolderIds missing"))?;
    let msgs: Vec<String> = elements(parents)
        .map(|n| {
            let filter = match &filter {
                Ok(f) => f,
                Err(e) => return wire::err("FindItem", e, ""),
            };
            match resolve_folder(st, ctx, n) {
                Ok((key, fid)) => {
                    let m = st.mailbox(&key).expect("resolved mailbox exists");
                    let mut all: Vec<&Item> = m
                        .items
                        .values()
                        .filter(|i| {
                            i.folder == fid
                                && match filter {
                                    None => true,
                                    Some(Filter::Read(r)) => i.is_read == *r,
                                    Some(Filter::Prop(n, v)) => i.props.get(n) == Some(v),
                                }
                        })
                        .collect();
                    all.sort_by_key(|i| (i.received_ms, i.arrived_seq));
                    if !ascending {
                        all.reverse();
                    }
                    let page: String = all
                        .iter()
                        .skip(offset)
                        .take(max)
                        .map(|i| {
                            format!(
                                "<t:Message>{}</t:Message>",
                                id_el("ItemId", &i.id, i.change)
                            )
                        })
                        .collect();
                    let shown = all.len().saturating_sub(offset).min(max);
                    wire::ok(
                        "FindItem",
                        &root_folder("Items", &page, offset, shown, all.len()),
                    )
                }
                Err(e) => wire::err("FindItem", &e, ""),
            }
        })
        .collect();
    Ok(wire::response("FindItem", &msgs))
}

/// Which optional parts GetItem asked for.
struct Shape {
    mime: bool,
    transport_headers: bool,
    /// `item:TextBody`: the body as plain text (Exchange 2013 and later).
    text_body: bool,
}

fn shape(op: Node<'_, '_>) -> Shape {
    let Some(s) = child(op, M, "ItemShape") else {
        return Shape {
            mime: false,
            transport_headers: false,
            text_body: false,
        };
    };
    let props: Vec<Node<'_, '_>> = child(s, T, "AdditionalProperties")
        .map(|a| elements(a).collect())
        .unwrap_or_default();
    let mime = child_text(s, T, "IncludeMimeContent")
        .and_then(|v| boolean(&v))
        .unwrap_or(false)
        || props
            .iter()
            .any(|p| p.attribute("FieldURI") == Some("item:MimeContent"));
    let transport_headers = props.iter().any(|p| {
        p.tag_name().name() == "ExtendedFieldURI"
            && p.attribute("PropertyTag").and_then(|t| {
                u32::from_str_radix(t.trim_start_matches("0x").trim_start_matches("0X"), 16).ok()
            }) == Some(0x7d)
    });
    let text_body = props
        .iter()
        .any(|p| p.attribute("FieldURI") == Some("item:TextBody"));
    Shape {
        mime,
        transport_headers,
        text_body,
    }
}

fn mailbox_xml(tag: &str, v: &str) -> String {
    let (name, addr) = mime::address(v);
    let name = name.unwrap_or_else(|| addr.clone());
    format!(
        "<t:{tag}><t:Mailbox><t:Name>{}</t:Name><t:EmailAddress>{}</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType><t:MailboxType>OneOff</t:MailboxType></t:Mailbox></t:{tag}>",
        esc(&name),
        esc(&addr)
    )
}

/// Split an address list on commas outside quotes and angle brackets.
fn address_list(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut quoted, mut angle) = (String::new(), false, false);
    for c in v.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' => angle = true,
            '>' => angle = false,
            ',' if !quoted && !angle => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn recipients_xml(tag: &str, v: Option<&str>) -> String {
    let Some(v) = v else { return String::new() };
    let list = address_list(v);
    if list.is_empty() {
        return String::new();
    }
    let inner: String = list
        .iter()
        .map(|a| {
            mailbox_xml("X", a)
                .trim_start_matches("<t:X>")
                .trim_end_matches("</t:X>")
                .to_string()
        })
        .collect();
    format!("<t:{tag}>{inner}</t:{tag}>")
}

fn message_xml(m: &Mbx, i: &Item, sh: &Shape) -> String {
    let hs = mime::headers(&i.mime);
    let h = |n: &str| mime::header(&hs, n);
    let mut out = String::from("<t:Message>");
    if sh.mime {
        out.push_str(&format!(
            r#"<t:MimeContent CharacterSet="UTF-8">{}</t:MimeContent>"#,
            base64::engine::general_purpose::STANDARD.encode(&i.mime)
        ));
    }
    out.push_str(&id_el("ItemId", &i.id, i.change));
    if let Some(f) = folder(m, &i.folder) {
        out.push_str(&id_el("ParentFolderId", &f.id, f.change));
    }
    out.push_str("<t:ItemClass>IPM.Note</t:ItemClass>");
    out.push_str(&format!(
        "<t:Subject>{}</t:Subject>",
        esc(h("Subject").unwrap_or(""))
    ));
    out.push_str(&format!(
        r#"<t:Body BodyType="Text">{}</t:Body>"#,
        esc(&mime::text_body(&i.mime))
    ));
    out.push_str(&format!(
        "<t:DateTimeReceived>{}</t:DateTimeReceived><t:Size>{}</t:Size>",
        datetime(i.received_ms),
        i.mime.len()
    ));
    out.push_str("<t:InternetMessageHeaders>");
    for (k, v) in &hs {
        out.push_str(&format!(
            r#"<t:InternetMessageHeader HeaderName="{}">{}</t:InternetMessageHeader>"#,
            esc(k),
            esc(v)
        ));
    }
    out.push_str("</t:InternetMessageHeaders>");
    out.push_str(&format!(
        "<t:DateTimeSent>{}</t:DateTimeSent>",
        datetime(i.received_ms)
    ));
    out.push_str("<t:HasAttachments>false</t:HasAttachments>");
    if sh.transport_headers && i.transported {
        let (block, _) = mime::split(&i.mime);
        out.push_str(&format!(
            r#"<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x7d" PropertyType="String"/><t:Value>{}</t:Value></t:ExtendedProperty>"#,
            esc(&block)
        ));
    }
    if sh.text_body {
        out.push_str(&format!(
            r#"<t:TextBody BodyType="Text">{}</t:TextBody>"#,
            esc(&mime::text_body(&i.mime))
        ));
    }
    if let Some(s) = h("Sender").or(h("From")) {
        out.push_str(&mailbox_xml("Sender", s));
    }
    out.push_str(&recipients_xml("ToRecipients", h("To")));
    out.push_str(&recipients_xml("CcRecipients", h("Cc")));
    if let Some(f) = h("From") {
        out.push_str(&mailbox_xml("From", f));
    }
    if let Some(id) = h("Message-ID") {
        out.push_str(&format!(
            "<t:InternetMessageId>{}</t:InternetMessageId>",
            esc(id)
        ));
    }
    out.push_str(&format!("<t:IsRead>{}</t:IsRead></t:Message>", i.is_read));
    out
}

fn find_item_mut<'a>(st: &'a mut Store, id: &str) -> Option<(&'a mut Mbx, String)> {
    let key = st.mailbox_of_item(id)?;
    st.mailbox_mut(&key).map(|m| (m, key))
}

pub fn get_item(st: &Store, _ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let sh = shape(op);
    let ids = child(op, M, "ItemIds").ok_or_else(|| schema("m:ItemIds missing"))?;
    let msgs: Vec<String> = elements(ids)
        .map(|n| {
            let id = n.attribute("Id").unwrap_or("");
            let found = st
                .mailbox_of_item(id)
                .and_then(|k| st.mailbox(&k))
                .and_then(|m| m.items.get(id).map(|i| (m, i)));
            let unreadable = |i: &Item| {
                let hs = mime::headers(&i.mime);
                mime::header(&hs, "Message-ID")
                    .is_some_and(|mid| st.unreadable.contains(&super::norm_mid(mid)))
            };
            match found {
                Some((_, i)) if unreadable(i) => wire::err(
                    "GetItem",
                    &EwsErr::new(
                        "ErrorItemCorrupt",
                        "The item is corrupt and cannot be read.",
                    ),
                    "<m:Items/>",
                ),
                Some((m, i)) => wire::ok(
                    "GetItem",
                    &format!("<m:Items>{}</m:Items>", message_xml(m, i, &sh)),
                ),
                None => wire::err("GetItem", &EwsErr::item_not_found(), "<m:Items/>"),
            }
        })
        .collect();
    Ok(wire::response("GetItem", &msgs))
}

pub fn update_item(st: &mut Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let never_overwrite = op.attribute("ConflictResolution") == Some("NeverOverwrite");
    let changes = child(op, M, "ItemChanges").ok_or_else(|| schema("m:ItemChanges missing"))?;
    let mut msgs = Vec::new();
    for ch in children(changes, T, "ItemChange") {
        let Some(idn) = child(ch, T, "ItemId") else {
            return Err(schema("t:ItemChange needs a t:ItemId"));
        };
        let id = idn.attribute("Id").unwrap_or("").to_string();
        let sent_ck = idn.attribute("ChangeKey").and_then(wire::parse_change_key);
        let mut new_read = None;
        if let Some(ups) = child(ch, T, "Updates") {
            for u in elements(ups) {
                let field = child(u, T, "FieldURI").and_then(|f| f.attribute("FieldURI"));
                if u.tag_name().name() == "SetItemField" && field == Some("message:IsRead") {
                    new_read = child(u, T, "Message")
                        .and_then(|m| child_text(m, T, "IsRead"))
                        .and_then(|v| boolean(&v));
                }
            }
        }
        let seq = st.next_seq();
        let now = ctx.now_ms;
        let Some((m, key)) = find_item_mut(st, &id) else {
            msgs.push(wire::err(
                "UpdateItem",
                &EwsErr::item_not_found(),
                "<m:Items/>",
            ));
            continue;
        };
        let fchange = m
            .folders
            .iter()
            .find(|f| m.items.get(&id).is_some_and(|i| i.folder == f.id))
            .map(|f| f.change)
            .unwrap_or(1);
        let item = m.items.get_mut(&id).expect("found above");
        if never_overwrite && sent_ck.is_some_and(|c| c != item.change) {
            msgs.push(wire::err(
                "UpdateItem",
                &EwsErr::new("ErrorIrresolvableConflict", "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item."),
                "<m:Items/>",
            ));
            continue;
        }
        item.change += 1;
        item.modified_seq = seq;
        if let Some(r) = new_read
            && r != item.is_read
        {
            item.is_read = r;
            item.read_changed_seq = seq;
        }
        let (iid, ick, folder) = (item.id.clone(), item.change, item.folder.clone());
        msgs.push(wire::ok(
            "UpdateItem",
            &format!(
                "<m:Items><t:Message>{}</t:Message></m:Items><m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>",
                id_el("ItemId", &iid, ick)
            ),
        ));
        st.queue_event(
            &key,
            "ModifiedEvent",
            Some((iid, ick)),
            (folder, fchange),
            None,
            None,
            now,
        );
    }
    Ok(wire::response("UpdateItem", &msgs))
}

pub fn move_item(st: &mut Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let to = child(op, M, "ToFolderId")
        .and_then(|p| elements(p).next())
        .ok_or_else(|| schema("m:ToFolderId missing"))?;
    let ids = child(op, M, "ItemIds").ok_or_else(|| schema("m:ItemIds missing"))?;
    let target = resolve_folder(st, ctx, to);
    let mut msgs = Vec::new();
    for n in elements(ids) {
        let id = n.attribute("Id").unwrap_or("").to_string();
        let (tkey, tfid) = match &target {
            Ok(t) => t.clone(),
            Err(e) => {
                msgs.push(wire::err("MoveItem", e, "<m:Items/>"));
                continue;
            }
        };
        let Some(key) = st.mailbox_of_item(&id) else {
            msgs.push(wire::err(
                "MoveItem",
                &EwsErr::item_not_found(),
                "<m:Items/>",
            ));
            continue;
        };
        if key != tkey {
            msgs.push(wire::err(
                "MoveItem",
                &EwsErr::new(
                    "ErrorInvalidOperation",
                    "pam-sim does not move items between mailboxes.",
                ),
                "<m:Items/>",
            ));
            continue;
        }
        let new_id = st.new_id("AAMkI");
        let seq = st.next_seq();
        let m = st.mailbox_mut(&key).expect("mailbox exists");
        let mut item = m.items.remove(&id).expect("found above");
        let old = (item.id.clone(), item.change);
        let old_folder = item.folder.clone();
        m.tombstones.push(Tombstone {
            folder: old_folder.clone(),
            item: item.id.clone(),
            change: item.change,
            arrived_seq: item.arrived_seq,
            seq,
        });
        item.id = new_id.clone();
        item.change += 1;
        item.folder = tfid.clone();
        item.arrived_seq = seq;
        item.modified_seq = seq;
        let ck = item.change;
        m.items.insert(new_id.clone(), item);
        let fck = |id: &str| {
            m.folders
                .iter()
                .find(|f| f.id == id)
                .map(|f| f.change)
                .unwrap_or(1)
        };
        let (new_parent, old_parent) = (
            (tfid.clone(), fck(&tfid)),
            (old_folder.clone(), fck(&old_folder)),
        );
        msgs.push(wire::ok(
            "MoveItem",
            &format!(
                "<m:Items><t:Message>{}</t:Message></m:Items>",
                id_el("ItemId", &new_id, ck)
            ),
        ));
        st.queue_event(
            &key,
            "MovedEvent",
            Some((new_id, ck)),
            new_parent,
            Some(old),
            Some(old_parent),
            ctx.now_ms,
        );
    }
    Ok(wire::response("MoveItem", &msgs))
}

fn addresses(msg: Node<'_, '_>, tag: &str) -> Vec<String> {
    child(msg, T, tag)
        .map(|r| {
            children(r, T, "Mailbox")
                .filter_map(|m| child_text(m, T, "EmailAddress"))
                .map(|a| a.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A header value cannot carry line breaks (header injection).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// The item a `t:ReplyToItem` answers (its `t:ReferenceItemId`), as far as the reply needs it.
struct Original {
    /// The mailbox holding it: the reply goes out from there (ASSUMPTIONS E22).
    mailbox: String,
    /// Who gets the reply when the client names no recipient: `Reply-To`, else `From`.
    author: Option<String>,
    subject: String,
    message_id: Option<String>,
    references: Option<String>,
}

fn replied_to(st: &Store, msg: Node<'_, '_>) -> Result<Original, EwsErr> {
    let id = child(msg, T, "ReferenceItemId")
        .and_then(|r| r.attribute("Id"))
        .ok_or_else(|| schema("t:ReplyToItem needs a t:ReferenceItemId"))?;
    let mailbox = st.mailbox_of_item(id).ok_or_else(EwsErr::item_not_found)?;
    let item = st
        .mailbox(&mailbox)
        .and_then(|m| m.items.get(id))
        .ok_or_else(EwsErr::item_not_found)?;
    let hs = mime::headers(&item.mime);
    let author = mime::header(&hs, "Reply-To")
        .or_else(|| mime::header(&hs, "From"))
        .map(|v| mime::address(v).1)
        .filter(|a| !a.is_empty());
    Ok(Original {
        mailbox,
        author,
        subject: mime::header(&hs, "Subject").unwrap_or_default().to_string(),
        message_id: mime::header(&hs, "Message-ID").map(one_line),
        references: mime::header(&hs, "References").map(one_line),
    })
}

pub fn create_item(st: &mut Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let disposition = op
        .attribute("MessageDisposition")
        .unwrap_or("SaveOnly")
        .to_string();
    let saved = child(op, M, "SavedItemFolderId")
        .and_then(|p| elements(p).next())
        .map(|n| resolve_folder(st, ctx, n));
    let items = child(op, M, "Items").ok_or_else(|| schema("m:Items missing"))?;
    let mut msgs = Vec::new();
    for msg in elements(items) {
        let reply = match msg.tag_name().name() {
            "Message" => None,
            "ReplyToItem" => match replied_to(st, msg) {
                Ok(o) => Some(o),
                Err(e) => {
                    msgs.push(wire::err("CreateItem", &e, "<m:Items/>"));
                    continue;
                }
            },
            _ => {
                msgs.push(wire::err(
                    "CreateItem",
                    &EwsErr::new(
                        "ErrorInvalidOperation",
                        "pam-sim creates messages and replies only.",
                    ),
                    "<m:Items/>",
                ));
                continue;
            }
        };
        let mut to = addresses(msg, "ToRecipients");
        if let Some(o) = reply.as_ref().filter(|_| to.is_empty()) {
            to = o.author.iter().cloned().collect();
        }
        let cc = addresses(msg, "CcRecipients");
        let bcc = addresses(msg, "BccRecipients");
        let sending = disposition != "SaveOnly";
        let bad = to
            .iter()
            .chain(&cc)
            .chain(&bcc)
            .find(|a| !a.contains('@') || a.contains(['<', '>', '\r', '\n', ',']));
        if sending && (bad.is_some() || to.len() + cc.len() + bcc.len() == 0) {
            msgs.push(wire::err(
                "CreateItem",
                &EwsErr::new(
                    "ErrorInvalidRecipients",
                    "At least one recipient isn't valid.",
                ),
                "<m:Items/>",
            ));
            continue;
        }
        let subject = child_text(msg, T, "Subject")
            .or_else(|| reply.as_ref().map(|o| format!("RE: {}", o.subject)))
            .unwrap_or_default();
        let props: BTreeMap<String, String> = elements(msg)
            .filter(|n| n.tag_name().name() == "ExtendedProperty")
            .filter_map(|n| {
                let name = child(n, T, "ExtendedFieldURI").and_then(public_string_name)?;
                Some((name, child_text(n, T, "Value").unwrap_or_default()))
            })
            .collect();
        // Internet headers set as `InternetHeaders` extended properties: Exchange writes them
        // into the sent mail's header block.
        let headers: Vec<(String, String)> = elements(msg)
            .filter(|n| n.tag_name().name() == "ExtendedProperty")
            .filter_map(|n| {
                let x = child(n, T, "ExtendedFieldURI")?;
                (x.attribute("DistinguishedPropertySetId") == Some("InternetHeaders")
                    && x.attribute("PropertyType") == Some("String"))
                .then(|| {
                    (
                        x.attribute("PropertyName").unwrap_or_default().to_string(),
                        child_text(n, T, "Value").unwrap_or_default(),
                    )
                })
            })
            .collect();
        let mut headers = headers;
        if let Some(mid) = reply.as_ref().and_then(|o| o.message_id.clone()) {
            let refs = reply
                .as_ref()
                .and_then(|o| o.references.clone())
                .map_or_else(|| mid.clone(), |r| format!("{r} {mid}"));
            headers.push(("In-Reply-To".into(), mid));
            headers.push(("References".into(), refs));
        }
        let body_node = child(
            msg,
            T,
            if reply.is_some() {
                "NewBodyContent"
            } else {
                "Body"
            },
        );
        let body = body_node.map(wire::text).unwrap_or_default();
        let body_type = body_node
            .and_then(|b| b.attribute("BodyType"))
            .unwrap_or("Text")
            .to_string();
        let (mbx_key, folder) = match &saved {
            Some(Ok(r)) => (r.0.clone(), Some(r.1.clone())),
            Some(Err(e)) => {
                msgs.push(wire::err("CreateItem", e, "<m:Items/>"));
                continue;
            }
            None => (
                reply
                    .as_ref()
                    .map_or_else(|| ctx.mailbox.clone(), |o| o.mailbox.clone()),
                None,
            ),
        };
        // Beyond the mailbox's sending rate: refused, nothing sent or saved (ASSUMPTIONS.md
        // G31).
        if sending && st.send_rate.check(&mbx_key, ctx.now_ms).is_err() {
            msgs.push(wire::err(
                "CreateItem",
                &EwsErr::new(crate::send_limit::QUOTA_CODE, crate::send_limit::QUOTA_TEXT),
                "<m:Items/>",
            ));
            continue;
        }
        let from = st
            .mailbox(&mbx_key)
            .map(|m| m.address.clone())
            .unwrap_or_default();
        let mid = format!("<{}@pam-sim.invalid>", st.new_id("m"));
        let ctype = if body_type == "HTML" {
            "text/html"
        } else {
            "text/plain"
        };
        let mut raw = format!(
            "From: {from}\r\nDate: {}\r\nSubject: {}\r\nMessage-ID: {mid}\r\nMIME-Version: 1.0\r\nContent-Type: {ctype}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
            chrono::DateTime::from_timestamp_millis(ctx.now_ms)
                .unwrap_or_default()
                .to_rfc2822(),
            one_line(&subject)
        );
        if !to.is_empty() {
            raw.push_str(&format!("To: {}\r\n", to.join(", ")));
        }
        if !cc.is_empty() {
            raw.push_str(&format!("Cc: {}\r\n", cc.join(", ")));
        }
        for (name, value) in &headers {
            raw.push_str(&format!("{}: {}\r\n", one_line(name), one_line(value)));
        }
        raw.push_str("\r\n");
        raw.push_str(&body.replace("\r\n", "\n").replace('\n', "\r\n"));
        let keep = disposition != "SendOnly";
        let target = match (keep, &folder) {
            (false, _) => None,
            (true, Some(f)) => Some(f.clone()),
            (true, None) => st.mailbox(&mbx_key).and_then(|m| {
                let dist = if sending { "sentitems" } else { "drafts" };
                m.folders
                    .iter()
                    .find(|f| f.distinguished.as_deref() == Some(dist))
                    .map(|f| f.id.clone())
            }),
        };
        let saved_item = target.and_then(|f| {
            st.add_item(
                &mbx_key,
                &f,
                raw.clone().into_bytes(),
                true,
                ctx.now_ms,
                false,
            )
        });
        if let Some(id) = &saved_item
            && let Some(item) = st
                .mailboxes
                .get_mut(&mbx_key)
                .and_then(|m| m.items.get_mut(id))
        {
            item.props = props.clone();
        }
        if sending {
            st.send_rate.record(&mbx_key, ctx.now_ms);
            st.sent.push(Sent {
                props: props.clone(),
                headers: headers.clone(),
                mailbox: from.clone(),
                to: to.clone(),
                cc: cc.clone(),
                bcc: bcc.clone(),
                subject: subject.clone(),
                body: body.clone(),
                body_type: body_type.clone(),
                sent_ms: ctx.now_ms,
                saved_item: saved_item.clone(),
                disposition: disposition.clone(),
            });
            // Mail to a mailbox of this server arrives in its inbox.
            for rcpt in to.iter().chain(&cc).chain(&bcc) {
                let key = rcpt.to_ascii_lowercase();
                let inbox = st.mailbox(&key).and_then(|m| {
                    m.folders
                        .iter()
                        .find(|f| f.distinguished.as_deref() == Some("inbox"))
                        .map(|f| f.id.clone())
                });
                if let Some(inbox) = inbox {
                    st.add_item(
                        &key,
                        &inbox,
                        raw.clone().into_bytes(),
                        false,
                        ctx.now_ms,
                        true,
                    );
                }
            }
        }
        let payload = match (&saved_item, sending) {
            (Some(id), false) => {
                let ck = st
                    .mailbox(&mbx_key)
                    .and_then(|m| m.items.get(id))
                    .map(|i| i.change)
                    .unwrap_or(1);
                format!(
                    "<m:Items><t:Message>{}</t:Message></m:Items>",
                    id_el("ItemId", id, ck)
                )
            }
            _ => "<m:Items/>".to_string(),
        };
        msgs.push(wire::ok("CreateItem", &payload));
    }
    Ok(wire::response("CreateItem", &msgs))
}

// ------------------------------------------------------------------ sync

/// Sync states are opaque to clients; ours encode the folder and the change sequence.
fn sync_state(folder: &str, seq: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("pam-sim-sync:{folder}:{seq}"))
}

fn parse_sync_state(s: &str) -> Option<(String, u64)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let rest = text.strip_prefix("pam-sim-sync:")?;
    let (f, n) = rest.rsplit_once(':')?;
    Some((f.to_string(), n.parse().ok()?))
}

pub fn sync_folder_items(st: &Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let fnode = child(op, M, "SyncFolderId")
        .and_then(|p| elements(p).next())
        .ok_or_else(|| schema("m:SyncFolderId missing"))?;
    let max: usize = child_text(op, M, "MaxChangesReturned")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
        .clamp(1, 512);
    let (key, fid) = match resolve_folder(st, ctx, fnode) {
        Ok(r) => r,
        Err(e) => {
            return Ok(wire::response(
                "SyncFolderItems",
                &[wire::err("SyncFolderItems", &e, "")],
            ));
        }
    };
    let since = match child_text(op, M, "SyncState").filter(|s| !s.trim().is_empty()) {
        None => 0,
        Some(s) => match parse_sync_state(&s) {
            Some((f, n)) if f == fid => n,
            _ => {
                let e = EwsErr::new(
                    "ErrorInvalidSyncStateData",
                    "Synchronization state data is corrupt or otherwise invalid.",
                );
                return Ok(wire::response(
                    "SyncFolderItems",
                    &[wire::err("SyncFolderItems", &e, "")],
                ));
            }
        },
    };
    let m = st.mailbox(&key).expect("resolved mailbox exists");
    let mut changes: Vec<(u64, String)> = Vec::new();
    for i in m.items.values().filter(|i| i.folder == fid) {
        if i.arrived_seq > since {
            changes.push((
                i.arrived_seq,
                format!(
                    "<t:Create><t:Message>{}</t:Message></t:Create>",
                    id_el("ItemId", &i.id, i.change)
                ),
            ));
        } else if i.read_changed_seq > since {
            changes.push((
                i.read_changed_seq,
                format!(
                    "<t:ReadFlagChange>{}<t:IsRead>{}</t:IsRead></t:ReadFlagChange>",
                    id_el("ItemId", &i.id, i.change),
                    i.is_read
                ),
            ));
        } else if i.modified_seq > since {
            changes.push((
                i.modified_seq,
                format!(
                    "<t:Update><t:Message>{}</t:Message></t:Update>",
                    id_el("ItemId", &i.id, i.change)
                ),
            ));
        }
    }
    for t in m
        .tombstones
        .iter()
        .filter(|t| t.folder == fid && t.seq > since && t.arrived_seq <= since)
    {
        changes.push((
            t.seq,
            format!(
                "<t:Delete>{}</t:Delete>",
                id_el("ItemId", &t.item, t.change)
            ),
        ));
    }
    changes.sort_by_key(|c| c.0);
    let last = changes.len() <= max;
    let page: Vec<(u64, String)> = changes.into_iter().take(max).collect();
    let new_seq = if last {
        st.seq
    } else {
        page.last().map(|c| c.0).unwrap_or(st.seq)
    };
    let body: String = page.into_iter().map(|c| c.1).collect();
    let payload = format!(
        "<m:SyncState>{}</m:SyncState><m:IncludesLastItemInRange>{last}</m:IncludesLastItemInRange><m:Changes>{body}</m:Changes>",
        sync_state(&fid, new_seq)
    );
    Ok(wire::response(
        "SyncFolderItems",
        &[wire::ok("SyncFolderItems", &payload)],
    ))
}

// ------------------------------------------------------------------ subscriptions

pub fn subscribe(st: &mut Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let (req, streaming) = match (
        child(op, M, "StreamingSubscriptionRequest"),
        child(op, M, "PullSubscriptionRequest"),
    ) {
        (Some(r), _) => (r, true),
        (None, Some(r)) => (r, false),
        _ => {
            let e = EwsErr::new(
                "ErrorInvalidSubscriptionRequest",
                "pam-sim supports streaming and pull subscriptions.",
            );
            return Ok(wire::response(
                "Subscribe",
                &[wire::err("Subscribe", &e, "")],
            ));
        }
    };
    let mut folders = Vec::new();
    let mut mbx = None;
    if let Some(fs) = child(req, T, "FolderIds") {
        for n in elements(fs) {
            match resolve_folder(st, ctx, n) {
                Ok((k, f)) => {
                    mbx = Some(k);
                    folders.push(f);
                }
                Err(e) => {
                    return Ok(wire::response(
                        "Subscribe",
                        &[wire::err("Subscribe", &e, "")],
                    ));
                }
            }
        }
    }
    let event_types: Vec<String> = child(req, T, "EventTypes")
        .map(|e| {
            children(e, T, "EventType")
                .map(|n| wire::text(n).trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    let id = st.new_id("JgBiSUB");
    let watermark = st.seq;
    st.subs.insert(
        id.clone(),
        Sub {
            id: id.clone(),
            mailbox: mbx.unwrap_or_else(|| ctx.mailbox.clone()),
            folders,
            event_types,
            queue: Default::default(),
            streaming,
            watermark,
        },
    );
    let payload = if streaming {
        format!("<m:SubscriptionId>{id}</m:SubscriptionId>")
    } else {
        format!(
            "<m:SubscriptionId>{id}</m:SubscriptionId><m:Watermark>{}</m:Watermark>",
            watermark_str(watermark)
        )
    };
    Ok(wire::response(
        "Subscribe",
        &[wire::ok("Subscribe", &payload)],
    ))
}

pub fn watermark_str(n: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("wm:{n:010}"))
}

pub fn unsubscribe(st: &mut Store, _ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let id = child_text(op, M, "SubscriptionId").unwrap_or_default();
    let msg = match st.subs.remove(id.trim()) {
        Some(_) => wire::ok("Unsubscribe", ""),
        None => wire::err(
            "Unsubscribe",
            &EwsErr::new(
                "ErrorSubscriptionNotFound",
                "The specified subscription was not found.",
            ),
            "",
        ),
    };
    Ok(wire::response("Unsubscribe", &[msg]))
}

/// Events of a subscription as notification children (`t:…Event`).
pub fn events_xml(sub_id: &str, evs: &[super::store::Ev], with_watermark: bool) -> String {
    let mut out = format!("<t:SubscriptionId>{}</t:SubscriptionId>", esc(sub_id));
    for e in evs {
        let wm = if with_watermark {
            format!("<t:Watermark>{}</t:Watermark>", watermark_str(e.watermark))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "<t:{}>{wm}<t:TimeStamp>{}</t:TimeStamp>",
            e.kind,
            datetime(e.time_ms)
        ));
        if let Some((id, ck)) = &e.item {
            out.push_str(&id_el("ItemId", id, *ck));
        }
        out.push_str(&id_el("ParentFolderId", &e.parent.0, e.parent.1));
        if let Some((id, ck)) = &e.old_item {
            out.push_str(&id_el("OldItemId", id, *ck));
        }
        if let Some((id, ck)) = &e.old_parent {
            out.push_str(&id_el("OldParentFolderId", id, *ck));
        }
        out.push_str(&format!("</t:{}>", e.kind));
    }
    out
}

pub fn get_events(st: &mut Store, _ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let id = child_text(op, M, "SubscriptionId").unwrap_or_default();
    let Some(sub) = st.subs.get_mut(id.trim()).filter(|s| !s.streaming) else {
        let e = EwsErr::new(
            "ErrorSubscriptionNotFound",
            "The specified subscription was not found.",
        );
        return Ok(wire::response(
            "GetEvents",
            &[wire::err("GetEvents", &e, "")],
        ));
    };
    let prev = sub.watermark;
    let evs: Vec<super::store::Ev> = sub.queue.drain(..).collect();
    let inner = if evs.is_empty() {
        format!(
            "<t:SubscriptionId>{}</t:SubscriptionId><t:PreviousWatermark>{}</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents><t:StatusEvent><t:Watermark>{}</t:Watermark></t:StatusEvent>",
            esc(&sub.id),
            watermark_str(prev),
            watermark_str(prev)
        )
    } else {
        sub.watermark = evs.last().map(|e| e.watermark).unwrap_or(prev);
        let body = events_xml(&sub.id, &evs, true);
        let (sid, rest) = body.split_at(
            body.find("</t:SubscriptionId>")
                .map(|i| i + 19)
                .unwrap_or(0),
        );
        format!(
            "{sid}<t:PreviousWatermark>{}</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents>{rest}",
            watermark_str(prev)
        )
    };
    Ok(wire::response(
        "GetEvents",
        &[wire::ok(
            "GetEvents",
            &format!("<m:Notification>{inner}</m:Notification>"),
        )],
    ))
}

fn schema(what: &str) -> EwsErr {
    EwsErr::new(
        "ErrorSchemaValidation",
        format!("The request failed schema validation: {what}."),
    )
}

/// ConvertId: the ids of this store's items and folders in the asked format. pam-sim's ids are
/// opaque strings, so `EwsId` (and `EwsLegacyId`, `OwaId`) give the id back as it is and
/// `HexEntryId` / `EntryId` / `StoreId` encode its bytes (hex, base64); an id the store does not
/// know is `ErrorInvalidIdMalformed`, as Exchange answers exchangelib's version probe.
pub fn convert_id(st: &Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let format = op
        .attribute("DestinationFormat")
        .ok_or_else(|| schema("DestinationFormat missing"))?;
    let ids = child(op, M, "SourceIds").ok_or_else(|| schema("m:SourceIds missing"))?;
    let mut msgs = Vec::new();
    for n in elements(ids) {
        let id = n.attribute("Id").unwrap_or("");
        let mailbox = n.attribute("Mailbox").unwrap_or(&ctx.mailbox);
        let raw = match n.attribute("Format").unwrap_or("EwsId") {
            "HexEntryId" => hex::decode(id).ok().and_then(|b| String::from_utf8(b).ok()),
            "EntryId" | "StoreId" => base64::engine::general_purpose::STANDARD
                .decode(id)
                .ok()
                .and_then(|b| String::from_utf8(b).ok()),
            _ => Some(id.to_string()),
        };
        let known = raw.as_deref().filter(|r| {
            st.mailbox_of_item(r).is_some()
                || st
                    .mailbox(&ctx.mailbox)
                    .is_some_and(|m| m.folders.iter().any(|f| f.id == *r))
        });
        let Some(raw) = known else {
            msgs.push(wire::err(
                "ConvertId",
                &EwsErr::new("ErrorInvalidIdMalformed", "Id is malformed."),
                "",
            ));
            continue;
        };
        let out = match format {
            "HexEntryId" => hex::encode(raw.as_bytes()).to_ascii_uppercase(),
            "EntryId" | "StoreId" => base64::engine::general_purpose::STANDARD.encode(raw),
            _ => raw.to_string(),
        };
        msgs.push(wire::ok(
            "ConvertId",
            &format!(
                r#"<m:AlternateId xsi:type="t:AlternateIdType" Format="{}" Id="{}" Mailbox="{}"/>"#,
                esc(format),
                esc(&out),
                esc(mailbox)
            ),
        ));
    }
    Ok(wire::response("ConvertId", &msgs))
}

/// DeleteItem: `MoveToDeletedItems` moves the item into Deleted Items (a new id, as a move
/// gives); `SoftDelete` and `HardDelete` remove it from its folder.
pub fn delete_item(st: &mut Store, ctx: &Ctx, op: Node<'_, '_>) -> OpResult {
    let how = op
        .attribute("DeleteType")
        .ok_or_else(|| schema("DeleteType missing"))?
        .to_string();
    let ids = child(op, M, "ItemIds").ok_or_else(|| schema("m:ItemIds missing"))?;
    let mut msgs = Vec::new();
    for n in elements(ids) {
        let id = n.attribute("Id").unwrap_or("").to_string();
        let Some(key) = st.mailbox_of_item(&id) else {
            msgs.push(wire::err("DeleteItem", &EwsErr::item_not_found(), ""));
            continue;
        };
        if key != ctx.mailbox {
            msgs.push(wire::err("DeleteItem", &EwsErr::item_not_found(), ""));
            continue;
        }
        let seq = st.next_seq();
        let new_id = st.new_id("AAMkI");
        let m = st.mailbox_mut(&key).expect("mailbox exists");
        let deleted = m
            .folders
            .iter()
            .find(|f| f.distinguished.as_deref() == Some("deleteditems"))
            .map(|f| f.id.clone());
        let mut item = m.items.remove(&id).expect("found above");
        m.tombstones.push(Tombstone {
            folder: item.folder.clone(),
            item: item.id.clone(),
            change: item.change,
            arrived_seq: item.arrived_seq,
            seq,
        });
        match (how.as_str(), deleted) {
            ("MoveToDeletedItems", Some(fid)) if item.folder != fid => {
                item.id = new_id.clone();
                item.change += 1;
                item.folder = fid;
                item.arrived_seq = seq;
                item.modified_seq = seq;
                m.items.insert(new_id, item);
            }
            ("MoveToDeletedItems" | "SoftDelete" | "HardDelete", _) => {}
            (other, _) => {
                return Err(schema(&format!("DeleteType {other} is not valid")));
            }
        }
        msgs.push(wire::ok("DeleteItem", ""));
    }
    Ok(wire::response("DeleteItem", &msgs))
}
