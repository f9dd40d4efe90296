//! Parsing responses as real servers shape them (Microsoft's samples and the reference's
//! captures), including the stream of concatenated envelopes cut at every byte boundary.

use ews_soap::ops::folders::CreateFolder;
use ews_soap::ops::items::{FindItem, GetItem, MoveItem};
use ews_soap::ops::notifications::{ConnectionStatus, DocumentSplitter, GetStreamingEvents};
use ews_soap::ops::rights::{GetDelegate, GetFolderPermissions};
use ews_soap::ops::sync::{Change, SyncFolderItems};
#[path = "support/schema.rs"]
mod schema;
use ews_soap::soap::parse_response;
use ews_soap::{FolderRef, ItemId};
use schema::Outcome;

fn env(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types" MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6"/></s:Header><s:Body xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">{body}</s:Body></s:Envelope>"#
    )
}

#[test]
fn get_item_gives_mime_both_header_views_and_senders() {
    // "From: a\r\n\r\nhi" in base64, split over lines as some servers do
    let body = env(r#"<m:GetItemResponse><m:ResponseMessages>
<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message>
<t:MimeContent CharacterSet="UTF-8">RnJvbTog
YQ0KDQpoaQ==</t:MimeContent>
<t:ItemId Id="AAMk1" ChangeKey="CQ1"/><t:ParentFolderId Id="AQMkInbox" ChangeKey="AQ"/>
<t:ItemClass>IPM.Note</t:ItemClass><t:Subject>FW: Notification</t:Subject>
<t:InternetMessageHeaders><t:InternetMessageHeader HeaderName="Authentication-Results">spf=pass</t:InternetMessageHeader><t:InternetMessageHeader HeaderName="X-Empty"></t:InternetMessageHeader></t:InternetMessageHeaders>
<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x7d" PropertyType="String"/><t:Value>Received: from x&#13;&#10;From: a</t:Value></t:ExtendedProperty>
<t:Sender><t:Mailbox><t:Name>Alice</t:Name><t:EmailAddress>alice@example.com</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox></t:Sender>
<t:From><t:Mailbox><t:Name>Alice</t:Name><t:RoutingType>EX</t:RoutingType></t:Mailbox></t:From>
<t:InternetMessageId>&lt;m1@example.com&gt;</t:InternetMessageId><t:IsRead>0</t:IsRead>
</t:Message></m:Items></m:GetItemResponseMessage>
<m:GetItemResponseMessage ResponseClass="Error"><m:MessageText>The specified object was not found in the store.</m:MessageText><m:ResponseCode>ErrorItemNotFound</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Items/></m:GetItemResponseMessage>
</m:ResponseMessages></m:GetItemResponse>"#);
    let r = parse_response(body.as_bytes()).expect("parses");
    let req = GetItem {
        ids: vec![ItemId::new("AAMk1", None), ItemId::new("gone", None)],
    };
    let mut got = req.parse(&r.body).expect("shape");
    let missing = got.pop().expect("two").expect_err("second is an error");
    assert_eq!(missing.code, "ErrorItemNotFound");
    let m = got.pop().expect("one").expect("first is a message");
    assert_eq!(m.mime.as_deref(), Some(&b"From: a\r\n\r\nhi"[..]));
    assert_eq!(
        m.transport_headers.as_deref(),
        Some("Received: from x\r\nFrom: a")
    );
    assert_eq!(
        m.internet_headers,
        vec![
            ("Authentication-Results".into(), "spf=pass".into()),
            ("X-Empty".into(), String::new())
        ]
    );
    assert_eq!(
        m.sender.and_then(|s| s.email).as_deref(),
        Some("alice@example.com")
    );
    let from = m.from.expect("from");
    assert_eq!(from.email, None);
    assert_eq!(from.routing_type.as_deref(), Some("EX"));
    assert_eq!(m.internet_message_id.as_deref(), Some("<m1@example.com>"));
    assert_eq!(m.is_read, Some(false));
    assert_eq!(m.id, Some(ItemId::new("AAMk1", Some("CQ1".into()))));
    // a count mismatch is an error, not a silent truncation
    let one = GetItem {
        ids: vec![ItemId::new("AAMk1", None)],
    };
    assert!(one.parse(&r.body).is_err());
}

#[test]
fn find_item_reads_ids_and_paging() {
    let body = env(
        r#"<m:FindItemResponse><m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
<m:RootFolder IndexedPagingOffset="2" TotalItemsInView="3" IncludesLastItemInRange="false"><t:Items><t:Message><t:ItemId Id="A" ChangeKey="1"/></t:Message><t:MeetingRequest><t:ItemId Id="B" ChangeKey="2"/></t:MeetingRequest></t:Items></m:RootFolder>
</m:FindItemResponseMessage></m:ResponseMessages></m:FindItemResponse>"#,
    );
    let r = parse_response(body.as_bytes()).expect("parses");
    let page = FindItem::parse(&r.body).expect("shape").expect("success");
    assert_eq!(
        page.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec!["A", "B"]
    );
    assert!(!page.paging.includes_last);
    assert_eq!(page.paging.next_offset, Some(2));
    assert_eq!(page.paging.total, Some(3));
}

#[test]
fn create_folder_reports_an_existing_folder_and_move_gives_the_new_id() {
    let body = env(
        r#"<m:CreateFolderResponse><m:ResponseMessages><m:CreateFolderResponseMessage ResponseClass="Error"><m:MessageText>A folder with the specified name already exists.</m:MessageText><m:ResponseCode>ErrorFolderExists</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Folders/></m:CreateFolderResponseMessage></m:ResponseMessages></m:CreateFolderResponse>"#,
    );
    let r = parse_response(body.as_bytes()).expect("parses");
    let req = CreateFolder {
        parent: FolderRef::distinguished("inbox", None),
        names: vec!["Processed".into()],
    };
    let e = req
        .parse(&r.body)
        .expect("shape")
        .remove(0)
        .expect_err("exists");
    assert!(e.is("ErrorFolderExists"));

    let body = env(
        r#"<m:MoveItemResponse><m:ResponseMessages><m:MoveItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message><t:ItemId Id="NEW" ChangeKey="CK2"/></t:Message></m:Items></m:MoveItemResponseMessage></m:ResponseMessages></m:MoveItemResponse>"#,
    );
    let r = parse_response(body.as_bytes()).expect("parses");
    let mv = MoveItem {
        to: FolderRef::distinguished("inbox", None),
        items: vec![ItemId::new("OLD", None)],
    };
    assert_eq!(
        mv.parse(&r.body)
            .expect("shape")
            .remove(0)
            .expect("moved")
            .id,
        "NEW"
    );
}

#[test]
fn sync_folder_items_reads_every_change_kind() {
    let body = env(
        r#"<m:SyncFolderItemsResponse><m:ResponseMessages><m:SyncFolderItemsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
<m:SyncState>H4sI2</m:SyncState><m:IncludesLastItemInRange>false</m:IncludesLastItemInRange><m:Changes>
<t:Create><t:Message><t:ItemId Id="C" ChangeKey="1"/></t:Message></t:Create>
<t:Update><t:Message><t:ItemId Id="U" ChangeKey="2"/></t:Message></t:Update>
<t:Delete><t:ItemId Id="D" ChangeKey="3"/></t:Delete>
<t:ReadFlagChange><t:ItemId Id="R" ChangeKey="4"/><t:IsRead>true</t:IsRead></t:ReadFlagChange>
</m:Changes></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>"#,
    );
    let r = parse_response(body.as_bytes()).expect("parses");
    let page = SyncFolderItems::parse(&r.body)
        .expect("shape")
        .expect("success");
    assert_eq!(page.sync_state, "H4sI2");
    assert!(!page.includes_last);
    assert_eq!(page.changes.len(), 4);
    assert!(matches!(&page.changes[0], Change::Create(i) if i.id == "C"));
    assert!(matches!(&page.changes[3], Change::ReadFlag { item, is_read: true } if item.id == "R"));
}

fn stream_envelope(inner: &str) -> String {
    env(&format!(
        r#"<m:GetStreamingEventsResponse><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{inner}</m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse>"#
    ))
}

#[test]
fn streamed_envelopes_are_cut_at_any_chunk_boundary() {
    let event = stream_envelope(
        r#"<m:Notifications><m:Notification><t:SubscriptionId>S1</t:SubscriptionId><t:NewMailEvent><t:TimeStamp>2026-01-05T10:00:00Z</t:TimeStamp><t:ItemId Id="I1" ChangeKey="C1"/><t:ParentFolderId Id="F" ChangeKey="A"/></t:NewMailEvent></m:Notification><t:Notification><t:SubscriptionId>S1</t:SubscriptionId><t:StatusEvent><t:Watermark>W</t:Watermark></t:StatusEvent></t:Notification></m:Notifications>"#,
    );
    let ok = stream_envelope("<m:ConnectionStatus>OK</m:ConnectionStatus>");
    let closed = stream_envelope("<m:ConnectionStatus>Closed</m:ConnectionStatus>");
    let stream = format!("{event}\r\n{ok}{closed}");
    for chunk in [1usize, 2, 7, 64, 1000, stream.len()] {
        let mut sp = DocumentSplitter::new(1 << 20);
        let mut docs = Vec::new();
        for c in stream.as_bytes().chunks(chunk) {
            docs.extend(sp.push(c).expect("splits"));
        }
        assert!(!sp.has_partial(), "chunk {chunk}");
        assert_eq!(docs.len(), 3, "chunk {chunk}");
        let batches: Vec<_> = docs
            .iter()
            .map(|d| {
                GetStreamingEvents::parse(&parse_response(d).expect("envelope").body)
                    .expect("shape")
                    .expect("success")
            })
            .collect();
        assert_eq!(batches[0].notifications.len(), 2);
        let ev = &batches[0].notifications[0].events[0];
        assert_eq!(ev.kind, "NewMailEvent");
        assert_eq!(ev.item.as_ref().map(|i| i.id.as_str()), Some("I1"));
        assert_eq!(batches[0].notifications[1].events[0].kind, "StatusEvent");
        assert_eq!(batches[1].status, Some(ConnectionStatus::Open));
        assert_eq!(batches[2].status, Some(ConnectionStatus::Closed));
    }
}

#[test]
fn an_endless_document_is_cut_off() {
    let mut sp = DocumentSplitter::new(1000);
    assert!(sp.push(b"<a>").expect("fine so far").is_empty());
    assert!(sp.push(&[b'x'; 2000]).is_err());
}

#[test]
fn expired_subscription_reports_its_error_and_status() {
    let doc = env(
        r#"<m:GetStreamingEventsResponse><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Error"><m:MessageText>expired</m:MessageText><m:ResponseCode>ErrorExpiredSubscription</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:ConnectionStatus>Closed</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse>"#,
    );
    let r = parse_response(doc.as_bytes()).expect("parses");
    let e = GetStreamingEvents::parse(&r.body)
        .expect("shape")
        .expect_err("error");
    assert_eq!(e.error.code, "ErrorExpiredSubscription");
    assert_eq!(e.status, Some(ConnectionStatus::Closed));
}

fn schema_valid(name: &str, doc: &str) {
    match schema::validate(&[(name.into(), doc.as_bytes().to_vec())]).expect("sample validates") {
        Outcome::Valid(n) => assert_eq!(n, 1),
        Outcome::Skipped(why) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("SKIPPED schema validation: {why}")
            }
        }
    }
}

#[test]
fn folder_permission_set_names_who_may_create_items() {
    let body = env(
        r#"<m:GetFolderResponse><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:Folder><t:FolderId Id="F1" ChangeKey="C1"/><t:DisplayName>Inbox</t:DisplayName><t:PermissionSet><t:Permissions><t:Permission><t:UserId><t:DistinguishedUser>Default</t:DistinguishedUser></t:UserId><t:CanCreateItems>false</t:CanCreateItems><t:CanCreateSubFolders>false</t:CanCreateSubFolders><t:IsFolderOwner>false</t:IsFolderOwner><t:IsFolderVisible>true</t:IsFolderVisible><t:IsFolderContact>false</t:IsFolderContact><t:EditItems>None</t:EditItems><t:DeleteItems>None</t:DeleteItems><t:ReadItems>None</t:ReadItems><t:PermissionLevel>Custom</t:PermissionLevel></t:Permission><t:Permission><t:UserId><t:SID>S-1-5-21-1-2-3-1105</t:SID><t:PrimarySmtpAddress>colleague@example.com</t:PrimarySmtpAddress><t:DisplayName>A Colleague</t:DisplayName></t:UserId><t:CanCreateItems>true</t:CanCreateItems><t:CanCreateSubFolders>false</t:CanCreateSubFolders><t:IsFolderOwner>false</t:IsFolderOwner><t:IsFolderVisible>true</t:IsFolderVisible><t:IsFolderContact>false</t:IsFolderContact><t:EditItems>Owned</t:EditItems><t:DeleteItems>Owned</t:DeleteItems><t:ReadItems>FullDetails</t:ReadItems><t:PermissionLevel>Author</t:PermissionLevel></t:Permission><t:Permission><t:UserId><t:DistinguishedUser>Anonymous</t:DistinguishedUser></t:UserId><t:PermissionLevel>None</t:PermissionLevel></t:Permission></t:Permissions></t:PermissionSet></t:Folder></m:Folders></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse>"#,
    );
    schema_valid("GetFolderPermissionSet", &body);
    let r = parse_response(body.as_bytes()).expect("parses");
    let perms = GetFolderPermissions::parse(&r.body)
        .expect("shape")
        .expect("success");
    assert_eq!(perms.len(), 3);
    assert_eq!(perms[0].user.distinguished_user.as_deref(), Some("Default"));
    assert!(!perms[0].can_create(), "visible only, no create right");
    assert_eq!(
        perms[1].user.describe(),
        "A Colleague <colleague@example.com>"
    );
    assert_eq!(perms[1].level, "Author");
    assert!(perms[1].can_create());
    assert!(!perms[2].can_create());

    // A folder answered without its permission set is not "nobody".
    let bare = env(
        r#"<m:GetFolderResponse><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:Folder><t:FolderId Id="F1"/></t:Folder></m:Folders></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse>"#,
    );
    let r = parse_response(bare.as_bytes()).expect("parses");
    assert!(GetFolderPermissions::parse(&r.body).is_err());
}

#[test]
fn permission_levels_that_create_items() {
    use ews_soap::ops::rights::{FolderPermission, UserId};
    let p = |level: &str, create: Option<bool>| FolderPermission {
        user: UserId::default(),
        can_create_items: create,
        can_create_subfolders: None,
        is_folder_owner: None,
        is_folder_visible: None,
        edit_items: None,
        delete_items: None,
        read_items: None,
        level: level.into(),
    };
    for l in [
        "Owner",
        "PublishingEditor",
        "Editor",
        "PublishingAuthor",
        "Author",
        "NoneditingAuthor",
        "Contributor",
    ] {
        assert!(p(l, None).can_create(), "{l}");
    }
    assert!(!p("None", None).can_create());
    assert!(!p("Reviewer", Some(false)).can_create());
    assert!(p("Reviewer", Some(true)).can_create());
    assert!(p("Custom", None).can_create(), "unknown is read as may");
    assert!(!p("Custom", Some(false)).can_create());
    assert!(
        p("SomethingNew", None).can_create(),
        "an unknown level fails closed"
    );
}

#[test]
fn get_delegate_lists_delegates_and_reports_none_and_refusal() {
    let body = env(
        r#"<m:GetDelegateResponse ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:ResponseMessages><m:DelegateUserResponseMessageType ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:DelegateUser><t:UserId><t:SID>S-1-5-21-1-2-3-1107</t:SID><t:PrimarySmtpAddress>assistant@example.com</t:PrimarySmtpAddress><t:DisplayName>An Assistant</t:DisplayName></t:UserId><t:DelegatePermissions><t:CalendarFolderPermissionLevel>Editor</t:CalendarFolderPermissionLevel><t:InboxFolderPermissionLevel>Reviewer</t:InboxFolderPermissionLevel></t:DelegatePermissions><t:ReceiveCopiesOfMeetingMessages>false</t:ReceiveCopiesOfMeetingMessages><t:ViewPrivateItems>false</t:ViewPrivateItems></m:DelegateUser></m:DelegateUserResponseMessageType></m:ResponseMessages><m:DeliverMeetingRequests>DelegatesAndMe</m:DeliverMeetingRequests></m:GetDelegateResponse>"#,
    );
    schema_valid("GetDelegateResponse", &body);
    let r = parse_response(body.as_bytes()).expect("parses");
    let d = GetDelegate::parse(&r.body)
        .expect("shape")
        .expect("success");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].user.describe(), "An Assistant <assistant@example.com>");
    assert_eq!(d[0].inbox_level.as_deref(), Some("Reviewer"));

    let none = env(
        r#"<m:GetDelegateResponse ResponseClass="Error"><m:MessageText>The user has no delegates.</m:MessageText><m:ResponseCode>ErrorDelegateNoUser</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:GetDelegateResponse>"#,
    );
    schema_valid("GetDelegateNoUser", &none);
    let r = parse_response(none.as_bytes()).expect("parses");
    assert!(
        GetDelegate::parse(&r.body)
            .expect("shape")
            .expect("none")
            .is_empty()
    );

    let denied = env(
        r#"<m:GetDelegateResponse ResponseClass="Error"><m:MessageText>Access is denied.</m:MessageText><m:ResponseCode>ErrorAccessDenied</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:GetDelegateResponse>"#,
    );
    let r = parse_response(denied.as_bytes()).expect("parses");
    let e = GetDelegate::parse(&r.body)
        .expect("shape")
        .expect_err("denied");
    assert!(e.is("ErrorAccessDenied"));
}
