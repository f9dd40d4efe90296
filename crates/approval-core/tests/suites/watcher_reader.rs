// Issue 25, reading, end to end: what the approver saw is what is confirmed. `Pipeline::process`
// against pam-sim (PVWA + the suite's mailbox backend) and a real slapd, as
// suites/watcher_pipeline.rs. Request 97 (dave's, on DBSafe, approvable by alice) is what the
// old reader would have confirmed for each crafted mail below although no client shows it.

// (`watcher_env` is declared by the including file, with the backend.)

use watcher_env::*;

/// dave's request 97 on DBSafe, single level: approvable by alice.
const REQUEST_97: &str = "[[pvwa.requests]]\nnumber = 97\nsafe = \"DBSafe\"\nrequester = \"dave\"\nlevels = [1, 0]\n";

/// A forward from alice as Exchange delivers it, with the given text and HTML bodies (either may
/// be empty).
fn forward_mail(mid: &str, plain: &str, html: &str) -> Vec<u8> {
    let head = format!(
        "Received: from EX01.corp.example.test (10.1.2.11) by EX02.corp.example.test\r\n (10.1.2.12) with Microsoft SMTP Server; Tue, 4 Mar 2025 09:20:11 +0100\r\n\
From: Alice <alice@example.test>\r\n\
To: PAM Approvals <{BOX}>\r\n\
Subject: FW: Notification: Password access request\r\n\
Date: Tue, 4 Mar 2025 09:20:11 +0100\r\n\
Message-ID: <{mid}@corp.example.test>\r\n\
X-MS-Exchange-Organization-AuthSource: EX01.corp.example.test\r\n\
X-MS-Exchange-Organization-AuthAs: Internal\r\n\
X-MS-Exchange-Organization-AuthMechanism: 04\r\n\
MIME-Version: 1.0\r\n"
    );
    let body = match (plain.is_empty(), html.is_empty()) {
        (false, true) => format!("Content-Type: text/plain; charset=\"utf-8\"\r\n\r\n{plain}"),
        (true, _) => format!("Content-Type: text/html; charset=\"utf-8\"\r\n\r\n{html}"),
        (false, false) => format!(
            "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n\
             Content-Type: text/plain; charset=\"utf-8\"\r\n\r\n{plain}\r\n--alt\r\n\
             Content-Type: text/html; charset=\"utf-8\"\r\n\r\n{html}\r\n--alt--\r\n"
        ),
    };
    format!("{head}{body}").into_bytes()
}

/// The notification as Outlook for Windows re-serialises it in a forward, with `id` as the
/// markup of the Request Id value and `id_label` as its label.
fn outlook_html(id_label: &str, id: &str) -> String {
    let row = |label: &str, value: &str| {
        format!(
            "<tr><td><p class=MsoNormal>{label}<o:p></o:p></p></td><td><p class=MsoNormal>\
             <span style='mso-bookmark:_MailOriginal'><span lang=EN-US style='font-size:10.0pt;\
             color:black'>{value}</span></span><o:p></o:p></p></td></tr>"
        )
    };
    format!(
        "<html><head><meta name=Generator content=\"Microsoft Word 15 (filtered medium)\">\
         <!--[if gte mso 9]><xml><o:shapedefaults v:ext=\"edit\" spidmax=\"1026\" /></xml><![endif]-->\
         <style><!--\np.MsoNormal {{margin:0cm; font-size:11.0pt;}}\n--></style></head>\
         <body lang=EN-US><div class=WordSection1><p class=MsoNormal>Please approve.<o:p></o:p></p>\
         <div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>\
         <p class=MsoNormal><b>From:</b> CyberArk Vault &lt;vault-notifications@example.test&gt;<br>\
         <b>Sent:</b> Tuesday, March 4, 2025 9:12 AM<br><b>To:</b> Alice &lt;alice@example.test&gt;<br>\
         <b>Subject:</b> Notification: Password access request<o:p></o:p></p></div>\
         <table class=MsoNormalTable border=0 cellspacing=0 cellpadding=0>{}{}{}{}</table>\
         </div></body></html>",
        row("Requester email:", "dave@example.test"),
        row("Safe:", "DBSafe"),
        row(id_label, id),
        row("Reason:", "Maintenance"),
    )
}

fn plain(id: &str) -> String {
    format!(
        "Please approve.\r\n\r\n-----Original Message-----\r\n\
         From: CyberArk Vault <vault-notifications@example.test>\r\n\
         Sent: Tuesday, March 4, 2025 9:12 AM\r\nTo: Alice <alice@example.test>\r\n\
         Subject: Notification: Password access request\r\n\r\n\
         Requester email: dave@example.test\r\nSafe: DBSafe\r\nRequest Id: {id}\r\nReason: Maintenance\r\n"
    )
}

/// Process `raw`: refused with `code`, nothing confirmed in PVWA, the reply to alice gives the
/// code and says what to do. Returns the refusal sentence.
async fn refused_reading(mid: &str, raw: Vec<u8>, code: &str) -> String {
    let env = match start_with(REQUEST_97).await {
        Some(e) => e,
        None => return String::new(),
    };
    let w = pipeline(&env).await;
    let m = deliver(&env, raw);
    let p = w.process(&m).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some(code), "{p:?}");
    assert!(confirms(&env).is_empty(), "nothing confirmed: {:?}", confirms(&env));
    assert_eq!(folder(&env, "Refused"), vec![format!("{mid}@corp.example.test")]);
    let replies = sent_to(&env, "alice@example.test");
    assert_eq!(replies.len(), 1, "one reply");
    assert!(replies[0].0.starts_with("Not approved"), "{}", replies[0].0);
    assert!(replies[0].1.contains(code), "{}", replies[0].1);
    assert!(
        replies[0].1.contains("unedited") || replies[0].1.contains("portal"),
        "the reply says what to do: {}",
        replies[0].1
    );
    w.close().await;
    p.reason.unwrap_or_default()
}

#[tokio::test]
async fn reader_control_a_genuine_outlook_html_forward_of_97_is_confirmed() {
    let Some(env) = start_with(REQUEST_97).await else {
        return;
    };
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        forward_mail("ok97", &plain("97"), &outlook_html("Request Id:", "97")),
    );
    let p = w.process(&m).await.expect("process");
    done(&p, "confirmed");
    let c = confirms(&env);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].0, "DBSafe_97");
    w.close().await;
}

#[tokio::test]
async fn reader_a_value_with_hidden_text_is_refused() {
    // Every client shows "9"; the old reader read "97".
    let why = refused_reading(
        "hid97",
        forward_mail(
            "hid97",
            "",
            &outlook_html("Request Id:", "9<span style=\"display:none\">7</span>"),
        ),
        "invalid_field",
    )
    .await;
    assert!(why.is_empty() || why.contains("display:none"), "{why}");
}

#[tokio::test]
async fn reader_a_conditional_comment_pair_is_refused_never_concatenated() {
    // Outlook for Windows shows "9", every other client "7"; the old reader read "97".
    let why = refused_reading(
        "cond97",
        forward_mail(
            "cond97",
            "",
            &outlook_html(
                "Request Id:",
                "<!--[if mso]>9<![endif]--><!--[if !mso]><!-->7<!--<![endif]-->",
            ),
        ),
        "invalid_field",
    )
    .await;
    assert!(why.is_empty() || why.contains("conditional comment"), "{why}");
}

#[tokio::test]
async fn reader_a_displayed_rendering_that_cannot_be_read_is_refused() {
    // The HTML (what clients show) has a Cyrillic "е" in "Request Id" and shows 9; the
    // text/plain part, which no client shows when there is HTML, says 97. The old reader read
    // only the readable part and took 97.
    let why = refused_reading(
        "cyr97",
        forward_mail(
            "cyr97",
            &plain("97"),
            &outlook_html("R\u{0435}quest Id:", "9"),
        ),
        "unreadable_rendering",
    )
    .await;
    assert!(why.is_empty() || why.contains("request_id"), "{why}");
}
