// Rejecting by mail (issue 32), end to end through `Pipeline::process`: pam-sim (PVWA +
// Exchange) and a real slapd (alice and bob approve DBSafe at level 1; request 9 is dave's,
// one level; request 8 is alice's own). Assertions are on pam-sim's action log, the request as
// PVWA shows it, the replies it received and the journal.

// (`watcher_env` is declared by the including file, with the backend.)

use approval_core::journal::Begin;
use approval_core::mailbox::MessageRef;
use approval_core::pipeline::Pipeline;
use watcher_env::*;

/// (request, user, action, reason) of every act PVWA recorded.
fn acts(env: &Env) -> Vec<(String, String, String, String)> {
    env.sim
        .state
        .pvwa
        .actions()
        .into_iter()
        .map(|a| (a.request_id, a.user, a.action, a.reason))
        .collect()
}

fn rejects(env: &Env) -> Vec<(String, String, String, String)> {
    acts(env).into_iter().filter(|a| a.2 == "reject").collect()
}

/// `from` forwards request `number`'s notification with `own` as their own text.
fn forward_saying(env: &Env, mid: &str, from: &str, number: u32, own: &str) -> MessageRef {
    deliver(
        env,
        mail_saying(mid, from, "DBSafe", number, requester_of(number), true, own),
    )
}

fn status(env: &Env, id: &str) -> String {
    env.sim.state.pvwa.request(id).expect("request")["StatusTitle"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn a_reject_with_a_reason_is_sent_once_with_the_level_account_and_answered() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = forward_saying(
        &env,
        "rj1",
        "bob@example.test",
        9,
        "Reject: no change ticket for this host",
    );
    let p = w.process(&m).await.expect("process");
    done(&p, "rejected");
    let r = rejects(&env);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].0.as_str(), r[0].1.as_str()), ("DBSafe_9", "svc_pam_level1"));
    let marker = w.journal().all().expect("all")[0]
        .marker
        .clone()
        .expect("marker");
    assert_eq!(
        r[0].3,
        format!(
            "Rejected on behalf of bob@example.test by mail: no change ticket for this host [ref {marker}]"
        )
    );
    assert!(acts(&env).iter().all(|a| a.2 != "confirm"), "no confirm");
    assert_eq!(status(&env, "DBSafe_9"), "Rejected");
    let replies = sent_to(&env, "bob@example.test");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(
        replies[0].0.starts_with("Rejected: Dual Control request DBSafe_9"),
        "{}",
        replies[0].0
    );
    let body = &replies[0].1;
    assert!(body.contains("your rejection was recorded"), "{body}");
    assert!(body.contains("Status now: Rejected"), "{body}");
    assert!(body.contains("\"no change ticket for this host\""), "{body}");
    assert!(body.contains("svc_pam_level1"), "who acted, from PVWA: {body}");
    assert!(folder(&env, "Processed").contains(&"rj1@corp.example.test".to_string()));
    let metrics = w.metrics().encode();
    assert!(
        metrics.contains(r#"pam_approval_rejects_total{level="1"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"pam_approval_mails_total{outcome="rejected",reason=""} 1"#),
        "{metrics}"
    );
    // A second approver's approve after the reject is refused: the request is no longer
    // waiting, and the reply names who rejected it and when.
    let m2 = forward(&env, "rj1b", "alice@example.test", 9);
    let p2 = w.process(&m2).await.expect("process");
    done(&p2, "refused");
    assert_eq!(p2.reason_code.as_deref(), Some("not_waiting"), "{p2:?}");
    assert!(!p2.confirmers.is_empty(), "{p2:?}");
    assert!(acts(&env).iter().all(|a| a.2 != "confirm"), "no confirm");
    w.close().await;
}

#[tokio::test]
async fn a_reject_without_a_reason_says_so() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = forward_saying(&env, "rj2", "alice@example.test", 9, "DENY");
    let p = w.process(&m).await.expect("process");
    done(&p, "rejected");
    let r = rejects(&env);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].3.starts_with("Rejected on behalf of alice@example.test by mail [ref "),
        "{}",
        r[0].3
    );
    let replies = sent_to(&env, "alice@example.test");
    assert_eq!(replies.len(), 1);
    assert!(replies[0].1.contains("Your reason: (none given)"), "{}", replies[0].1);
    w.close().await;
}

#[tokio::test]
async fn a_decision_word_only_in_the_forwarded_part_is_no_decision() {
    let env = env!();
    let w = pipeline(&env).await;
    // The forwarder's own text has no decision; "reject" stands only in the forwarded text
    // (the notification's own "To confirm or reject", and a line added below the header).
    let raw = String::from_utf8(mail_saying(
        "rj3",
        "bob@example.test",
        "DBSafe",
        9,
        requester_of(9),
        true,
        "thanks",
    ))
    .expect("utf8")
    .replace(
        "The following user has requested",
        "reject\r\nThe following user has requested",
    );
    let m = deliver(&env, raw.into_bytes());
    let p = w.process(&m).await.expect("process");
    done(&p, "confirmed");
    assert!(rejects(&env).is_empty());
    assert_eq!(confirms(&env).len(), 1);
    w.close().await;
}

/// A decision word matches whole: a forwarder's note that starts with a name beginning with a
/// reject word ("Denys") approves; nothing is rejected.
#[tokio::test]
async fn a_note_starting_with_a_name_like_a_reject_word_approves() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = forward_saying(
        &env,
        "rj3b",
        "bob@example.test",
        9,
        "Denys, please approve\r\n\r\nBob",
    );
    let p = w.process(&m).await.expect("process");
    done(&p, "confirmed");
    assert!(rejects(&env).is_empty(), "{:?}", rejects(&env));
    assert_eq!(confirms(&env).len(), 1);
    w.close().await;
}

#[tokio::test]
async fn an_unclear_decision_is_neither_approved_nor_rejected() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = forward_saying(&env, "rj4", "bob@example.test", 9, "Please reject this one");
    let p = w.process(&m).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("unclear_decision"), "{p:?}");
    assert!(acts(&env).is_empty(), "nothing sent to PVWA");
    let replies = sent_to(&env, "bob@example.test");
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0].1.contains("\"reject\" as the very first word"),
        "{}",
        replies[0].1
    );
    w.close().await;
}

#[tokio::test]
async fn the_requester_cannot_reject_their_own_request_by_mail() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = forward_saying(&env, "rj5", "alice@example.test", 8, "reject");
    let p = w.process(&m).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("self_reject"), "{p:?}");
    assert!(
        p.reason.as_deref().unwrap_or("").contains("withdraws their own request in the PVWA portal"),
        "{p:?}"
    );
    assert!(acts(&env).is_empty(), "nothing sent to PVWA");
    assert_eq!(status(&env, "DBSafe_8"), "Waiting: 1 more user(s) must confirm the request");
    let replies = sent_to(&env, "alice@example.test");
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0].0.starts_with("Not rejected: Dual Control request DBSafe_8"),
        "{}",
        replies[0].0
    );
    assert!(replies[0].1.contains("was NOT rejected"), "{}", replies[0].1);
    w.close().await;
}

#[tokio::test]
async fn a_reject_after_the_request_was_approved_is_refused_naming_who_and_when() {
    let env = env!();
    let w = pipeline(&env).await;
    let p = w
        .process(&forward(&env, "rj6a", "bob@example.test", 9))
        .await
        .expect("process");
    done(&p, "confirmed");
    let m = forward_saying(&env, "rj6b", "alice@example.test", 9, "reject: too late?");
    let p = w.process(&m).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("not_waiting"), "{p:?}");
    assert!(
        p.confirmers.iter().any(|c| c.name == "svc_pam_level1"),
        "who: {p:?}"
    );
    assert!(rejects(&env).is_empty(), "no reject sent");
    assert_eq!(status(&env, "DBSafe_9"), "Confirmed");
    let replies = sent_to(&env, "alice@example.test");
    assert_eq!(replies.len(), 1);
    let body = &replies[0].1;
    assert!(body.contains("Who acted on the request and when"), "{body}");
    assert!(
        body.contains("Approved on behalf of bob@example.test"),
        "whose approval: {body}"
    );
    assert!(body.contains(" at 20"), "when: {body}");
    w.close().await;
}

/// A crash after `decided` for a reject: the row is in the journal with its marker.
fn crashed_reject(w: &Pipeline, m: &MessageRef, mid: &str, marker: &str) -> i64 {
    let key = approval_core::journal::mail_key(Some(&format!("<{mid}@corp.example.test>")), b"");
    let Begin::New(e) = w.journal().begin(&key, None, Some(&m.id)).expect("begin") else {
        panic!("new row")
    };
    w.journal()
        .decided_to_reject(e.row, "DBSafe_9", 1, "bob@example.test", marker, &[])
        .expect("decided");
    e.row
}

#[tokio::test]
async fn after_a_crash_between_the_reject_and_the_reply_one_reject_one_reply() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = forward_saying(&env, "rj7", "bob@example.test", 9, "reject: wrong host");
    let row = crashed_reject(&w, &m, "rj7", "c0ffee654321");
    // The reject reached PVWA before the crash; the reply was never sent.
    let loaded = config(&env, DEFAULT_APPROVERS);
    let pvwa = approval_core::pvwa::Pvwa::new(loaded.pvwa().expect("pvwa")).expect("client");
    let s = pvwa
        .logon("svc_pam_level1", &secrecy::SecretString::from("l1-pass"))
        .await
        .expect("logon");
    s.reject(
        "DBSafe_9",
        "Rejected on behalf of bob@example.test by mail: wrong host [ref c0ffee654321]",
    )
    .await
    .expect("reject");
    s.logoff().await;
    let p = w.process(&m).await.expect("process");
    done(&p, "rejected");
    assert_eq!(p.row, Some(row));
    assert_eq!(rejects(&env).len(), 1, "never a second reject");
    let hist: Vec<String> = w
        .journal()
        .history(row)
        .expect("history")
        .into_iter()
        .map(|h| h.1)
        .collect();
    assert_eq!(hist, ["seen", "decided", "confirmed", "notified", "filed"]);
    let replies = sent_to(&env, "bob@example.test");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].0.starts_with("Rejected:"), "{}", replies[0].0);
    // Processing the mail again sends nothing more to PVWA (a copy still in the mailbox is
    // answered "already processed", never "Rejected:" again).
    let _ = w.process(&m).await;
    assert_eq!(rejects(&env).len(), 1);
    let replies = sent_to(&env, "bob@example.test");
    assert_eq!(
        replies.iter().filter(|r| r.0.starts_with("Rejected:")).count(),
        1,
        "{replies:?}"
    );
    if let Some(second) = replies.get(1) {
        assert!(second.1.contains("it stays rejected"), "{}", second.1);
    }
    w.close().await;
}

#[tokio::test]
async fn after_a_crash_before_the_reject_it_is_sent_once() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = forward_saying(&env, "rj8", "bob@example.test", 9, "reject: wrong host");
    let row = crashed_reject(&w, &m, "rj8", "c0ffee000008");
    let p = w.process(&m).await.expect("process");
    done(&p, "rejected");
    assert_eq!(p.row, Some(row));
    let r = rejects(&env);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].3.ends_with("[ref c0ffee000008]"), "the recorded marker: {}", r[0].3);
    assert!(confirms(&env).is_empty());
    assert_eq!(sent_to(&env, "bob@example.test").len(), 1);
    w.close().await;
}

#[tokio::test]
async fn a_crashed_reject_whose_mail_now_approves_is_not_confirmed() {
    // The journal says reject; deciding again must give the same action, or nothing is sent.
    let env = env!();
    let w = pipeline(&env).await;
    let m = forward_saying(&env, "rj9", "bob@example.test", 9, "ok");
    crashed_reject(&w, &m, "rj9", "c0ffee000009");
    let p = w.process(&m).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("reject_failed"), "{p:?}");
    assert!(acts(&env).is_empty(), "{:?}", acts(&env));
    w.close().await;
}

#[tokio::test]
async fn a_reject_pvwa_refuses_is_reported_as_failed_with_who_acted() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = forward_saying(&env, "rj10", "bob@example.test", 9, "reject: wrong host");
    env.sim.state.faults.set(
        "pvwa",
        pam_sim::faults::Faults {
            fail: Some(pam_sim::faults::FailNext {
                status: 500,
                count: 1,
                body: Some(
                    r#"{"ErrorCode":"PASWS999E","ErrorMessage":"The request cannot be rejected."}"#
                        .into(),
                ),
                content_type: Some("application/json".into()),
                headers: Default::default(),
            }),
            path_contains: Some("/reject".into()),
            ..Default::default()
        },
    );
    let p = w.process(&m).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("reject_failed"), "{p:?}");
    assert!(rejects(&env).is_empty(), "{:?}", acts(&env));
    assert!(acts(&env).iter().all(|a| a.2 != "confirm"));
    let replies = sent_to(&env, "bob@example.test");
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0].0.starts_with("Failed to reject: Dual Control request DBSafe_9"),
        "{}",
        replies[0].0
    );
    assert!(
        replies[0].1.contains("the rejection could NOT be completed"),
        "{}",
        replies[0].1
    );
    w.close().await;
}

#[tokio::test]
async fn a_reject_at_level_2_goes_out_with_the_level_2_account() {
    let env = env!();
    let w = pipeline(&env).await;
    // bob approves level 1 of lfischer's two-level request 7; alice (level 2) rejects it.
    let p = w
        .process(&forward(&env, "rj11a", "bob@example.test", 7))
        .await
        .expect("process");
    done(&p, "confirmed");
    let m = forward_saying(&env, "rj11b", "alice@example.test", 7, "Denied: not this week");
    let p = w.process(&m).await.expect("process");
    done(&p, "rejected");
    let r = rejects(&env);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].0.as_str(), r[0].1.as_str()), ("DBSafe_7", "svc_pam_level2"));
    assert!(r[0].3.contains("alice@example.test by mail: not this week"), "{}", r[0].3);
    assert_eq!(status(&env, "DBSafe_7"), "Rejected");
    let replies = sent_to(&env, "alice@example.test");
    assert!(replies[0].0.starts_with("Rejected: Dual Control request DBSafe_7 (DBSafe, level 2)"), "{}", replies[0].0);
    // bob's approval at level 1 and alice's reject are both in "who acted".
    assert!(replies[0].1.contains("Approved on behalf of bob@example.test"), "{}", replies[0].1);
    w.close().await;
}
