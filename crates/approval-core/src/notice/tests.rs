//! Behaviour of the notice reader beyond the corpus (examples/mails): configuration, limits,
//! hostile shapes.

use super::*;

const NOTICE: &str =
    "Requester email: alice@example.com\r\nSafe: InfraSafe\r\nRequest Id: 1234\r\n";

fn mail(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@example.com>\r\nTo: pam@example.com\r\nSubject: {subject}\r\n\
         Date: Tue, 4 Mar 2025 09:20:11 +0100\r\nMessage-ID: <m1@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
    .into_bytes()
}

fn fwd(body: &str) -> String {
    format!(
        "From: CyberArk Vault <vault@example.com>\r\nSent: Tuesday, March 4, 2025 9:12 AM\r\n\
         To: Bob <bob@example.com>\r\nSubject: Notification: Password access request\r\n\r\n{body}"
    )
}

fn reason(raw: &[u8], cfg: &NoticeConfig) -> Reason {
    parse(raw, cfg).expect_err("refused").reason
}

#[test]
fn a_plain_forward_gives_the_notice_and_the_envelope() {
    let n = parse(
        &mail("FW: Notification: Password access request", &fwd(NOTICE)),
        &NoticeConfig::default(),
    )
    .expect("actionable");
    assert_eq!(n.request_id, "InfraSafe_1234");
    assert_eq!(n.request_number, "1234");
    assert_eq!(n.requester.as_deref(), Some("alice@example.com"));
    assert_eq!(n.shape, Shape::Inline);
    assert_eq!(n.envelope.forwarder.as_deref(), Some("bob@example.com"));
    assert_eq!(n.envelope.forwarder_name.as_deref(), Some("Bob"));
    assert_eq!(n.envelope.message_id.as_deref(), Some("m1@example.com"));
}

#[test]
fn the_id_template_is_applied() {
    let cfg = NoticeConfig {
        id_template: "{request_id}".into(),
        ..NoticeConfig::default()
    };
    let n = parse(
        &mail("FW: Notification: Password access request", &fwd(NOTICE)),
        &cfg,
    )
    .expect("ok");
    assert_eq!(n.request_id, "1234");
}

#[test]
fn config_validation_names_the_key() {
    let loaded = crate::config::Origin::default();
    let bad = NoticeConfig {
        id_template: "{safe}-{id}".into(),
        ..NoticeConfig::default()
    };
    let e = bad.validate(&loaded).expect_err("refused");
    assert_eq!(e.key.as_deref(), Some("notice.id_template"));
    let bad = NoticeConfig {
        id_template: "{safe}_{request_id}_{x}".into(),
        ..NoticeConfig::default()
    };
    assert!(bad.validate(&loaded).is_err());
    let bad = NoticeConfig {
        required: vec![Field::RequestId],
        ..NoticeConfig::default()
    };
    assert_eq!(
        bad.validate(&loaded).expect_err("safe").key.as_deref(),
        Some("notice.required")
    );
    let bad = NoticeConfig {
        max_bytes: 0,
        ..NoticeConfig::default()
    };
    assert_eq!(
        bad.validate(&loaded).expect_err("size").key.as_deref(),
        Some("notice.max_bytes")
    );
    NoticeConfig::default()
        .validate(&loaded)
        .expect("defaults are valid");
}

#[test]
fn config_section_parses_from_toml_with_custom_labels() {
    let text = r#"
[notice]
max_bytes = 1000000
id_template = "{safe}_{request_id}"
required = ["safe", "request_id"]
[notice.labels]
safe = ["Safe:", "Tresor"]
"#;
    let loaded = crate::settings::load_from_parts(Some(text), None, &[]).expect("parses");
    let cfg = &loaded.config.notice;
    cfg.validate(&loaded).expect("valid");
    assert_eq!(cfg.labels.request_id, vec!["Request Id:".to_string()]);
    let body = fwd("Tresor : Buchhaltung\r\nRequest Id: 9\r\n");
    let n = parse(
        &mail("WG: Notification: Password access request", &body),
        cfg,
    )
    .expect("ok");
    assert_eq!(n.request_id, "Buchhaltung_9");
    assert_eq!(n.requester, None);
}

#[test]
fn header_values_are_stripped_of_line_breaks_and_controls() {
    let raw = mail(
        "=?utf-8?Q?FW:_Notification:_Password_access_request=0D=0ABcc:_x@evil=E2=80=AE?=",
        &fwd(NOTICE),
    );
    let n = parse(&raw, &NoticeConfig::default()).expect("ok");
    let subject = n.envelope.subject.expect("subject");
    assert!(!subject.contains(['\r', '\n', '\u{202E}']), "{subject:?}");
    assert!(subject.ends_with("Bcc: x@evil"), "{subject:?}");
}

#[test]
fn too_large_is_refused_before_parsing() {
    let cfg = NoticeConfig {
        max_bytes: 100,
        ..NoticeConfig::default()
    };
    let raw = mail("FW: Notification: Password access request", &fwd(NOTICE));
    assert_eq!(reason(&raw, &cfg), Reason::TooLarge);
}

#[test]
fn deep_nesting_is_refused_without_crashing() {
    // 5000 levels of message/rfc822, as plain MIME.
    let mut raw = String::new();
    for _ in 0..5000 {
        raw.push_str("From: a@example.com\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    raw.push_str("From: a@example.com\r\nSubject: x\r\n\r\nSafe: X\r\n");
    assert_eq!(
        reason(raw.as_bytes(), &NoticeConfig::default()),
        Reason::TooComplex
    );
    // 20 levels: under the line count, over the depth limit.
    let mut raw = String::new();
    for _ in 0..20 {
        raw.push_str("From: a@example.com\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    raw.push_str("From: a@example.com\r\nSubject: x\r\n\r\nSafe: X\r\n");
    assert_eq!(
        reason(raw.as_bytes(), &NoticeConfig::default()),
        Reason::TooComplex
    );
}

#[test]
fn deep_nesting_hidden_in_base64_is_refused_without_crashing() {
    let mut inner = String::new();
    for _ in 0..3000 {
        inner.push_str("From: a@example.com\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    inner.push_str("From: a@example.com\r\n\r\nx\r\n");
    let encoded = base64_lines(inner.as_bytes());
    let raw = format!(
        "From: b@example.com\r\nSubject: FW: Notification: Password access request\r\n\
         MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}"
    );
    // mail-parser would copy the decoded part once per level (gigabytes from a small mail):
    // encoded message parts are refused before the real parse.
    assert_eq!(
        reason(raw.as_bytes(), &NoticeConfig::default()),
        Reason::Malformed
    );
    // The same inside a multipart/digest, whose children are messages by default.
    let digest = format!(
        "From: b@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--d--\r\n"
    );
    assert_eq!(
        reason(digest.as_bytes(), &NoticeConfig::default()),
        Reason::Malformed
    );
    // A quoted-printable one too (its lines are visible: use fewer than the line bound).
    let inner: String = inner.lines().skip(8100).collect::<Vec<_>>().join("\r\n");
    let qp = format!(
        "From: b@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
         Content-Type: message/rfc822\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n{inner}"
    );
    assert_eq!(
        reason(qp.as_bytes(), &NoticeConfig::default()),
        Reason::Malformed
    );
}

fn base64_lines(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in data.chunks(3).enumerate() {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            let idx = ((n >> (18 - 6 * k)) & 63) as usize;
            if k <= chunk.len() {
                out.push(char::from(*T.get(idx).unwrap_or(&b'A')));
            } else {
                out.push('=');
            }
        }
        if i % 19 == 18 {
            out.push_str("\r\n");
        }
    }
    out
}

#[test]
fn body_markers_are_required_when_configured() {
    let cfg = NoticeConfig {
        body_markers: vec!["requires your confirmation".into()],
        not_actionable_body_markers: vec!["has been confirmed".into()],
        ..NoticeConfig::default()
    };
    let subject = "FW: Notification: Password access request";
    assert_eq!(
        reason(&mail(subject, &fwd(NOTICE)), &cfg),
        Reason::NotARequestNotice
    );
    let body = fwd(&format!(
        "This request requires your confirmation.\r\n{NOTICE}"
    ));
    parse(&mail(subject, &body), &cfg).expect("marker present");
    let body = fwd(&format!(
        "This request has been confirmed.\r\nIt requires your confirmation.\r\n{NOTICE}"
    ));
    assert_eq!(reason(&mail(subject, &body), &cfg), Reason::NotActionable);
}

#[test]
fn a_notification_with_a_wrong_inner_subject_is_not_a_request() {
    let body = NOTICE.to_string();
    let inner = format!(
        "From: Vault <vault@example.com>\r\nSent: Tue\r\nTo: bob@example.com\r\n\
         Subject: Weekly report\r\n\r\n{body}"
    );
    assert_eq!(
        reason(
            &mail("FW: Notification: Password access request", &inner),
            &NoticeConfig::default()
        ),
        Reason::NotARequestNotice
    );
}

#[test]
fn field_values_are_checked() {
    let subject = "FW: Notification: Password access request";
    let cfg = NoticeConfig::default();
    let long_safe = fwd(
        "Requester email: alice@example.com\r\nSafe: ThisSafeNameIsLongerThan28Chars\r\nRequest Id: 1\r\n",
    );
    assert_eq!(
        reason(&mail(subject, &long_safe), &cfg),
        Reason::InvalidField
    );
    let bad_requester = fwd("Requester email: alice at example\r\nSafe: S\r\nRequest Id: 1\r\n");
    assert_eq!(
        reason(&mail(subject, &bad_requester), &cfg),
        Reason::InvalidField
    );
    let mismatch = fwd("Requester email: a@example.com\r\nSafe: S\r\nRequest Id: T_1\r\n");
    assert_eq!(
        reason(&mail(subject, &mismatch), &cfg),
        Reason::ConflictingFields
    );
    let two_safes =
        fwd("Requester email: a@example.com\r\nSafe: S\r\nSafe: T\r\nRequest Id: 1\r\n");
    assert_eq!(
        reason(&mail(subject, &two_safes), &cfg),
        Reason::ConflictingFields
    );
    // The same value twice, differently cased, is no conflict.
    let same = fwd("Requester email: a@example.com\r\nSafe: S\r\nSafe: s\r\nRequest Id: 1\r\n");
    parse(&mail(subject, &same), &cfg).expect("same safe");
    // A full id supplies the safe when the Safe line is missing.
    let full = fwd("Requester email: a@example.com\r\nRequest Id: Infra_Safe_77\r\n");
    let n = parse(&mail(subject, &full), &cfg).expect("full id");
    assert_eq!(
        (n.safe.as_str(), n.request_id.as_str()),
        ("Infra_Safe", "Infra_Safe_77")
    );
}

#[test]
fn the_subject_alone_is_not_enough() {
    assert_eq!(
        reason(
            &mail(
                "FW: Notification: Password access request",
                "please approve"
            ),
            &NoticeConfig::default()
        ),
        Reason::MissingField
    );
}

#[test]
fn auto_submitted_variants() {
    let cfg = NoticeConfig::default();
    let base = String::from_utf8(mail(
        "FW: Notification: Password access request",
        &fwd(NOTICE),
    ))
    .expect("utf-8");
    let with = |h: &str| format!("{h}\r\n{base}").into_bytes();
    assert_eq!(
        reason(&with("Auto-Submitted: auto-replied"), &cfg),
        Reason::AutoReply
    );
    assert_eq!(
        reason(&with("Auto-Submitted: auto-forwarded"), &cfg),
        Reason::AutoForwarded
    );
    assert_eq!(
        reason(&with("Precedence: auto_reply"), &cfg),
        Reason::AutoReply
    );
    parse(&with("Auto-Submitted: no"), &cfg).expect("no means a person");
    let allow = NoticeConfig {
        refuse_auto_forwarded: false,
        ..NoticeConfig::default()
    };
    parse(
        &with("X-MS-Exchange-Inbox-Rules-Loop: bob@example.com"),
        &allow,
    )
    .expect("rule forwards allowed by config");
}

#[test]
fn examination_keeps_the_envelope_of_a_refused_mail() {
    let exam = examine(
        &mail("FW: Notification: Password access request", "nothing"),
        &NoticeConfig::default(),
    );
    assert!(exam.outcome.is_err());
    assert_eq!(exam.envelope.forwarder.as_deref(), Some("bob@example.com"));
}

#[test]
fn garbage_is_malformed() {
    let cfg = NoticeConfig::default();
    assert_eq!(reason(b"", &cfg), Reason::Malformed);
    assert_eq!(reason(b"\xff\xfe\x00garbage", &cfg), Reason::Malformed);
    assert_eq!(reason(b"no colon here\n\nbody", &cfg), Reason::Malformed);
}

#[test]
fn the_shipped_example_section_parses_and_validates() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/config.d/notice.toml");
    let text = std::fs::read_to_string(&path).expect("example");
    let loaded = crate::settings::load_from_parts(Some(&text), Some(path), &[]).expect("parses");
    loaded
        .config
        .notice
        .validate(&loaded)
        .expect("[notice] valid");
    loaded
        .config
        .sender
        .validate(&loaded)
        .expect("[sender] valid");
    let d = NoticeConfig::default();
    let n = &loaded.config.notice;
    // The example documents the defaults of [notice].
    assert_eq!(n.request_subjects, d.request_subjects);
    assert_eq!(n.not_actionable_subjects, d.not_actionable_subjects);
    assert_eq!(n.auto_reply_subjects, d.auto_reply_subjects);
    assert_eq!(n.labels.account, d.labels.account);
    assert_eq!(
        (n.max_bytes, &n.id_template, &n.required),
        (d.max_bytes, &d.id_template, &d.required)
    );
}

fn alternative(text: &str, html: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@example.com>\r\nTo: pam@example.com\r\n\
         Subject: FW: Notification: Password access request\r\n\
         Date: Tue, 4 Mar 2025 09:20:11 +0100\r\nMessage-ID: <m1@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b1--\r\n"
    )
    .into_bytes()
}

#[test]
fn an_outlook_mailto_rendering_is_the_same_value_as_the_html_link() {
    let text = fwd(
        "Requester email: alice@example.com<mailto:alice@example.com>\r\nSafe: InfraSafe\r\n\
         Request Id: 1234\r\n",
    );
    let html = "<p>From: CyberArk Vault &lt;vault@example.com&gt;<br>Sent: Tuesday, March 4, 2025 \
                9:12 AM<br>To: Bob<br>Subject: Notification: Password access request</p>\
                <p>Requester email: <a href=\"mailto:alice@example.com\">alice@example.com</a><br>\
                Safe: InfraSafe<br>Request Id: 1234</p>";
    let n = parse(&alternative(&text, html), &NoticeConfig::default()).expect("one value");
    assert_eq!(n.requester.as_deref(), Some("alice@example.com"));
    // A target that names someone else is part of the value, and conflicts.
    let edited = text.replace("<mailto:alice@example.com>", "<mailto:mallory@example.com>");
    assert_eq!(
        reason(&alternative(&edited, html), &NoticeConfig::default()),
        Reason::ConflictingFields
    );
    assert_eq!(
        fields::without_link_target("https://pvwa.example <https://pvwa.example/>"),
        "https://pvwa.example"
    );
    assert_eq!(
        fields::without_link_target("InfraSafe <x>"),
        "InfraSafe <x>"
    );
}

#[test]
fn reading_is_linear_forty_thousand_distinct_ids_are_refused_quickly() {
    // Quadratic before: 40,000 distinct `Request Id:` lines took 39 s. The bound here is
    // generous (a debug build on a busy machine); the release figure is in the benchmark.
    let mut body = String::from(NOTICE);
    for i in 0..40_000 {
        body.push_str(&format!("Request Id: {i}\r\n"));
    }
    let raw = mail("FW: Notification: Password access request", &fwd(&body));
    let cfg = NoticeConfig {
        max_bytes: 10 * 1024 * 1024,
        ..NoticeConfig::default()
    };
    let started = std::time::Instant::now();
    assert_eq!(reason(&raw, &cfg), Reason::ConflictingFields);
    let took = started.elapsed();
    // Only separates linear from quadratic; figures are the benchmark's job.
    assert!(
        took < std::time::Duration::from_secs(300),
        "40,000 ids took {took:?}"
    );
}

fn real_notice_with_reason(reason: &str) -> String {
    fwd(&format!(
        "Requester email: alice@example.com\r\nSafe: InfraSafe\r\nRequest Id: 1234\r\n\
         Reason: {reason}\r\n"
    ))
}

#[test]
fn conflicting_fields_a_fake_notification_in_the_reason_is_refused() {
    let cfg = NoticeConfig::default();
    // Split by line breaks, with a forward header so it reads as a deeper quote (the innermost
    // block used to win silently and request 999 of another safe was confirmed).
    let by_lines = real_notice_with_reason(
        "urgent\r\n\r\nFrom: CyberArk Vault <vault@example.com>\r\nSent: Tuesday, March 4, 2025 9:10 AM\r\n\
         To: Bob <bob@example.com>\r\nSubject: Notification: Password access request\r\n\r\n\
         Requester email: alice@example.com\r\nSafe: ProdSafe\r\nRequest Id: 999\r\n",
    );
    let raw = mail("FW: Notification: Password access request", &by_lines);
    assert_eq!(reason(&raw, &cfg), Reason::ConflictingFields);
    // Split by tabs (a table cell inside the Reason's value).
    let by_tabs = real_notice_with_reason("urgent\tSafe: ProdSafe\tRequest Id: 999");
    let raw = mail("FW: Notification: Password access request", &by_tabs);
    assert_eq!(reason(&raw, &cfg), Reason::ConflictingFields);
    // The same values repeated (a quote of the same notice) are one notification.
    let same = real_notice_with_reason("see\r\nRequest Id: 1234\r\nSafe: InfraSafe");
    parse(
        &mail("FW: Notification: Password access request", &same),
        &cfg,
    )
    .expect("agrees");
}

#[test]
fn conflicting_fields_an_attached_look_alike_differs_from_the_inline_notice() {
    let attached = "From: CyberArk Vault <vault@example.com>\r\nTo: bob@example.com\r\n\
                    Subject: Notification: Password access request\r\n\
                    Date: Tue, 4 Mar 2025 09:12:00 +0100\r\nMessage-ID: <n1@example.com>\r\n\
                    Content-Type: text/plain\r\n\r\n\
                    Requester email: alice@example.com\r\nSafe: ProdSafe\r\nRequest Id: 999\r\n";
    let raw = format!(
        "From: Bob <bob@example.com>\r\nTo: pam@example.com\r\n\
         Subject: FW: Notification: Password access request\r\n\
         Date: Tue, 4 Mar 2025 09:20:11 +0100\r\nMessage-ID: <m1@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m1\"\r\n\r\n\
         --m1\r\nContent-Type: text/plain\r\n\r\n{}\r\n\
         --m1\r\nContent-Type: message/rfc822\r\n\r\n{attached}\r\n--m1--\r\n",
        fwd(NOTICE)
    );
    assert_eq!(
        reason(raw.as_bytes(), &NoticeConfig::default()),
        Reason::ConflictingFields
    );
}

#[test]
fn a_notice_hidden_in_html_is_refused_as_hidden_markup() {
    let text = fwd(NOTICE);
    let html = "<p>From: CyberArk Vault<br>Sent: Tuesday, March 4, 2025 9:12 AM<br>To: Bob<br>\
                Subject: Notification: Password access request</p>\
                <p>Requester email: alice@example.com<br>Safe: InfraSafe<br>Request Id: 1234</p>\
                <div style=\"display:none\">Safe: ProdSafe<br>Request Id: 999</div>";
    assert_eq!(
        reason(&alternative(&text, html), &NoticeConfig::default()),
        Reason::InvalidField
    );
}

#[test]
fn invalid_field_a_bidi_override_or_an_inner_invisible_character_is_refused() {
    let cfg = NoticeConfig::default();
    for id in ["\u{202E}4321", "12\u{200B}34", "\u{2066}1234\u{2069}"] {
        let body = fwd(&format!(
            "Requester email: alice@example.com\r\nSafe: InfraSafe\r\nRequest Id: {id}\r\n"
        ));
        let raw = mail("FW: Notification: Password access request", &body);
        assert_eq!(reason(&raw, &cfg), Reason::InvalidField, "{id:?}");
    }
    // What clients insert around labels and at a value's ends is tolerated.
    let body = fwd(
        "Requester email: alice@example.com\r\n\u{200B}Safe:\u{00A0}InfraSafe\u{FEFF}\r\n\
         Request Id:\u{200E} 1234\u{200B}\r\n",
    );
    let n = parse(
        &mail("FW: Notification: Password access request", &body),
        &cfg,
    )
    .expect("ok");
    assert_eq!(n.request_id, "InfraSafe_1234");
}
