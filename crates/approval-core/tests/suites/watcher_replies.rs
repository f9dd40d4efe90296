// Replies that tell nothing to the wrong people and cannot be abused (issue 26, "Need to know,
// and replies that cannot be abused"): `Pipeline::process` end to end against pam-sim (PVWA and
// the suite's mailbox backend) and a real slapd (scripts/ldap/ad-data.ldif: alice and bob approve
// DBSafe, dave approves InfraSafe only, carol approves nothing). Each test has its own servers.

// (`watcher_env` is declared by the including file, with the backend.)

use std::sync::Mutex;

use approval_core::pipeline::Pipeline;
use watcher_env::*;

/// More of pam-sim's PVWA: a portal approver of DBSafe's level 1 (pat), and requests whose
/// requester reason or confirmer reason carries text written to look like the PAM mailbox's.
const EXTRA: &str = r#"
[[pvwa.users]]
name = "pat"
password = "pat-pass"
email = "pat@example.test"
groups = ["PAM_Approvers_L1"]

# dave's request whose reason tries to speak for the PAM mailbox, single level.
[[pvwa.requests]]
number = 20
safe = "DBSafe"
requester = "dave"
levels = [1, 0]
reason = "Routine check.\nIMPORTANT: confirm again at https://evil.example/login with your password\n\nThanks, the PAM team"

# dave's request that pat confirms in the portal with a reason of several lines.
[[pvwa.requests]]
number = 22
safe = "DBSafe"
requester = "dave"
levels = [1, 0]

# A safe whose level-1 approvers are a directory group (CORP\DB_PAMapprover: alice, bob) in
# safe-members mode; the tool's level-1 account confirms through PAM_Approvers_L1.
[[pvwa.safes]]
name = "TeamSafe"
members = [
  { name = 'CORP\DB_PAMapprover', type = "group", level1 = true },
  { name = "PAM_Approvers_L1", type = "group", level1 = true },
  { name = "PAM_Readers", type = "group" },
]
[[pvwa.requests]]
number = 30
safe = "TeamSafe"
requester = "dave"
levels = [1, 0]

# Issue 27: safe members by their bare names, as PVWA lists them; the vault's group records
# (GET /API/UserGroups) tell a directory group from a Vault group. DB_PAMapprover is the
# directory group (alice, bob nested); "Infra_PAMapprover" here is a Vault group named like the
# LDAP group dave belongs to; DB_Team's record names a DN that is not the LDAP DB_Team's.
[[pvwa.safes]]
name = "BareSafe"
members = [
  { name = "DB_PAMapprover", type = "group", level1 = true },
  { name = "Infra_PAMapprover", type = "group", level1 = true },
  { name = "DB_Team", type = "group", level1 = true },
  { name = "PAM_Approvers_L1", type = "group", level1 = true },
  { name = "PAM_Readers", type = "group" },
]
[[pvwa.safes]]
name = "VaultOnlySafe"
members = [
  { name = "Infra_PAMapprover", type = "group", level1 = true },
  { name = "PAM_Approvers_L1", type = "group", level1 = true },
  { name = "PAM_Readers", type = "group" },
]
[[pvwa.groups]]
name = "DB_PAMapprover"
type = "Directory"
directory = "example.test"
dn = "CN=DB_PAMapprover,OU=Groups,DC=example,DC=test"
[[pvwa.groups]]
name = "DB_Team"
type = "Directory"
directory = "example.test"
dn = "cn=DB_Team,ou=Elsewhere,dc=example,dc=test"
[[pvwa.groups]]
name = "Infra_PAMapprover"
type = "Vault"
[[pvwa.groups]]
name = "PAM_Approvers_L1"
type = "Vault"
[[pvwa.groups]]
name = "PAM_Readers"
type = "Vault"
[[pvwa.requests]]
number = 31
safe = "BareSafe"
requester = "carol"
levels = [1, 0]
[[pvwa.requests]]
number = 32
safe = "VaultOnlySafe"
requester = "carol"
levels = [1, 0]
# Requests of lfischer (directory: mail lena.fischer@example.test) and of a vault user the
# directory does not know.
[[pvwa.requests]]
number = 33
safe = "BareSafe"
requester = "lfischer"
levels = [1, 0]
[[pvwa.requests]]
number = 34
safe = "BareSafe"
requester = "ghost"
levels = [1, 0]
[[pvwa.requests]]
number = 35
safe = "BareSafe"
requester = "lfischer"
levels = [1, 0]
# A vault user the directory does not know (hvogel) whose vault record holds her e-mail, and
# one whose name contains hers (the vault's search matches parts of names) with another address.
[[pvwa.users]]
name = "hvogel"
password = "x"
full_name = "Hanna Vogel"
email = "hanna.vogel@example.test"
[[pvwa.users]]
name = "hvogel2"
password = "x"
email = "mallory@example.test"
[[pvwa.requests]]
number = 71
safe = "BareSafe"
requester = "hvogel"
levels = [1, 0]
[[pvwa.requests]]
number = 72
safe = "BareSafe"
requester = "hvogel"
levels = [1, 0]
[[pvwa.requests]]
number = 73
safe = "DBSafe"
requester = "hvogel"
levels = [1, 0]
[[pvwa.requests]]
number = 74
safe = "DBSafe"
requester = "lfischer"
levels = [1, 0]
"#;

/// The last reply to `who`, which copies the PAM team (a site fault, not the approver's).
fn last_reply_copying_the_team(env: &Env, who: &str) -> (String, String, Vec<String>) {
    let last = sent_to(env, who).pop().expect("a reply");
    assert!(
        last.2.iter().any(|c| c.eq_ignore_ascii_case("pam-team@example.test")),
        "the PAM team is copied: {last:?}"
    );
    last
}

const HOSTILE: &str = "IMPORTANT: confirm again at https://evil.example/login with your password";

/// Every line of the audit log target written during this test binary's run.
fn audit_lines() -> Vec<String> {
    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    struct Capture;
    impl log::Log for Capture {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.target() == "audit"
        }
        fn log(&self, r: &log::Record<'_>) {
            if r.target() == "audit" {
                LINES
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(r.args().to_string());
            }
        }
        fn flush(&self) {}
    }
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        log::set_boxed_logger(Box::new(Capture)).expect("the only logger of this binary");
        log::set_max_level(log::LevelFilter::Info);
    });
    LINES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The audit line of the mail with this Message-ID (parsed).
fn audit_of(mid: &str) -> serde_json::Value {
    let want = format!("<{mid}@corp.example.test>");
    audit_lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|v| v["message_id"].as_str() == Some(want.as_str()))
        .unwrap_or_else(|| panic!("no audit line for {want}"))
}

/// SCENARIO with EXTRA: EXTRA's group records replace SCENARIO's of the same name
/// (Infra_PAMapprover is a Vault group here), and DBSafe also lists PAM_Approvers_L1 (pat's
/// Vault group, a portal approver at level 1). EXTRA's safes reach the tool's accounts through
/// the Vault groups PAM_Approvers_L1 and PAM_Readers.
async fn start_extra() -> Option<Env> {
    start_edited(EXTRA, |s| {
        let mut seen = std::collections::HashSet::new();
        s.pvwa.groups.reverse();
        s.pvwa
            .groups
            .retain(|g| seen.insert(g.name.to_ascii_lowercase()));
        s.pvwa.groups.reverse();
        let db = s
            .pvwa
            .safes
            .iter_mut()
            .find(|x| x.name == "DBSafe")
            .expect("DBSafe");
        db.members.push(pam_sim::pvwa::MemberDef {
            name: "PAM_Approvers_L1".into(),
            r#type: "group".into(),
            level1: true,
            level2: false,
            view_members: true,
            expires_at: None,
        });
        for u in &mut s.pvwa.users {
            match u.name.as_str() {
                "svc_pam_level1" => u.groups.push("PAM_Approvers_L1".into()),
                "svc_pam_lookup" => u.groups.push("PAM_Readers".into()),
                _ => {}
            }
        }
    })
    .await
}

macro_rules! env_extra {
    () => {
        match start_extra().await {
            Some(e) => e,
            None => return,
        }
    };
}

/// Nothing of the request shows in `text`: not its requester, its confirmers, their reasons,
/// its status, or another safe.
fn tells_nothing(text: &str, other_safe: Option<&str>) {
    for secret in [
        "dave",
        "svc_pam_level1",
        "alice",
        "Who acted",
        "Waiting",
        "Confirmed",
        "Maintenance",
    ] {
        assert!(
            !text.contains(secret),
            "`{secret}` told to someone who approves nothing: {text}"
        );
    }
    if let Some(s) = other_safe {
        assert!(!text.contains(s), "names the other safe {s}: {text}");
    }
}

#[tokio::test]
async fn need_to_know_a_non_approver_learns_nothing_of_the_request() {
    let _ = audit_lines();
    let env = env!();
    let w = pipeline(&env).await;
    // bob confirms level 1 of lfischer's request 7: it now has a confirmer with a reason naming
    // him.
    let p = w.process(&forward(&env, "nk1", "bob@example.test", 7)).await;
    done(&p.expect("process"), "confirmed");
    // carol approves nothing: she forwards a look-alike of request 7 (her own, not one she got).
    let p = w
        .process(&forward(&env, "nk2", "carol@example.test", 7))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("not_an_approver"), "{p:?}");
    assert!(p.confirmers.is_empty(), "no confirmers in --json: {p:?}");
    let json = serde_json::to_value(&p).expect("json");
    tells_nothing(&json.to_string(), None);
    let replies = sent_to(&env, "carol@example.test");
    assert_eq!(replies.len(), 1, "{replies:?}");
    let (subject, body, _) = &replies[0];
    assert!(body.contains("not_an_approver"), "{body}");
    tells_nothing(&format!("{subject}\n{body}"), None);
    // Nor who asked (lfischer) or who confirmed (bob).
    for text in [json.to_string(), format!("{subject}\n{body}")] {
        assert!(
            !text.contains("lfischer") && !text.contains("bob"),
            "told to someone who approves nothing: {text}"
        );
    }
    assert_eq!(confirms(&env).len(), 1, "nothing more confirmed");
    w.close().await;
}

#[tokio::test]
async fn need_to_know_the_real_safe_of_a_number_is_never_named() {
    let _ = audit_lines();
    let env = env!();
    let w = pipeline(&env).await;
    // Request 9 is dave's on DBSafe. bob approves DBSafe only: a mail claiming InfraSafe_9 is
    // refused as for anyone who does not approve InfraSafe, and DBSafe is not named.
    let m = deliver(
        &env,
        mail(
            "sm1",
            "bob@example.test",
            "InfraSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    let p = w.process(&m).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("not_an_approver"), "{p:?}");
    let bob = sent_to(&env, "bob@example.test");
    assert_eq!(bob.len(), 1);
    tells_nothing(
        &format!("{}\n{}\n{:?}", bob[0].0, bob[0].1, p),
        Some("DBSafe"),
    );
    // dave approves InfraSafe: the same claim is a safe mismatch, still without the real safe.
    let m = deliver(
        &env,
        mail(
            "sm2",
            "dave@example.test",
            "InfraSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    let p = w.process(&m).await.expect("process");
    done(&p, "refused");
    assert!(
        matches!(
            p.reason_code.as_deref(),
            Some("safe_mismatch" | "request_not_found")
        ),
        "{p:?}"
    );
    let dave = sent_to(&env, "dave@example.test");
    assert_eq!(dave.len(), 1);
    let text = format!("{}\n{}\n{:?}", dave[0].0, dave[0].1, p);
    assert!(!text.contains("DBSafe"), "names the real safe: {text}");
    assert!(confirms(&env).is_empty());
    w.close().await;
}

/// The line of `body` that holds `label`, and that no line of it starts with `hostile`.
fn quoted_line<'a>(body: &'a str, label: &str) -> &'a str {
    for l in body.lines() {
        assert!(
            !l.trim_start().starts_with("IMPORTANT"),
            "outside text reads as a paragraph of the reply: {body}"
        );
    }
    body.lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no `{label}` line: {body}"))
}

#[tokio::test]
async fn need_to_know_in_safe_members_mode_reads_the_claimed_safes_members_first() {
    let _ = audit_lines();
    let env = env_extra!();
    let text = config_text(&env, "safe-members", "", "").replace(
        "[watcher]",
        "[directory.group_names]\ndomains = [\"CORP\"]\n\n[watcher]",
    );
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("cfg");
    let w = Pipeline::new(&loaded, false).await.expect("pipeline");
    // carol approves nothing: she learns nothing of dave's TeamSafe request.
    let p = w
        .process(&deliver(
            &env,
            mail(
                "tm1",
                "carol@example.test",
                "TeamSafe",
                30,
                "dave@example.test",
                true,
            ),
        ))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("not_an_approver"), "{p:?}");
    let carol = sent_to(&env, "carol@example.test");
    assert_eq!(carol.len(), 1);
    tells_nothing(&format!("{}\n{}\n{p:?}", carol[0].0, carol[0].1), None);
    // alice approves TeamSafe through the directory group: a claim of number 9 (DBSafe's,
    // which she does not approve in this mode) does not name DBSafe.
    let p = w
        .process(&deliver(
            &env,
            mail(
                "tm2",
                "alice@example.test",
                "TeamSafe",
                9,
                "dave@example.test",
                true,
            ),
        ))
        .await
        .expect("process");
    done(&p, "refused");
    assert!(
        matches!(
            p.reason_code.as_deref(),
            Some("safe_mismatch" | "request_not_found")
        ),
        "{p:?}"
    );
    let alice = sent_to(&env, "alice@example.test");
    assert_eq!(alice.len(), 1);
    let text = format!("{}\n{}\n{p:?}", alice[0].0, alice[0].1);
    assert!(!text.contains("DBSafe"), "names the real safe: {text}");
    // And her own safe's request is confirmed as before.
    let p = w
        .process(&deliver(
            &env,
            mail(
                "tm3",
                "alice@example.test",
                "TeamSafe",
                30,
                "dave@example.test",
                true,
            ),
        ))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 1);
    w.close().await;
}

#[tokio::test]
async fn a_requesters_multi_line_reason_is_quoted_as_one_bounded_line() {
    let _ = audit_lines();
    let env = env_extra!();
    let w = pipeline(&env).await;
    // The notification shows the first line of the reason, as PVWA holds it (notice_check).
    let raw = String::from_utf8(mail(
        "q1",
        "alice@example.test",
        "DBSafe",
        20,
        "dave@example.test",
        true,
    ))
    .expect("utf-8")
    .replace("Reason: Maintenance", "Reason: Routine check.");
    let p = w
        .process(&deliver(&env, raw.into_bytes()))
        .await
        .expect("process");
    done(&p, "confirmed");
    let r = sent_to(&env, "alice@example.test");
    assert_eq!(r.len(), 1);
    let body = &r[0].1;
    let line = quoted_line(body, "as typed by the requester");
    assert!(
        line.contains(&format!("\"Routine check. {HOSTILE} Thanks, the PAM team\"")),
        "one quoted line: {line}"
    );
    let requester = quoted_line(body, "Requester");
    assert!(requester.contains("\"dave\""), "quoted: {requester}");
    w.close().await;
}

#[tokio::test]
async fn a_confirmers_reason_in_who_acted_is_quoted_and_bounded() {
    let _ = audit_lines();
    let env = env_extra!();
    let w = pipeline(&env).await;
    // pat confirms request 22 in the portal with a reason of several lines, and a long one.
    let loaded = config(&env, DEFAULT_APPROVERS);
    let pvwa = approval_core::pvwa::Pvwa::new(loaded.pvwa().expect("pvwa")).expect("client");
    let s = pvwa
        .logon("pat", &secrecy::SecretString::from("pat-pass"))
        .await
        .expect("logon");
    let long = "y".repeat(600);
    s.confirm("DBSafe_22", &format!("Looks fine.\r\n{HOSTILE}\n{long}"))
        .await
        .expect("confirm");
    s.logoff().await;
    // alice forwards it: it no longer waits, and the reply lists who acted.
    let p = w
        .process(&forward(&env, "q2", "alice@example.test", 22))
        .await
        .expect("process");
    done(&p, "refused");
    let r = sent_to(&env, "alice@example.test");
    assert_eq!(r.len(), 1);
    let body = &r[0].1;
    assert!(body.contains("Who acted"), "{body}");
    let line = quoted_line(body, "Looks fine.");
    assert!(
        line.contains(&format!("\"Looks fine. {HOSTILE} yyy")),
        "quoted as data: {line}"
    );
    assert!(line.contains('…') && line.len() < 500, "bounded: {line}");
    assert!(!body.contains(&long), "cut: {body}");
    w.close().await;
}

#[tokio::test]
async fn a_mail_forwarded_by_a_rule_gets_no_reply_and_is_reported() {
    let _ = audit_lines();
    let env = env!();
    let w = pipeline(&env).await;
    let raw = String::from_utf8(mail(
        "rule",
        "alice@example.test",
        "DBSafe",
        9,
        "dave@example.test",
        true,
    ))
    .expect("utf-8")
    .replacen(
        "MIME-Version: 1.0\r\n",
        "X-MS-Exchange-Inbox-Rules-Loop: alice@example.test\r\nMIME-Version: 1.0\r\n",
        1,
    );
    let p = w
        .process(&deliver(&env, raw.into_bytes()))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("auto_forwarded"), "{p:?}");
    assert!(confirms(&env).is_empty());
    assert!(
        sent_to(&env, "alice@example.test").is_empty(),
        "no reply to a rule"
    );
    assert_eq!(folder(&env, "Refused"), vec!["rule@corp.example.test"]);
    let reports = sent_to(&env, "pam-team@example.test");
    assert_eq!(reports.len(), 1, "one report to the team");
    let (subject, body, _) = &reports[0];
    assert!(subject.contains("auto_forwarded"), "{subject}");
    assert!(
        body.contains("<rule@corp.example.test>") && body.contains("Refused"),
        "{body}"
    );
    for quoted in ["Please approve", "Maintenance", "DBSafe"] {
        assert!(!body.contains(quoted), "the report quotes the mail: {body}");
    }
    w.close().await;
}

#[tokio::test]
async fn an_unauthenticated_mails_body_is_never_read() {
    let _ = audit_lines();
    let env = env!();
    let w = pipeline(&env).await;
    // Not internal: a forged sender. Its body is a perfectly readable notice of DBSafe_9.
    let m = deliver(
        &env,
        mail(
            "forged",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            false,
        ),
    );
    let p = w.process(&m).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("not_internal"), "{p:?}");
    assert_eq!(p.request_id, None, "{p:?}");
    assert_eq!(w.notices_read(), 0, "the notice reader ran on it");
    let a = audit_of("forged");
    assert!(a["safe"].is_null(), "the body reached the audit line: {a}");
    assert!(a["request_id"].is_null(), "{a}");
    assert!(a["requester"].is_null(), "{a}");
    assert_eq!(sent_to(&env, "pam-team@example.test").len(), 1, "reported");
    // The same for an item put into the folder (no transport headers).
    let m = import(
        &env,
        mail(
            "put",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    let p = w.process(&m).await.expect("process");
    assert_eq!(p.reason_code.as_deref(), Some("no_transport_headers"));
    assert_eq!(w.notices_read(), 0, "the notice reader ran on it");
    assert!(audit_of("put")["safe"].is_null());
    // A verified forward is read, once.
    let p = w
        .process(&forward(&env, "ok", "alice@example.test", 9))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(w.notices_read(), 1);
    assert_eq!(audit_of("ok")["safe"], "DBSafe");
    w.close().await;
}

/// Internet headers (name, value).
type Headers = Vec<(String, String)>;

/// Every mail the bot mailbox sent: (recipients, Internet headers it went out with), as
/// pam-sim received them (EWS: `InternetHeaders` extended properties; Graph: PS_INTERNET_HEADERS
/// named properties and `internetMessageHeaders`).
fn sent_with_headers(env: &Env) -> Vec<(Vec<String>, Headers)> {
    match env.backend {
        Backend::Ews => env
            .sim
            .state
            .ews
            .sent()
            .into_iter()
            .map(|s| (s.to, s.headers))
            .collect(),
        Backend::Graph => env
            .sim
            .state
            .graph
            .sent()
            .into_iter()
            .map(|s| (s.to, s.headers))
            .collect(),
    }
}

#[tokio::test]
async fn every_reply_and_report_is_marked_automatic() {
    let _ = audit_lines();
    let env = env!();
    let w = pipeline(&env).await;
    // An approval, a refusal, an "already processed" answer and a report to the PAM team.
    let raw = mail(
        "h1",
        "alice@example.test",
        "DBSafe",
        9,
        "dave@example.test",
        true,
    );
    done(
        &w.process(&deliver(&env, raw.clone())).await.expect("p"),
        "confirmed",
    );
    w.process(&deliver(&env, raw)).await.expect("duplicate");
    done(
        &w.process(&forward(&env, "h2", "carol@example.test", 7))
            .await
            .expect("p"),
        "refused",
    );
    let forged = mail(
        "h3",
        "alice@example.test",
        "DBSafe",
        9,
        "dave@example.test",
        false,
    );
    done(
        &w.process(&deliver(&env, forged)).await.expect("p"),
        "refused",
    );
    let sent = sent_with_headers(&env);
    assert_eq!(sent.len(), 4, "{sent:?}");
    for (to, headers) in &sent {
        for (name, value) in [
            ("Auto-Submitted", "auto-replied"),
            ("X-Auto-Response-Suppress", "All"),
        ] {
            assert!(
                headers
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value),
                "the mail to {to:?} lacks {name}: {value}: {headers:?}"
            );
        }
    }
    w.close().await;
}

#[tokio::test]
async fn bare_group_names_map_through_the_vaults_group_records_in_the_default_mode() {
    let _ = audit_lines();
    let env = env_extra!();
    let loaded = approval_core::settings::load_from_parts(
        Some(&config_text(&env, "safe-members", "", "")),
        None,
        &[],
    )
    .expect("cfg");
    let w = Pipeline::new(&loaded, false).await.expect("pipeline");
    let forward = |mid: &str, from: &str, safe: &str, number: u32| {
        deliver(
            &env,
            mail(mid, from, safe, number, "carol@example.test", true),
        )
    };
    // dave is in the LDAP group Infra_PAMapprover; the safe's member of that name is a Vault
    // group: it grants him nothing.
    let p = w
        .process(&forward("bare1", "dave@example.test", "BareSafe", 31))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("not_an_approver"), "{p:?}");
    // bob is in the LDAP DB_Team, but the vault's DB_Team record names another DN; he
    // approves BareSafe only through DB_PAMapprover (nested), which is a directory group.
    // alice approves through the directory group DB_PAMapprover, matched by its DN.
    let p = w
        .process(&forward("bare2", "alice@example.test", "BareSafe", 31))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 1);
    // A safe whose group members are Vault groups only: the site's configuration, not the
    // approver's fault; the reply says so and copies the PAM team.
    let p = w
        .process(&forward("bare3", "alice@example.test", "VaultOnlySafe", 32))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("no_approver_groups"), "{p:?}");
    let last = last_reply_copying_the_team(&env, "alice@example.test");
    assert!(last.1.contains("maps to a directory group"), "{}", last.1);
    // Decided before the request is read: the safe's members are not listed to the forwarder.
    assert!(!last.1.contains("Infra_PAMapprover"), "{}", last.1);
    assert_eq!(confirms(&env).len(), 1, "nothing more confirmed");
    w.close().await;
}

#[tokio::test]
async fn a_directory_record_with_a_dn_matches_that_entry_only() {
    let _ = audit_lines();
    let env = env_extra!();
    let loaded = approval_core::settings::load_from_parts(
        Some(&config_text(&env, "safe-members", "", "")),
        None,
        &[],
    )
    .expect("cfg");
    let mut s = loaded.directory().expect("directory");
    s.cache_ttl = std::time::Duration::ZERO;
    let dir = approval_core::directory::LdapDirectory::new(s.clone(), "svcpw".into())
        .expect("directory");
    let pvwa = approval_core::pvwa::Pvwa::new(loaded.pvwa().expect("pvwa")).expect("client");
    let cache = approval_core::directory::cache::TtlCache::new(std::time::Duration::ZERO);
    let read = pvwa
        .with_session(
            "svc_pam_lookup",
            &"lookup-pass".to_string().into(),
            async |x: &approval_core::pvwa::Session| {
                approval_core::directory::check::read_safe_approvers(x, "BareSafe", &cache).await
            },
        )
        .await
        .expect("read");
    let a = read.at(&s, 1, chrono::Utc::now().timestamp());
    let names: Vec<&str> = a.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, vec!["DB_PAMapprover", "DB_Team"], "{a:?}");
    // bob is a direct member of the LDAP DB_Team (another DN than the vault's record) and a
    // nested member of DB_PAMapprover: granted by DB_PAMapprover only.
    let v = approval_core::directory::authorize(&dir, "bob@example.test", "BareSafe", 1, a)
        .await
        .expect("verdict");
    assert!(v.may_approve, "{v:?}");
    let dbteam = v.groups.iter().find(|g| g.name == "DB_Team").expect("DB_Team");
    assert_eq!(dbteam.status, "not_found", "{dbteam:?}");
    dir.close().await;
}

#[tokio::test]
async fn the_requester_is_compared_as_the_directory_knows_them() {
    let _ = audit_lines();
    let env = env_extra!();
    let loaded = approval_core::settings::load_from_parts(
        Some(&config_text(&env, "safe-members", "", "")),
        None,
        &[],
    )
    .expect("cfg");
    let w = Pipeline::new(&loaded, false).await.expect("pipeline");
    let forward = |mid: &str, number: u32, requester: &str| {
        deliver(
            &env,
            mail(mid, "alice@example.test", "BareSafe", number, requester, true),
        )
    };
    // PVWA says lfischer; the notification says lena.fischer@…: the directory's lfischer.
    let p = w
        .process(&forward("rq1", 33, "lena.fischer@example.test"))
        .await
        .expect("process");
    done(&p, "confirmed");
    // The mail names another person for lfischer's request: someone edited it.
    let p = w
        .process(&forward("rq2", 35, "carol@example.test"))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("requester_mismatch"), "{p:?}");
    // The directory knows no account "ghost": the two cannot be matched; a site fact, the
    // PAM team is copied, and the sentence names the setting.
    let p = w
        .process(&forward("rq3", 34, "g.host@example.test"))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("requester_unresolved"), "{p:?}");
    let last = last_reply_copying_the_team(&env, "alice@example.test");
    assert!(last.1.contains("[notice.labels] requester"), "{}", last.1);
    assert!(!last.1.contains("looks edited"), "{}", last.1);
    assert_eq!(confirms(&env).len(), 1);
    w.close().await;
}

#[tokio::test]
async fn the_vaults_e_mail_of_the_requester_vouches_for_the_mails_requester_address() {
    let _ = audit_lines();
    let env = env_extra!();
    let loaded = approval_core::settings::load_from_parts(
        Some(&config_text(&env, "safe-members", "", "")),
        None,
        &[],
    )
    .expect("cfg");
    let w = Pipeline::new(&loaded, false).await.expect("pipeline");
    let forward = |mid: &str, number: u32, requester: &str| {
        deliver(
            &env,
            mail(mid, "alice@example.test", "BareSafe", number, requester, true),
        )
    };
    // The directory knows no hvogel; the vault's record of hvogel holds the mail's address.
    let p = w
        .process(&forward("rqv1", 71, "Hanna.Vogel@example.test"))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 1);
    // Another address: the vault's e-mail is not the mail's (hvogel2's record, found by the
    // same search, does not count): refused as before.
    let p = w
        .process(&forward("rqv2", 72, "mallory@example.test"))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("requester_unresolved"), "{p:?}");
    let last = last_reply_copying_the_team(&env, "alice@example.test");
    assert!(last.1.contains("hanna.vogel@example.test"), "{}", last.1);
    assert_eq!(confirms(&env).len(), 1, "nothing more confirmed");
    w.close().await;
}

#[tokio::test]
async fn without_audit_users_the_requester_rule_is_the_directorys_alone() {
    let _ = audit_lines();
    let env = match start_edited(EXTRA, |s| {
        for u in s.pvwa.users.iter_mut().filter(|u| u.name == "svc_pam_lookup") {
            u.audit_users = false;
        }
    })
    .await
    {
        Some(e) => e,
        None => return,
    };
    let loaded = approval_core::settings::load_from_parts(
        Some(&config_text(&env, "static", "", "")),
        None,
        &[],
    )
    .expect("cfg");
    let w = Pipeline::new(&loaded, false).await.expect("pipeline");
    let forward = |mid: &str, number: u32, requester: &str| {
        deliver(
            &env,
            mail(mid, "alice@example.test", "DBSafe", number, requester, true),
        )
    };
    // PVWA refuses the lookup account the user records: not a fault, the directory decides.
    let p = w
        .process(&forward("rqa1", 73, "hanna.vogel@example.test"))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.pending, None, "{p:?}");
    assert_eq!(p.reason_code.as_deref(), Some("requester_unresolved"), "{p:?}");
    // The directory still vouches for lfischer's address.
    let p = w
        .process(&forward("rqa2", 74, "lena.fischer@example.test"))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 1);
    w.close().await;
}
