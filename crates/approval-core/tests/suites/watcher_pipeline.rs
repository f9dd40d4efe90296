// `Pipeline::process` end to end: pam-sim (PVWA + Exchange over HTTPS) and a real slapd
// (scripts/start-slapd.sh, scripts/ldap/ad-data.ldif: alice and bob approve DBSafe, bob
// through a nested group; dave approves InfraSafe only). Each test has its own servers.
// Assertions are on pam-sim's confirm log, the mails it received, its folders, and the journal.

// (`watcher_env` is declared by the including file, with the backend.)

use approval_core::exit::Exit;
use approval_core::journal::{Begin, State};
use approval_core::mailbox::MessageRef;
use approval_core::pipeline::Pipeline;
use pam_sim::faults::{FailNext, Faults};
use watcher_env::*;

#[tokio::test]
async fn approvable_at_level_1_then_level_2_each_confirmed_once_with_the_level_account() {
    let env = env!();
    let w = pipeline(&env).await;
    // bob approves level 1 (nested in DB_PAMapprover through DB_Team). The requester, lfischer,
    // is named by her mail, lena.fischer@example.test: the directory says it is hers.
    let m1 = deliver(
        &env,
        mail(
            "l1",
            "bob@example.test",
            "DBSafe",
            7,
            requester_of(7),
            true,
        ),
    );
    let p = w.process(&m1).await.expect("process");
    done(&p, "confirmed");
    let c = confirms(&env);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (c[0].0.as_str(), c[0].1.as_str()),
        ("DBSafe_7", "svc_pam_level1")
    );
    let marker = w
        .journal()
        .get(p.row.expect("row"))
        .expect("get")
        .expect("row")
        .marker
        .expect("marker");
    assert!(
        c[0].2.contains(&marker) && c[0].2.contains("bob@example.test"),
        "{}",
        c[0].2
    );
    let replies = sent_to(&env, "bob@example.test");
    assert_eq!(replies.len(), 1);
    assert!(replies[0].0.starts_with("Approved:"), "{}", replies[0].0);
    assert!(replies[0].1.contains("DBSafe_7") && replies[0].1.contains("lfischer"));
    assert!(replies[0].2.is_empty(), "no CC on success");
    assert_eq!(folder(&env, "Processed"), vec!["l1@corp.example.test"]);
    // Now at level 2: alice (DB_PAMlevel2) forwards it.
    let m2 = deliver(
        &env,
        mail(
            "l2",
            "alice@example.test",
            "DBSafe",
            7,
            requester_of(7),
            true,
        ),
    );
    let p = w.process(&m2).await.expect("process");
    done(&p, "confirmed");
    let c = confirms(&env);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(
        (c[1].0.as_str(), c[1].1.as_str()),
        ("DBSafe_7", "svc_pam_level2")
    );
    assert_eq!(folder(&env, "Processed").len(), 2);
    assert!(
        folder(&env, "inbox").is_empty(),
        "nothing left, nothing deleted"
    );
    // The reply names what was confirmed, from PVWA, and the status after the confirm: the
    // request is now fully confirmed, not "waiting".
    let alice = sent_to(&env, "alice@example.test");
    assert_eq!(alice.len(), 1);
    let body = &alice[0].1;
    assert!(body.contains("Status now: Confirmed"), "{body}");
    assert!(!body.contains("Waiting"), "a stale status: {body}");
    assert!(body.contains("DBSafe_7") && body.contains("lfischer"), "{body}");
    assert!(!body.contains("(unknown)"), "every field from PVWA: {body}");
    // One sign-in per account role (lookup, level 1, level 2), kept across both mails.
    assert_signed_in_per_role(&env, 3);
    w.close().await;
}

#[tokio::test]
async fn already_confirmed_by_you_one_person_cannot_supply_both_levels() {
    // The static table: bob approves DBSafe at both levels (DB_PAMapprover is the group of
    // level 1 and 2 there), while in PVWA he holds only level 1 (no portal right for level 2).
    // One suite test per backend on the static mode (a supported mode).
    let env = env!();
    let w = pipeline_in(&env, "static").await;
    let first = mail(
        "a1",
        "bob@example.test",
        "DBSafe",
        7,
        requester_of(7),
        true,
    );
    let p = w.process(&deliver(&env, first)).await.expect("process");
    done(&p, "confirmed");
    // The same notice forwarded again (a new mail): the request now waits at level 2, and the
    // only confirmation so far came from bob through the level-1 account.
    let again = mail(
        "a2",
        "bob@example.test",
        "DBSafe",
        7,
        requester_of(7),
        true,
    );
    let p = w.process(&deliver(&env, again)).await.expect("process");
    done(&p, "refused");
    assert_eq!(
        p.reason_code.as_deref(),
        Some("already_confirmed_by_you"),
        "{p:?}"
    );
    let c = confirms(&env);
    assert_eq!(c.len(), 1, "one person, one confirmation: {c:?}");
    // The refusal names who acted and when, from PVWA, in the reply and in the result
    // (`--json`).
    assert_eq!(p.confirmers.len(), 1, "{p:?}");
    assert_eq!(p.confirmers[0].members, vec!["svc_pam_level1"], "{p:?}");
    let when = p.confirmers[0].time.as_ref().expect("a time").utc.clone();
    let json = serde_json::to_value(&p).expect("json");
    assert_eq!(
        json["confirmers"][0]["members"][0], "svc_pam_level1",
        "{json}"
    );
    let replies = sent_to(&env, "bob@example.test");
    assert_eq!(replies.len(), 2);
    let body = &replies[1].1;
    assert!(body.contains("already_confirmed_by_you"), "{body}");
    assert!(body.contains("Who acted on the request and when"), "{body}");
    assert!(
        body.contains("svc_pam_level1") && body.contains(&when),
        "{body}"
    );
    // Someone else still can: alice confirms level 2.
    let alice = mail(
        "b2",
        "alice@example.test",
        "DBSafe",
        7,
        requester_of(7),
        true,
    );
    let p = w.process(&deliver(&env, alice)).await.expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 2);
    w.close().await;
}

async fn refused_case(from: &str, number: u32, requester: &str, internal: bool, code: &str) {
    refused_on("DBSafe", from, number, requester, internal, code).await;
}

/// The mail names `safe`; returns the refusal sentence.
async fn refused_on(
    safe: &str,
    from: &str,
    number: u32,
    requester: &str,
    internal: bool,
    code: &str,
) -> String {
    let env = env!(String::new());
    let w = pipeline(&env).await;
    let m = deliver(&env, mail("r", from, safe, number, requester, internal));
    let p = w.process(&m).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some(code), "{p:?}");
    assert!(confirms(&env).is_empty(), "nothing confirmed");
    assert_eq!(folder(&env, "Refused"), vec!["r@corp.example.test"]);
    let replies = sent_to(&env, from);
    assert_eq!(replies.len(), 1, "one reply");
    assert!(replies[0].0.starts_with("Not approved"), "{}", replies[0].0);
    assert!(replies[0].1.contains(code), "{}", replies[0].1);
    w.close().await;
    p.reason.unwrap_or_default()
}

#[tokio::test]
async fn self_approval_is_refused() {
    refused_case(
        "alice@example.test",
        8,
        "alice@example.test",
        true,
        "self_approval",
    )
    .await;
}

#[tokio::test]
async fn another_teams_approver_is_refused() {
    // dave is a real approver, of InfraSafe (Infra_PAMapprover): his forward of alice's
    // InfraSafe request is confirmed. The same dave forwarding lfischer's DBSafe request is
    // refused: being an approver somewhere is not enough, it must be of the request's safe.
    let env = env!();
    let w = pipeline(&env).await;
    let own_team = deliver(
        &env,
        mail(
            "infra",
            "dave@example.test",
            "InfraSafe",
            11,
            requester_of(11),
            true,
        ),
    );
    let p = w.process(&own_team).await.expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 1, "dave approves his team's safe");
    let other = deliver(
        &env,
        mail(
            "db",
            "dave@example.test",
            "DBSafe",
            7,
            requester_of(7),
            true,
        ),
    );
    let p = w.process(&other).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("not_an_approver"), "{p:?}");
    let c = confirms(&env);
    assert_eq!(c.len(), 1, "nothing confirmed for DBSafe: {c:?}");
    assert_eq!(c[0].0, "InfraSafe_11", "{c:?}");
    assert_eq!(folder(&env, "Refused"), vec!["db@corp.example.test"]);
    w.close().await;
}

#[tokio::test]
async fn an_expired_request_is_refused() {
    // Request 10 expired an hour ago: its `ExpirationDate` (documented, pvwa.md §9) is in the
    // past. What else PVWA shows for it (`Status`, `InvalidRequestReason`) is unpublished
    // (ASSUMPTIONS.md P1, P20); the decision rests on the date, so the code is `expired`.
    refused_case(
        "alice@example.test",
        10,
        "dave@example.test",
        true,
        "expired",
    )
    .await;
}

#[tokio::test]
async fn an_edited_forward_is_refused() {
    // The mail claims alice asked; PVWA says dave.
    refused_case(
        "bob@example.test",
        9,
        "alice@example.test",
        true,
        "requester_mismatch",
    )
    .await;
}

/// A mail whose sender is not authentic: refused with `code`, filed in Refused, no reply to
/// the claimed sender (an attacker must not be able to mail a colleague through the watcher),
/// and a report to the PAM team that quotes neither the subject nor the text.
async fn unauthentic_case(env: &Env, w: &Pipeline, m: &MessageRef, mid: &str, code: &str) {
    let p = w.process(m).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some(code), "{p:?}");
    assert!(confirms(env).is_empty(), "nothing confirmed");
    assert_eq!(
        folder(env, "Refused"),
        vec![format!("{mid}@corp.example.test")]
    );
    assert!(
        sent_to(env, "alice@example.test").is_empty(),
        "no reply to the claimed sender"
    );
    let reports = sent_to(env, "pam-team@example.test");
    assert_eq!(reports.len(), 1, "one report to the team");
    let (subject, body, _) = &reports[0];
    assert!(subject.contains(code), "{subject}");
    assert!(
        body.contains(&format!("<{mid}@corp.example.test>")),
        "{body}"
    );
    for quoted in [
        "Please approve",
        "Password access request",
        "Maintenance",
        "DBSafe",
    ] {
        assert!(
            !subject.contains(quoted) && !body.contains(quoted),
            "the report quotes the mail ({quoted}): {subject}\n{body}"
        );
    }
    // Processing it again (a restart) sends nothing more.
    let again = w.process(m).await;
    assert!(again.is_err() || sent_to(env, "pam-team@example.test").len() == 1);
}

#[tokio::test]
async fn safe_mismatch_an_edited_safe_line_is_refused_without_naming_the_real_safe() {
    // Request 9 is on DBSafe; the forward says InfraSafe. Before, this was refused
    // request_not_found (InfraSafe_9 does not exist), blaming a missing request. dave approves
    // InfraSafe (need to know: only an approver of the safe the mail names gets this far), and
    // is not told the real safe, which he does not approve (issue 26).
    let why = refused_on(
        "InfraSafe",
        "dave@example.test",
        9,
        "dave@example.test",
        true,
        "safe_mismatch",
    )
    .await;
    assert!(
        why.contains("InfraSafe") && !why.contains("DBSafe"),
        "names the claimed safe only: {why}"
    );
}

#[tokio::test]
async fn a_forged_sender_is_refused_without_a_reply_to_the_claimed_sender() {
    let env = env!();
    let w = pipeline(&env).await;
    let raw = mail(
        "f",
        "alice@example.test",
        "DBSafe",
        9,
        "dave@example.test",
        false,
    );
    let m = deliver(&env, raw);
    unauthentic_case(&env, &w, &m, "f", "not_internal").await;
    w.close().await;
}

#[tokio::test]
async fn no_transport_headers_an_item_put_into_the_folder_is_refused() {
    // Someone with write access to the folder creates an item whose MIME headers claim an
    // internal, authenticated sender: without the transport headers Exchange stamps on
    // delivery, nothing in it can be believed.
    let env = env!();
    let w = pipeline(&env).await;
    let raw = mail(
        "t",
        "alice@example.test",
        "DBSafe",
        9,
        "dave@example.test",
        true,
    );
    let m = import(&env, raw);
    unauthentic_case(&env, &w, &m, "t", "no_transport_headers").await;
    w.close().await;
}

#[tokio::test]
async fn the_same_mail_twice_is_confirmed_once_and_answered_already_processed() {
    let env = env!();
    let w = pipeline(&env).await;
    let raw = mail(
        "dup",
        "alice@example.test",
        "DBSafe",
        9,
        "dave@example.test",
        true,
    );
    let m1 = deliver(&env, raw.clone());
    done(&w.process(&m1).await.expect("first"), "confirmed");
    let m2 = deliver(&env, raw);
    let p = w.process(&m2).await.expect("second");
    assert_eq!(p.outcome.as_deref(), Some("already_processed"), "{p:?}");
    // A third pass over the same copy (e.g. filing failed before) does not answer again.
    assert_eq!(confirms(&env).len(), 1, "one confirm");
    let replies = sent_to(&env, "alice@example.test");
    assert_eq!(replies.len(), 2, "{replies:?}");
    // The second answer says the approval stands, in the subject too (not "Not approved").
    assert!(
        replies[1].0.starts_with("Already approved: Dual Control request DBSafe_9"),
        "{}",
        replies[1].0
    );
    assert!(
        replies[1].1.contains("approved request DBSafe_9 at level 1")
            && replies[1].1.contains("stays approved"),
        "{}",
        replies[1].1
    );
    assert_eq!(folder(&env, "Processed").len(), 2, "both copies filed");
    assert!(folder(&env, "inbox").is_empty());
    assert_eq!(
        w.journal().all().expect("all").len(),
        1,
        "one row for both copies"
    );
    w.close().await;
}

/// A crash after `decided`: the row is in the journal with its marker.
async fn crashed_decided(env: &Env, w: &Pipeline, m: &MessageRef, mid: &str, marker: &str) -> i64 {
    let key = approval_core::journal::mail_key(Some(&format!("<{mid}@corp.example.test>")), b"");
    let Begin::New(e) = w.journal().begin(&key, None, Some(&m.id)).expect("begin") else {
        panic!("new row")
    };
    w.journal()
        .decided(e.row, "DBSafe_9", 1, "alice@example.test", marker)
        .expect("decided");
    let _ = env;
    e.row
}

#[tokio::test]
async fn after_a_crash_a_confirm_already_in_pvwa_is_not_repeated() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        mail(
            "crash1",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    let row = crashed_decided(&env, &w, &m, "crash1", "c0ffee123456").await;
    // The confirm reached PVWA before the crash.
    let loaded = config(&env, DEFAULT_APPROVERS);
    let pvwa = approval_core::pvwa::Pvwa::new(loaded.pvwa().expect("pvwa")).expect("client");
    let s = pvwa
        .logon("svc_pam_level1", &secrecy::SecretString::from("l1-pass"))
        .await
        .expect("logon");
    s.confirm(
        "DBSafe_9",
        "Approved on behalf of alice@example.test by mail [ref c0ffee123456]",
    )
    .await
    .expect("confirm");
    s.logoff().await;
    let p = w.process(&m).await.expect("process");
    done(&p, "confirmed");
    assert_eq!(p.row, Some(row));
    assert_eq!(confirms(&env).len(), 1, "never a second confirm");
    let hist: Vec<String> = w
        .journal()
        .history(row)
        .expect("history")
        .into_iter()
        .map(|h| h.1)
        .collect();
    assert_eq!(hist, ["seen", "decided", "confirmed", "notified", "filed"]);
    assert_eq!(sent_to(&env, "alice@example.test").len(), 1);
    w.close().await;
}

#[tokio::test]
async fn after_a_crash_before_the_confirm_it_is_sent_once() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        mail(
            "crash2",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    crashed_decided(&env, &w, &m, "crash2", "abcdefabcdef").await;
    let p = w.process(&m).await.expect("process");
    done(&p, "confirmed");
    let c = confirms(&env);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(
        c[0].2.contains("abcdefabcdef"),
        "the recorded marker is used: {}",
        c[0].2
    );
    w.close().await;
}

#[tokio::test]
async fn pvwa_503_leaves_the_mail_pending_then_it_is_confirmed() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        mail(
            "busy",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    env.sim.state.faults.set(
        "pvwa",
        Faults {
            fail: Some(FailNext {
                status: 503,
                count: 1000,
                body: None,
                content_type: None,
                headers: Default::default(),
            }),
            path_contains: Some("incomingrequests".into()),
            ..Default::default()
        },
    );
    let p = w.process(&m).await.expect("process");
    assert_eq!(p.state, Some(State::Seen), "{p:?}");
    assert!(p.pending.is_some() && p.exit != Exit::Ok, "{p:?}");
    assert_eq!(p.attempts, 1);
    let p = w.process(&m).await.expect("again");
    assert_eq!(p.attempts, 2);
    assert!(confirms(&env).is_empty());
    assert_eq!(
        folder(&env, "inbox"),
        vec!["busy@corp.example.test"],
        "the mail stays"
    );
    assert!(sent_count(&env) == 0, "no reply while pending");
    env.sim.state.faults.clear();
    let p = w.process(&m).await.expect("recovered");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 1);
    w.close().await;
}

#[tokio::test]
async fn a_mail_that_keeps_failing_is_given_up_with_a_failed_reply_to_the_team() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        mail(
            "gone",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    env.sim.state.faults.set(
        "pvwa",
        Faults {
            fail: Some(FailNext {
                status: 503,
                count: 1000,
                body: None,
                content_type: None,
                headers: Default::default(),
            }),
            path_contains: Some("incomingrequests".into()),
            ..Default::default()
        },
    );
    for _ in 0..2 {
        assert!(w.process(&m).await.expect("p").pending.is_some());
    }
    let p = w.process(&m).await.expect("third");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("gave_up"));
    let r = sent_to(&env, "alice@example.test");
    assert_eq!(r.len(), 1);
    assert!(r[0].0.starts_with("Failed"), "{}", r[0].0);
    assert_eq!(r[0].2, vec!["pam-team@example.test".to_string()]);
    assert!(confirms(&env).is_empty());
    w.close().await;
}

#[tokio::test]
async fn ldap_down_means_no_approval_and_the_mail_pending() {
    let mut env = env!();
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        mail(
            "ldap",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    drop(env.slapd.take());
    let p = w.process(&m).await.expect("process");
    assert_eq!(p.state, Some(State::Seen), "{p:?}");
    assert!(
        p.pending
            .as_deref()
            .is_some_and(|e| e.contains("directory")),
        "{p:?}"
    );
    assert_eq!(p.exit, Exit::Unavailable);
    assert!(confirms(&env).is_empty());
    assert!(sent_count(&env) == 0);
    assert_eq!(folder(&env, "inbox").len(), 1);
    w.close().await;
}

#[tokio::test]
async fn safe_members_mode_and_run_once_and_dry_run() {
    // OpsSafe's only approver group is the Vault group DB_Team: in safe-members mode it never
    // maps to a directory group, not even to the same-named LDAP group bob is in, so no group of
    // the safe maps: refused as the site's configuration (no_approver_groups, the PAM team
    // copied), not approved.
    let Some(env) = start_with(
        r#"
[[pvwa.safes]]
name = "OpsSafe"
members = [
  { name = "svc_pam_level1", type = "user", level1 = true },
  { name = "svc_pam_lookup", type = "user" },
  { name = "DB_Team", type = "group", level1 = true },
]
[[pvwa.groups]]
name = "DB_Team"
type = "Vault"
[[pvwa.requests]]
number = 12
safe = "OpsSafe"
requester = "dave"
levels = [1, 0]
"#,
    )
    .await
    else {
        return;
    };
    let loaded = config(&env, "safe-members");
    deliver(
        &env,
        mail(
            "sm",
            "bob@example.test",
            "OpsSafe",
            12,
            "dave@example.test",
            true,
        ),
    );
    let dry = Pipeline::new(&loaded, true).await.expect("dry");
    let (out, exit) = dry.run_once().await.expect("dry pass");
    assert_eq!(exit, Exit::Ok);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].outcome.as_deref(), Some("would_refuse"), "{out:?}");
    assert_eq!(out[0].reason_code.as_deref(), Some("no_approver_groups"));
    assert!(sent_count(&env) == 0 && confirms(&env).is_empty());
    assert_eq!(folder(&env, "inbox").len(), 1, "dry run files nothing");
    dry.close().await;
    let w = Pipeline::new(&loaded, false).await.expect("pipeline");
    let (out, exit) = w.run_once().await.expect("pass");
    assert_eq!(exit, Exit::Ok);
    done(&out[0], "refused");
    assert_eq!(out[0].reason_code.as_deref(), Some("no_approver_groups"));
    let (out, _) = w.run_once().await.expect("second pass");
    assert!(out.is_empty(), "nothing left: {out:?}");
    w.close().await;
}

/// Deliver through pam-sim's HTTP admin endpoint, as the demo and the Python clients do.
async fn deliver_over_http(env: &Env, raw: Vec<u8>) {
    let ca = std::fs::read(env.sim.ca_cert.as_ref().expect("https")).expect("ca");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
        .build()
        .expect("client");
    let r = client
        .post(format!("{}{}", env.sim.url(), deliver_path(env)))
        .body(raw)
        .send()
        .await
        .expect("deliver");
    assert!(r.status().is_success(), "deliver: {}", r.status());
}

/// A forward of request `number` padded with the forwarder's own text to about `size` bytes.
fn padded(mid: &str, number: u32, size: usize) -> Vec<u8> {
    let raw = String::from_utf8(mail(
        mid,
        "alice@example.test",
        "DBSafe",
        number,
        "dave@example.test",
        true,
    ))
    .expect("utf-8");
    let line = "Kept for the record, nothing to read here. ".repeat(2) + "\r\n";
    let pad = line.repeat(size.saturating_sub(raw.len()) / line.len());
    raw.replacen(
        "Please approve.\r\n",
        &format!("Please approve.\r\n{pad}"),
        1,
    )
    .into_bytes()
}

#[tokio::test]
async fn ten_mib_limit_a_mail_just_under_is_confirmed_one_over_is_too_large() {
    let env = env!();
    let w = pipeline(&env).await;
    let mib = 1024 * 1024;
    deliver_over_http(&env, padded("big-ok", 9, 10 * mib - 64 * 1024)).await;
    deliver_over_http(&env, padded("big-no", 7, 10 * mib + 64 * 1024)).await;
    let (out, exit) = w.run_once().await.expect("pass");
    assert_eq!(exit, Exit::Ok, "{out:?}");
    let by_mid = |m: &str| {
        out.iter()
            .find(|p| p.message_id.as_deref() == Some(m))
            .unwrap_or_else(|| panic!("{m} processed: {out:?}"))
    };
    done(by_mid("<big-ok@corp.example.test>"), "confirmed");
    let over = by_mid("<big-no@corp.example.test>");
    done(over, "refused");
    assert_eq!(over.reason_code.as_deref(), Some("too_large"), "{over:?}");
    assert_eq!(confirms(&env).len(), 1, "only the mail under the limit");
    w.close().await;
}

#[tokio::test]
async fn an_unauthenticated_mail_is_refused_before_its_notice_is_read() {
    // Not internal, and no notice at all: the sender check decides. Were the notice read first
    // (as it once was, on every mail, whoever sent it), this would be `not_a_request_notice`.
    // Run for real, not dry: the mail is filed in Refused, the claimed sender gets nothing, the
    // PAM team a report that quotes nothing of it, and PVWA is never signed in to.
    let env = env!();
    let raw = String::from_utf8(mail(
        "u",
        "alice@example.test",
        "DBSafe",
        9,
        "dave@example.test",
        false,
    ))
    .expect("utf-8")
    .replace("Request Id:", "Something:")
    .replace("Notification: Password access request", "Lunch");
    let m = deliver(&env, raw.into_bytes());
    let w = pipeline(&env).await;
    unauthentic_case(&env, &w, &m, "u", "not_internal").await;
    assert_eq!(w.notices_read(), 0, "the notice reader ran on it");
    let rows = w.journal().all().expect("journal");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].reason_code.as_deref(), Some("not_internal"), "{rows:?}");
    assert_eq!(rows[0].request_id, None, "nothing read from its text: {rows:?}");
    assert_eq!(rows[0].forwarder, None, "the claimed sender is no forwarder: {rows:?}");
    assert_signed_in_per_role(&env, 0);
    w.close().await;
}
