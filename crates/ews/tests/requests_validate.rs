//! Every request this crate can build, in every variant, validates against Microsoft's EWS
//! schema (one xmllint call for all of them). A deliberately broken document must fail, so the
//! check cannot pass by validating nothing.

// A skipped check says so on the test output.
#![allow(clippy::print_stderr)]

use ews_soap::ops::folders::{CreateFolder, FindFolder, GetFolder, Traversal};
use ews_soap::ops::items::{FindItem, GetItem, ItemFilter, MoveItem, SendMessage, SetRead};
use ews_soap::ops::notifications::{
    GetStreamingEvents, MAIL_EVENTS, SubscribeStreaming, Unsubscribe,
};
use ews_soap::ops::rights::{GetDelegate, GetFolderPermissions};
use ews_soap::ops::sync::SyncFolderItems;
#[path = "support/schema.rs"]
mod schema;
use ews_soap::soap::{RequestHeader, envelope};
use ews_soap::{FolderRef, ItemId, Page};
use schema::Outcome;

fn all_requests() -> Vec<(String, String)> {
    let inbox = FolderRef::distinguished("inbox", None);
    let shared = FolderRef::distinguished("inbox", Some("bot@example.com"));
    let byid = FolderRef::Id(ItemId::new("AQMkF1", Some("AQAAAA==".into())));
    let id = ItemId::new("AAMkI1", Some("CQAAAB".into()));
    let id2 = ItemId::new("AAMkI2", None);
    let ops: Vec<(&str, String)> = vec![
        (
            "GetFolder",
            GetFolder {
                folders: vec![inbox.clone(), shared.clone(), byid.clone()],
            }
            .to_xml(),
        ),
        (
            "GetFolderPermissions",
            GetFolderPermissions {
                folder: shared.clone(),
            }
            .to_xml(),
        ),
        (
            "GetFolderPermissionsById",
            GetFolderPermissions {
                folder: byid.clone(),
            }
            .to_xml(),
        ),
        (
            "GetDelegate",
            GetDelegate {
                mailbox: "bot@example.com".into(),
            }
            .to_xml(),
        ),
        (
            "FindFolder",
            FindFolder {
                parent: shared.clone(),
                traversal: Traversal::Shallow,
                display_name: Some("Processed <&> \"x\"".into()),
                page: Page::default(),
            }
            .to_xml(),
        ),
        (
            "FindFolderDeep",
            FindFolder {
                parent: inbox.clone(),
                traversal: Traversal::Deep,
                display_name: None,
                page: Page {
                    max_entries: 10,
                    offset: 20,
                },
            }
            .to_xml(),
        ),
        (
            "CreateFolder",
            CreateFolder {
                parent: inbox.clone(),
                names: vec!["Processed".into(), "Refused".into()],
            }
            .to_xml(),
        ),
        (
            "FindItem",
            FindItem {
                folder: shared.clone(),
                filter: Some(ItemFilter::Unread),
                page: Page::default(),
            }
            .to_xml(),
        ),
        (
            "FindItemAll",
            FindItem {
                folder: byid.clone(),
                filter: None,
                page: Page {
                    max_entries: 5,
                    offset: 5,
                },
            }
            .to_xml(),
        ),
        (
            "FindItemSendKey",
            FindItem {
                folder: FolderRef::distinguished("sentitems", Some("bot@example.com")),
                filter: Some(ItemFilter::SendKey("reply-3f2a9c".into())),
                page: Page::default(),
            }
            .to_xml(),
        ),
        (
            "GetItem",
            GetItem {
                ids: vec![id.clone(), id2.clone()],
            }
            .to_xml(),
        ),
        (
            "UpdateItem",
            SetRead {
                items: vec![id.clone(), id2.clone()],
                read: true,
            }
            .to_xml(),
        ),
        (
            "MoveItem",
            MoveItem {
                to: byid.clone(),
                items: vec![id.clone()],
            }
            .to_xml(),
        ),
        (
            "MoveItemDistinguished",
            MoveItem {
                to: FolderRef::distinguished("deleteditems", None),
                items: vec![id2],
            }
            .to_xml(),
        ),
        (
            "CreateItemText",
            SendMessage {
                subject: "Request Safe1_42 confirmed".into(),
                text: "Approved.\r\nLine two & <more>".into(),
                html: None,
                to: vec!["alice@example.com".into()],
                cc: vec![],
                save_copy: true,
                mailbox: Some("bot@example.com".into()),
                send_key: Some("reply-3f2a9c".into()),
                headers: vec![
                    ("Auto-Submitted".into(), "auto-replied".into()),
                    ("X-Auto-Response-Suppress".into(), "All".into()),
                ],
            }
            .to_xml(),
        ),
        (
            "CreateItemHtml",
            SendMessage {
                subject: "Refused".into(),
                text: "no".into(),
                html: Some("<p>no</p>".into()),
                to: vec!["a@example.com".into(), "b@example.com".into()],
                cc: vec!["pam@example.com".into()],
                save_copy: false,
                mailbox: None,
                send_key: None,
                headers: vec![],
            }
            .to_xml(),
        ),
        (
            "Subscribe",
            SubscribeStreaming {
                folders: vec![shared.clone()],
                event_types: MAIL_EVENTS.iter().map(|s| s.to_string()).collect(),
            }
            .to_xml(),
        ),
        (
            "GetStreamingEvents",
            GetStreamingEvents {
                subscription_ids: vec!["JgBiSUB".into()],
                timeout_minutes: 30,
            }
            .to_xml(),
        ),
        (
            "Unsubscribe",
            Unsubscribe {
                subscription_id: "JgBiSUB".into(),
            }
            .to_xml(),
        ),
        (
            "SyncFolderItemsFirst",
            SyncFolderItems {
                folder: inbox.clone(),
                sync_state: None,
                max_changes: 100,
            }
            .to_xml(),
        ),
        (
            "SyncFolderItems",
            SyncFolderItems {
                folder: shared,
                sync_state: Some("H4sIAAA=".into()),
                max_changes: 512,
            }
            .to_xml(),
        ),
    ];
    let plain = RequestHeader::default();
    let imp = RequestHeader {
        impersonate: Some("bot@example.com".into()),
        version: "Exchange2013_SP1".into(),
        utc: false,
    };
    let mut out = Vec::new();
    for (name, op) in ops {
        out.push((name.to_string(), envelope(&plain, &op)));
        out.push((format!("{name}-impersonated"), envelope(&imp, &op)));
    }
    out
}

#[test]
fn every_request_validates_against_the_ews_schema() {
    let docs: Vec<(String, Vec<u8>)> = all_requests()
        .into_iter()
        .map(|(n, d)| (n, d.into_bytes()))
        .collect();
    match schema::validate(&docs).expect("all requests validate") {
        Outcome::Valid(n) => assert_eq!(n, docs.len()),
        Outcome::Skipped(why) => eprintln!("SKIPPED schema validation: {why}"),
    }
}

#[test]
fn a_broken_request_is_caught_by_the_schema_check() {
    let bad = all_requests()
        .into_iter()
        .find(|(n, _)| n == "FindItem")
        .map(|(_, d)| d.replace("Traversal=\"Shallow\"", "Traversal=\"Sideways\""))
        .expect("FindItem built");
    let reordered = all_requests()
        .into_iter()
        .find(|(n, _)| n == "GetItem")
        .map(|(_, d)| d.replace("<t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent>", "<t:IncludeMimeContent>true</t:IncludeMimeContent><t:BaseShape>IdOnly</t:BaseShape>"))
        .expect("GetItem built");
    assert!(reordered.contains("<t:IncludeMimeContent>true</t:IncludeMimeContent><t:BaseShape>"));
    for doc in [bad, reordered] {
        match schema::validate(&[("bad".into(), doc.into_bytes())]) {
            Err(msg) => assert!(msg.contains("1 of 1"), "{msg}"),
            Ok(Outcome::Skipped(why)) => eprintln!("SKIPPED schema validation: {why}"),
            Ok(Outcome::Valid(_)) => panic!("an invalid document validated"),
        }
    }
}

/// Run this test binary again as a child, running only `probe_missing_schema` with the schema
/// folder pointing at an empty directory and `PAMTEST_REQUIRE_SERVERS` as given.
fn probe(require: Option<&str>) -> (bool, String) {
    let empty = std::env::temp_dir().join(format!("ews-no-schema-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("empty dir");
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "probe_missing_schema",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("EWS_SCHEMA_PROBE", "1")
    .env(schema::SCHEMA_DIR_VAR, &empty)
    .env_remove(schema::REQUIRE_VAR);
    if let Some(v) = require {
        cmd.env(schema::REQUIRE_VAR, v);
    }
    let out = cmd.output().expect("run the probe");
    let _ = std::fs::remove_dir(&empty);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("PROBE RAN"), "the probe did not run: {text}");
    (out.status.success(), text)
}

/// The child side of [`a_missing_schema_fails_when_servers_are_required`]; does nothing unless
/// started by it.
#[test]
fn probe_missing_schema() {
    if std::env::var_os("EWS_SCHEMA_PROBE").is_none() {
        return;
    }
    eprintln!("PROBE RAN");
    let doc = all_requests().remove(0).1.into_bytes();
    match schema::validate(&[("probe".into(), doc)]) {
        Ok(Outcome::Skipped(why)) => eprintln!("PROBE SKIPPED: {why}"),
        Ok(Outcome::Valid(n)) => panic!("validated {n} without a schema"),
        Err(e) => panic!("PROBE FAILED: {e}"),
    }
}

#[test]
fn a_missing_schema_fails_when_servers_are_required() {
    // In CI (`PAMTEST_REQUIRE_SERVERS` set) a missing schema folder is a failure, never a pass
    // as "skipped"; on a developer's machine it is a skip that says so.
    let (ok, text) = probe(Some("1"));
    assert!(!ok, "a required check passed without its schema: {text}");
    assert!(
        text.contains("PROBE FAILED") && text.contains("EWS schema folder not found"),
        "{text}"
    );
    let (ok, text) = probe(None);
    assert!(ok && text.contains("PROBE SKIPPED"), "{text}");
    let (ok, text) = probe(Some("0"));
    assert!(ok && text.contains("PROBE SKIPPED"), "{text}");
}
