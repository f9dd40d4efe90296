//! The decision reader on real-looking forwards (Outlook desktop, OWA, Outlook mobile, Gmail,
//! plain text, as an attachment; shapes from shared/reference/forwarded-html.md §2) and on
//! hostile ones. Each mail goes through the whole notice reader.

use super::super::{NoticeConfig, examine};
use super::*;

const NOTICE_TEXT: &str = "A user has requested access to a password.\r\n\
    Requester email: alice@example.com\r\nSafe: InfraSafe\r\nRequest Id: 12\r\n\
    Reason: Maintenance\r\n\
    To confirm or reject this request, log on to the Password Vault Web Access.\r\n";

const NOTICE_HTML: &str = "<p>A user has requested access to a password.</p>\
    <p>Requester email: alice@example.com</p><p>Safe: InfraSafe</p><p>Request Id: 12</p>\
    <p>Reason: Maintenance</p>\
    <p>To confirm or reject this request, log on to the Password Vault Web Access.</p>";

fn head(subject: &str) -> String {
    format!(
        "From: Bob <bob@example.com>\r\nTo: pam@example.com\r\nSubject: {subject}\r\n\
         Date: Tue, 4 Mar 2025 09:20:11 +0100\r\nMessage-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\n"
    )
}

const SUBJECT: &str = "FW: Notification: Password access request";

/// Outlook desktop, plain text: own text, `-----Original Message-----`, the header block.
fn outlook_plain(own: &str) -> Vec<u8> {
    format!(
        "{}Content-Type: text/plain; charset=utf-8\r\n\r\n{own}\r\n\r\n\
         -----Original Message-----\r\nFrom: CyberArk Vault <vault@example.com>\r\n\
         Sent: Tuesday, March 4, 2025 9:12 AM\r\nTo: Bob <bob@example.com>\r\n\
         Subject: Notification: Password access request\r\n\r\n{NOTICE_TEXT}",
        head(SUBJECT)
    )
    .into_bytes()
}

/// Outlook desktop (Word HTML) with its text/plain alternative (`own_plain`, `own_html`).
fn outlook_desktop(own_plain: &str, own_html: &str) -> Vec<u8> {
    let html = format!(
        "<html xmlns:o=\"urn:schemas-microsoft-com:office:office\"><head>\
         <meta name=Generator content=\"Microsoft Word 15 (filtered medium)\">\
         <!--[if gte mso 9]><xml><o:shapedefaults v:ext=\"edit\" spidmax=\"1026\" /></xml><![endif]-->\
         </head><body lang=EN-US link=\"#0563C1\"><div class=WordSection1>{own_html}\
         <p class=MsoNormal><o:p>&nbsp;</o:p></p>\
         <div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'>\
         <p class=MsoNormal><b>From:</b> CyberArk Vault &lt;vault@example.com&gt; <br>\
         <b>Sent:</b> Tuesday, March 4, 2025 9:12 AM<br><b>To:</b> Bob &lt;bob@example.com&gt;<br>\
         <b>Subject:</b> Notification: Password access request<o:p></o:p></p></div>\
         {NOTICE_HTML}</div></body></html>"
    );
    format!(
        "{}Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{own_plain}\r\n\r\n\
         From: CyberArk Vault <vault@example.com>\r\nSent: Tuesday, March 4, 2025 9:12 AM\r\n\
         To: Bob <bob@example.com>\r\nSubject: Notification: Password access request\r\n\r\n\
         {NOTICE_TEXT}\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b1--\r\n",
        head(SUBJECT)
    )
    .into_bytes()
}

/// An HTML-only forward: `own` then `header` (the client's forward header markup), then the
/// notification.
fn html_only(subject: &str, own: &str, header: &str) -> Vec<u8> {
    format!(
        "{}Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>{own}{header}{NOTICE_HTML}</body></html>",
        head(subject)
    )
    .into_bytes()
}

const OWA_HEADER: &str = "<div id=\"appendonsend\"></div><hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">\
    <div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri, sans-serif\" style=\"font-size:11pt\" color=\"#000000\">\
    <b>From:</b> CyberArk Vault &lt;vault@example.com&gt;<br><b>Sent:</b> Tuesday, March 4, 2025 9:12 AM<br>\
    <b>To:</b> Bob &lt;bob@example.com&gt;<br><b>Subject:</b> Notification: Password access request</font>\
    <div>&nbsp;</div></div>";

const MOBILE_HEADER: &str = "<div id=\"ms-outlook-mobile-signature\">Get <a href=\"https://aka.ms/o0ukef\">Outlook for iOS</a></div>\
    <div id=\"mail-editor-reference-message-container\" class=\"ms-outlook-mobile-reference-message\">\
    <div id=\"ms-outlook-mobile-body-separator-line\" dir=\"ltr\"></div>\
    <div dir=\"ltr\"><b>From:</b> CyberArk Vault &lt;vault@example.com&gt;<br><b>Sent:</b> Tuesday, March 4, 2025 9:12:10 AM<br>\
    <b>To:</b> Bob &lt;bob@example.com&gt;<br><b>Subject:</b> Notification: Password access request</div></div>";

const GMAIL_HEADER: &str = "<div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">---------- Forwarded message ---------<br>\
    From: <strong class=\"gmail_sendername\" dir=\"auto\">CyberArk Vault</strong> <span dir=\"auto\">&lt;<a href=\"mailto:vault@example.com\">vault@example.com</a>&gt;</span><br>\
    Date: Tue, Mar 4, 2025 at 9:12 AM<br>Subject: Notification: Password access request<br>\
    To: &lt;<a href=\"mailto:bob@example.com\">bob@example.com</a>&gt;<br></div><br><br></div>";

/// Forwarded as an attachment: `own` is the whole body; the notification is attached.
fn as_attachment(own: &str) -> Vec<u8> {
    format!(
        "{}Content-Type: multipart/mixed; boundary=\"m1\"\r\n\r\n--m1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{own}\r\n--m1\r\n\
         Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n\
         From: CyberArk Vault <vault@example.com>\r\nTo: bob@example.com\r\n\
         Subject: Notification: Password access request\r\nDate: Tue, 4 Mar 2025 09:12:00 +0100\r\n\
         Message-ID: <n1@vault.example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{NOTICE_TEXT}\r\n--m1--\r\n",
        head(SUBJECT)
    )
    .into_bytes()
}

fn decide_with(raw: &[u8], cfg: &NoticeConfig) -> Result<DecisionRead, Refusal> {
    let exam = examine(raw, cfg);
    exam.outcome.map(|n| {
        assert_eq!(n.request_id, "InfraSafe_12");
        n.decision
    })
}

fn decide(raw: &[u8]) -> Result<DecisionRead, Refusal> {
    decide_with(raw, &NoticeConfig::default())
}

#[track_caller]
fn rejects(raw: &[u8], reason: &str) {
    match decide(raw) {
        Ok(d) => assert_eq!(
            d.decision,
            Decision::Reject {
                reason: reason.into()
            },
            "{d:?}"
        ),
        Err(r) => panic!("refused: {r}"),
    }
}

#[track_caller]
fn approves(raw: &[u8]) {
    match decide(raw) {
        Ok(d) => assert_eq!(d.decision, Decision::Approve, "{d:?}"),
        Err(r) => panic!("refused: {r}"),
    }
}

#[track_caller]
fn unclear(raw: &[u8], words: &[&str]) {
    match decide(raw) {
        Ok(d) => panic!("read {d:?}, expected unclear_decision"),
        Err(r) => {
            assert_eq!(r.reason, Reason::UnclearDecision, "{}", r.message);
            for w in words {
                assert!(r.message.contains(w), "{:?} lacks {w:?}", r.message);
            }
            assert!(r.message.contains("\"reject\" as the very first word"));
        }
    }
}

#[test]
fn genuine_forwards_of_each_client() {
    // Outlook desktop, plain text.
    rejects(
        &outlook_plain("Reject: no change ticket for this host"),
        "no change ticket for this host",
    );
    rejects(&outlook_plain("deny"), "");
    rejects(
        &outlook_plain("DENIED - wrong server\r\nBob"),
        "wrong server Bob",
    );
    approves(&outlook_plain("Please approve, thanks\r\nBob"));
    approves(&outlook_plain(""));
    // Outlook desktop, Word HTML with its text/plain alternative.
    rejects(
        &outlook_desktop(
            "Reject\r\nNo ticket.",
            "<p class=MsoNormal><span style='color:#1F497D'>Reject<o:p></o:p></span></p>\
             <p class=MsoNormal><span style='color:#1F497D'>No ticket.<o:p></o:p></span></p>",
        ),
        "No ticket.",
    );
    approves(&outlook_desktop(
        "Approved",
        "<p class=MsoNormal>Approved<o:p></o:p></p>",
    ));
    // OWA / new Outlook.
    rejects(
        &html_only(
            SUBJECT,
            "<div class=\"elementToProof\" style=\"font-family: Aptos; font-size: 12pt; color: rgb(0, 0, 0);\">deny – wrong server</div>",
            OWA_HEADER,
        ),
        "wrong server",
    );
    approves(&html_only(
        SUBJECT,
        "<div class=\"elementToProof\"><br></div>",
        OWA_HEADER,
    ));
    // Outlook mobile: its signature sits in the forwarder's text.
    rejects(
        &html_only(SUBJECT, "<div dir=\"auto\">Reject</div>", MOBILE_HEADER),
        "Get Outlook for iOS",
    );
    approves(&html_only(
        SUBJECT,
        "<div dir=\"auto\"></div>",
        MOBILE_HEADER,
    ));
    // Gmail.
    rejects(
        &html_only(SUBJECT, "<div dir=\"ltr\">reject<br></div>", GMAIL_HEADER),
        "",
    );
    // Forwarded as an attachment: the body is the forwarder's text, the attachment never.
    rejects(
        &as_attachment("Rejected: not approved by CAB"),
        "not approved by CAB",
    );
    approves(&as_attachment("see attached"));
}

#[test]
fn where_the_decision_was_read_is_said() {
    let d = decide(&outlook_plain("reject: no ticket")).expect("read");
    assert_eq!(d.word.as_deref(), Some("reject"));
    assert!(d.source.contains("text/plain part"), "{}", d.source);
    let exam = examine(
        &outlook_plain("reject: no ticket"),
        &NoticeConfig::default(),
    );
    assert!(
        exam.notes
            .iter()
            .any(|n| n.starts_with("Decision: reject") && n.contains("no ticket")),
        "{:?}",
        exam.notes
    );
    let d = decide(&outlook_plain("thanks")).expect("read");
    assert_eq!(d.word, None);
    assert!(d.source.contains("none means approve"), "{}", d.source);
}

#[test]
fn decision_words_in_forwarded_or_quoted_text_are_not_the_forwarders() {
    // The notification's own "To confirm or reject" text is below the header: approve.
    approves(&outlook_plain("ok"));
    // A chain: Bob forwards Carol's "reject" reply; Carol's text is forwarded, not Bob's.
    let chain = format!(
        "{}Content-Type: text/plain; charset=utf-8\r\n\r\nplease handle\r\n\r\n\
         From: Carol <carol@example.com>\r\nSent: Tuesday, March 4, 2025 9:15 AM\r\n\
         To: Bob <bob@example.com>\r\nSubject: FW: Notification: Password access request\r\n\r\n\
         reject\r\n\r\nFrom: CyberArk Vault <vault@example.com>\r\n\
         Sent: Tuesday, March 4, 2025 9:12 AM\r\nTo: Carol <carol@example.com>\r\n\
         Subject: Notification: Password access request\r\n\r\n{NOTICE_TEXT}",
        head(SUBJECT)
    );
    approves(chain.as_bytes());
    // A word in the forward header block (its subject line) is not the forwarder's.
    let hdr = OWA_HEADER.replace(
        "Subject:</b> Notification",
        "Subject:</b> reject Notification",
    );
    approves(&html_only(SUBJECT, "<div>thanks</div>", &hdr));
    // Quoted lines above the header are someone else's text.
    approves(&outlook_plain("> reject\r\n> Carol\r\nfine by me"));
}

#[test]
fn unclear_decisions_are_refused() {
    unclear(
        &outlook_plain("Please reject this one"),
        &["not its first word"],
    );
    unclear(
        &outlook_plain("Hi team,\r\nreject"),
        &["not its first word"],
    );
    unclear(&outlook_plain("Reject\r\napprove"), &["approve word"]);
    unclear(
        &outlook_plain("Reject\r\n\r\nApproved, Bob"),
        &["approve word"],
    );
    unclear(
        &outlook_plain("Approve. Or rather reject"),
        &["reject word"],
    );
}

#[test]
fn a_decision_aimed_at_another_request_is_unclear() {
    unclear(
        &outlook_plain("reject InfraSafe_13, not this one"),
        &["names request InfraSafe_13", "request InfraSafe_12"],
    );
    unclear(
        &outlook_plain("approve DBSafe_7 please"),
        &["names request DBSafe_7"],
    );
    // Its own id is fine.
    rejects(
        &outlook_plain("reject InfraSafe_12: no ticket"),
        "InfraSafe_12: no ticket",
    );
}

#[test]
fn listed_inflections_of_the_reject_words_reject() {
    rejects(&outlook_plain("Rejection: no ticket"), "no ticket");
    rejects(&outlook_plain("denying, sorry"), "sorry");
    rejects(&outlook_plain("DENIED! no ticket"), "no ticket");
    rejects(&outlook_plain("Rejects. no ticket"), "no ticket");
    // A dash other than a hyphen ends the word.
    rejects(&outlook_plain("Reject\u{2014}no ticket"), "no ticket");
    // "Denial of access…" starts with a listed word (the noun, as "rejection" is): it rejects.
    rejects(
        &outlook_plain("Denial of access: no ticket"),
        "of access: no ticket",
    );
}

/// A decision word matches whole: a name or a longer word that merely starts with a reject
/// word is no reject word (the old rule read "Denys, please approve" as a reject).
#[test]
fn a_word_that_only_starts_with_a_decision_word_is_none() {
    approves(&outlook_plain("Denys, please approve"));
    approves(&outlook_plain("Denys"));
    approves(&outlook_plain("Denys\r\n\r\nDenys Petrenko\r\nPAM team"));
    approves(&outlook_plain("Rejectable? No, fine by me"));
    approves(&outlook_plain("Denise here: go ahead"));
    // A name later in the text is no reject word that is "not the first word" either.
    approves(&outlook_plain("Fine by me, ask Denys for the ticket"));
    approves(&outlook_plain("Approved. Denys knows"));
    // An approve word matches whole too: "Approvers" is no approve word, so a reject stays one.
    rejects(
        &outlook_plain("Reject\r\nApprovers: please check the ticket"),
        "Approvers: please check the ticket",
    );
    // "Deny-list": a decision word joined by a hyphen is neither decision, and first it is
    // unclear rather than guessed; later in the text it is no reject word.
    unclear(&outlook_plain("Deny-list entry, fine"), &["hyphen"]);
    unclear(&outlook_plain("Reject-no ticket"), &["hyphen"]);
    approves(&outlook_plain("Fine, the host is on the deny-list anyway"));
    // The subject: a name there is no reject word either.
    approves(&html_only(
        "Denys FW: Notification: Password access request",
        "<div>fine</div>",
        OWA_HEADER,
    ));
}

#[test]
fn hostile_markup_and_disagreeing_renderings_are_refused() {
    // A reject word hidden from view in the forwarder's text.
    unclear(
        &html_only(
            SUBJECT,
            "<div>ok<span style=\"display:none\"> reject</span></div>",
            OWA_HEADER,
        ),
        &["hides a decision word"],
    );
    // A visible reject with a hidden approve (or the other way round).
    unclear(
        &html_only(
            SUBJECT,
            "<div><span style=\"font-size:0\">approve </span>reject</div>",
            OWA_HEADER,
        ),
        &["hides a decision word"],
    );
    // A forward header hidden by markup does not end the forwarder's text early: the reject
    // word after it is still read (and is not the first word).
    unclear(
        &html_only(
            SUBJECT,
            "<div>thanks</div><div style=\"display:none\"><b>From:</b> x<br><b>Sent:</b> y<br><b>To:</b> z<br><b>Subject:</b> w</div><div>reject</div>",
            OWA_HEADER,
        ),
        &["not its first word"],
    );
    // The text/plain part rejects, the HTML part (what most clients show) does not.
    unclear(
        &outlook_desktop("reject", "<p class=MsoNormal>ok<o:p></o:p></p>"),
        &["show different decisions"],
    );
    unclear(
        &outlook_desktop("fine", "<p class=MsoNormal>Reject<o:p></o:p></p>"),
        &["show different decisions"],
    );
}

#[test]
fn a_reject_word_in_the_subject_only_is_unclear() {
    unclear(
        &html_only(
            "REJECT FW: Notification: Password access request",
            "<div>thanks</div>",
            OWA_HEADER,
        ),
        &["subject"],
    );
    // With a rejecting text, the subject agrees.
    rejects(
        &html_only(
            "REJECT FW: Notification: Password access request",
            "<div>reject: no</div>",
            OWA_HEADER,
        ),
        "no",
    );
}

#[test]
fn localised_words_and_their_validation() {
    let cfg = NoticeConfig {
        reject_words: vec!["ablehnen".into(), "reject".into()],
        approve_words: vec!["genehmigt".into()],
        ..NoticeConfig::default()
    };
    let raw = outlook_plain("Ablehnen: kein Ticket");
    assert_eq!(
        decide_with(&raw, &cfg).expect("read").decision,
        Decision::Reject {
            reason: "kein Ticket".into()
        }
    );
    let raw = outlook_plain("Ablehnen\r\ngenehmigt");
    assert_eq!(
        decide_with(&raw, &cfg).expect_err("unclear").reason,
        Reason::UnclearDecision
    );
    // "deny" is not a reject word in this configuration.
    assert_eq!(
        decide_with(&outlook_plain("deny"), &cfg)
            .expect("read")
            .decision,
        Decision::Approve
    );
    let origin = crate::config::Origin::default();
    for bad in [
        NoticeConfig {
            reject_words: vec![],
            ..NoticeConfig::default()
        },
        NoticeConfig {
            reject_words: vec!["two words".into()],
            ..NoticeConfig::default()
        },
        NoticeConfig {
            approve_words: vec!["Reject".into()],
            ..NoticeConfig::default()
        },
    ] {
        assert!(bad.validate(&origin).is_err(), "{:?}", bad.reject_words);
    }
    NoticeConfig::default().validate(&origin).expect("defaults");
}

#[test]
fn the_reason_is_the_decisions_paragraph_not_the_signature() {
    rejects(
        &outlook_plain("Reject: no ticket\r\n\r\nBob Berger\r\nPAM team"),
        "no ticket",
    );
    rejects(
        &outlook_plain("Reject\r\n\r\nno ticket for this\r\n\r\nBob"),
        "no ticket for this",
    );
    rejects(
        &outlook_desktop(
            "Reject: wrong host\r\n\r\nBob",
            "<p class=MsoNormal>Reject: wrong host<o:p></o:p></p>\
             <p class=MsoNormal>&nbsp;<o:p></o:p></p><p class=MsoNormal>Bob<o:p></o:p></p>",
        ),
        "wrong host",
    );
}

#[test]
fn the_reason_is_one_bounded_line() {
    let long = format!("reject {}", "x".repeat(5000));
    let d = decide(&outlook_plain(&long)).expect("read");
    match d.decision {
        Decision::Reject { reason } => {
            assert!(reason.chars().count() <= MAX_REASON_CHARS);
            assert!(!reason.contains('\n'));
        }
        other => panic!("{other:?}"),
    }
    let d = decide(&outlook_plain("reject\r\nline one\r\n\u{202E}line two")).expect("read");
    assert_eq!(
        d.decision,
        Decision::Reject {
            reason: "line one line two".into()
        }
    );
}
