//! Issue 25, reading: what is displayed is what is confirmed. Each attack class of the issue is
//! refused with its code; the genuine markup shapes of shared/reference/forwarded-html.md §2
//! stay readable.

use super::*;

const HEAD: &str = "From: Bob <bob@example.com>\r\nTo: pam@example.com\r\n\
    Subject: FW: Notification: Password access request\r\n\
    Date: Tue, 4 Mar 2025 09:20:11 +0100\r\nMessage-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\n";

const FWD_HTML: &str = "<p><b>From:</b> CyberArk Vault &lt;vault@example.com&gt;<br>\
    <b>Sent:</b> Tuesday, March 4, 2025 9:12 AM<br><b>To:</b> Bob &lt;bob@example.com&gt;<br>\
    <b>Subject:</b> Notification: Password access request</p>";

/// An HTML-only forward whose notice lines are `safe`, `id`, `requester` (markup allowed).
fn html_mail(safe: &str, id: &str, requester: &str) -> Vec<u8> {
    html_body(&format!(
        "<html><body>{FWD_HTML}<p>Requester email: {requester}</p><p>Safe: {safe}</p>\
         <p>Request Id: {id}</p></body></html>"
    ))
}

fn html_body(body: &str) -> Vec<u8> {
    format!("{HEAD}Content-Type: text/html; charset=utf-8\r\n\r\n{body}").into_bytes()
}

fn read(raw: &[u8]) -> Result<Notice, Refusal> {
    parse(raw, &NoticeConfig::default())
}

#[track_caller]
fn refused(raw: &[u8], code: &str, words: &[&str]) {
    match read(raw) {
        Ok(n) => panic!("accepted {} but expected {code}", n.request_id),
        Err(r) => {
            assert_eq!(r.reason.code(), code, "{}", r.message);
            for w in words {
                assert!(r.message.contains(w), "{:?} lacks {w:?}", r.message);
            }
        }
    }
}

#[track_caller]
fn accepted(raw: &[u8], id: &str) {
    match read(raw) {
        Ok(n) => assert_eq!(n.request_id, id),
        Err(r) => panic!("refused: {r}"),
    }
}

const ALICE: &str = "alice@example.com";

#[test]
fn hidden_text_inside_a_value_is_refused() {
    let raw = html_mail(
        "InfraSafe",
        "12<span style=\"display:none\">99</span>",
        ALICE,
    );
    refused(
        &raw,
        "invalid_field",
        &["request_id", "display:none", "<span>"],
    );
    let raw = html_mail("InfraSafe", "12<span style='font-size:0'>99</span>", ALICE);
    refused(&raw, "invalid_field", &["font-size"]);
    let raw = html_mail(
        "InfraSafe",
        "12<span style='font-size:1px'>99</span>",
        ALICE,
    );
    refused(&raw, "invalid_field", &["font-size"]);
    let raw = html_mail(
        "InfraSafe",
        "12<span style='color:#ffffff'>99</span>",
        ALICE,
    );
    refused(&raw, "invalid_field", &["colour"]);
    let raw = html_mail(
        "InfraSafe",
        "<span style='background:#123456'>12<span style='color:#123456'>99</span></span>",
        ALICE,
    );
    refused(&raw, "invalid_field", &["colour"]);
    let raw = html_mail(
        "InfraSafe",
        "12<span style='position:absolute;left:-9999px'>99</span>",
        ALICE,
    );
    refused(&raw, "invalid_field", &["position"]);
    let raw = html_mail(
        "InfraSafe",
        "12<details><summary></summary>99</details>",
        ALICE,
    );
    refused(&raw, "invalid_field", &["<details>"]);
    let raw = html_mail(
        "Infra<span style='mso-hide:all'>Other</span>Safe",
        "12",
        ALICE,
    );
    refused(&raw, "invalid_field", &["safe", "mso-hide"]);
    let raw = html_mail("InfraSafe", "12<span hidden>99</span>", ALICE);
    refused(&raw, "invalid_field", &["hidden"]);
    let raw = html_mail(
        "InfraSafe",
        "12<span style='max-height:0;overflow:hidden'>99</span>",
        ALICE,
    );
    refused(&raw, "invalid_field", &["overflow"]);
    let raw = html_mail("InfraSafe", "12<span style='opacity:0'>99</span>", ALICE);
    refused(&raw, "invalid_field", &["opacity"]);
    // An ancestor hides the whole value.
    let raw = html_body(&format!(
        "<html><body>{FWD_HTML}<p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p>\
         <p>Request Id: <span style='font-size:0'><span>99</span></span></p></body></html>"
    ));
    refused(&raw, "invalid_field", &["font-size"]);
}

#[test]
fn hidden_text_through_a_style_class_is_refused() {
    let raw = html_body(&format!(
        "<html><head><style>.x {{ display: none }} p.MsoNormal {{margin:0in}}</style></head>\
         <body>{FWD_HTML}<p class=MsoNormal>Requester email: {ALICE}</p><p>Safe: InfraSafe</p>\
         <p>Request Id: 12<span class=\"x\">99</span></p></body></html>"
    ));
    refused(
        &raw,
        "invalid_field",
        &["request_id", "display:none", "<style>"],
    );
    // A rule in the body's own <style> after its use counts too.
    let raw = html_body(&format!(
        "<html><body>{FWD_HTML}<p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p>\
         <p>Request Id: 12<span class=\"y\">99</span></p>\
         <style>p span.y {{ font-size: 0px }} div span.y {{ display: none }}</style></body></html>"
    ));
    refused(&raw, "invalid_field", &["font-size"]);
}

#[test]
fn conditional_comments_are_renderings_read_each_on_its_own() {
    for id in [
        "12<!--[if !mso]>99<![endif]-->",
        "12<!--[if false]>99<![endif]-->",
        "12<!--[if mso]>99<![endif]-->",
    ] {
        // Hidden in some or every client, but inside the value: refused.
        refused(
            &html_mail("InfraSafe", id, ALICE),
            "invalid_field",
            &["request_id", "conditional comment"],
        );
    }
    // A ghost table (conditional markup between blocks, no text) is inert.
    let raw = html_body(&format!(
        "<html><body>{FWD_HTML}<p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p>\
         <!--[if mso]><table><tr><td><![endif]--><p>Request Id: 1234</p>\
         <!--[if mso]></td></tr></table><![endif]--></body></html>"
    ));
    accepted(&raw, "InfraSafe_1234");
    // A pair inside the value: each client shows 12, concatenation would read 1212.
    let raw = html_mail(
        "InfraSafe",
        "<!--[if mso]>12<![endif]--><!--[if !mso]><!-->12<!--<![endif]-->",
        ALICE,
    );
    refused(
        &raw,
        "invalid_field",
        &["request_id", "conditional comment"],
    );
    // Whole notices per client that differ: refused, never 12341299.
    let notice = |id: &str| {
        format!("<p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p><p>Request Id: {id}</p>")
    };
    let raw = html_body(&format!(
        "<html><body>{FWD_HTML}<!--[if mso]>{}<![endif]--><!--[if !mso]><!-->{}<!--<![endif]-->\
         </body></html>",
        notice("1234"),
        notice("1299")
    ));
    refused(&raw, "conflicting_fields", &["1234", "1299"]);
    // The same notice for both: read once, actionable.
    let raw = html_body(&format!(
        "<html><body>{FWD_HTML}<!--[if mso]>{}<![endif]--><!--[if !mso]><!-->{}<!--<![endif]-->\
         </body></html>",
        notice("1234"),
        notice("1234")
    ));
    accepted(&raw, "InfraSafe_1234");
}

#[test]
fn reordering_markup_is_refused() {
    let raw = html_mail("InfraSafe", "<bdo dir=\"rtl\">21</bdo>", ALICE);
    refused(&raw, "invalid_field", &["<bdo>"]);
    let raw = html_mail(
        "InfraSafe",
        "<span style=\"unicode-bidi:bidi-override;direction:rtl\">21</span>",
        ALICE,
    );
    refused(&raw, "invalid_field", &["request_id"]);
    let raw = html_mail("InfraSafe", "<span dir=rtl>21</span>", ALICE);
    refused(&raw, "invalid_field", &["dir"]);
}

#[test]
fn format_flowed_is_unflowed() {
    let body = "From: CyberArk Vault <vault@example.com>\r\nSent: Tuesday, March 4, 2025\r\n\
                To: Bob <bob@example.com>\r\nSubject: Notification: Password access request\r\n\r\n\
                Requester email: alice@example.com\r\nSafe: InfraSafe\r\nRequest Id: 12 \r\n34\r\n";
    let raw = format!(
        "{HEAD}Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n\r\n{body}"
    );
    accepted(raw.as_bytes(), "InfraSafe_1234");
    let body = body.replace("Request Id: 12 \r\n34", "Request Id: 1234 \r\nfoo");
    let raw = format!("{HEAD}Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n{body}");
    // Without delsp the space stays: the line reads "1234 foo", which is no request number.
    refused(raw.as_bytes(), "invalid_field", &["1234 foo"]);
}

fn alternative(plain: &str, html: &str) -> Vec<u8> {
    format!(
        "{HEAD}Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{plain}\r\n--b\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b--\r\n"
    )
    .into_bytes()
}

const PLAIN_OK: &str = "From: CyberArk Vault <vault@example.com>\r\nSent: Tuesday\r\n\
    To: Bob <bob@example.com>\r\nSubject: Notification: Password access request\r\n\r\n\
    Requester email: alice@example.com\r\nSafe: InfraSafe\r\nRequest Id: 1299\r\n";

#[test]
fn a_displayed_rendering_that_cannot_be_read_refuses_the_mail() {
    let html = |safe_label: &str, id_line: &str| {
        format!(
            "<html><body>{FWD_HTML}<p>Requester email: {ALICE}</p><p>{safe_label} InfraSafe</p>\
             <p>{id_line}</p></body></html>"
        )
    };
    // A Cyrillic "е" in the label.
    let raw = alternative(PLAIN_OK, &html("Safe:", "R\u{0435}quest Id: 1234"));
    refused(&raw, "unreadable_rendering", &["request_id"]);
    // The label split over table cells.
    let raw = alternative(
        PLAIN_OK,
        &html(
            "Safe:",
            "<table><tr><td>Request</td><td>Id:</td><td>1234</td></tr></table>",
        ),
    );
    refused(&raw, "unreadable_rendering", &["request_id"]);
    // A space made by a CSS margin.
    let raw = alternative(
        PLAIN_OK,
        &html(
            "Safe:",
            "Request<span style='margin-left:4px'>Id:</span> 1234",
        ),
    );
    refused(&raw, "unreadable_rendering", &[]);
    // The id as an image.
    let raw = alternative(
        PLAIN_OK,
        &html("Safe:", "Request Id: <img src=\"cid:id.png\" alt=\"\">"),
    );
    refused(&raw, "invalid_field", &["image"]);
}

#[test]
fn a_text_attachment_is_a_rendering_too() {
    let plain = PLAIN_OK.replace("1299", "1234");
    let raw = format!(
        "{HEAD}Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{plain}\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8; name=\"note.txt\"\r\n\
         Content-Disposition: attachment; filename=\"note.txt\"\r\n\r\n{PLAIN_OK}\r\n--b--\r\n"
    );
    refused(raw.as_bytes(), "conflicting_fields", &["1234", "1299"]);
}

#[test]
fn tnef_is_refused() {
    let plain = PLAIN_OK.replace("1299", "1234");
    let raw = format!(
        "{HEAD}Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{plain}\r\n--b\r\n\
         Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\n\
         Content-Disposition: attachment; filename=\"winmail.dat\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\neJ8+IgAAAQaQCAAEAAAAAAABAAEAAQeQBgAIAAAA5AQAAAAAAADoAAEIgAcAGAAAAElQTS5NaWNyb3NvZnQgTWFpbC5Ob3RlADEIAQ2ABAACAAAAAgACAAEEgAEA\r\n--b--\r\n"
    );
    refused(raw.as_bytes(), "unreadable_rendering", &["TNEF", "portal"]);
}

#[test]
fn genuine_markup_stays_actionable() {
    // Outlook for Windows: bookmarks, lang runs, <o:p>, head conditionals, MsoNormal classes,
    // white label text on a dark cell, a table with a small negative margin.
    let raw = html_body(&format!(
        "<html xmlns:o=\"urn:schemas-microsoft-com:office:office\"><head>\
         <meta name=Generator content=\"Microsoft Word 15 (filtered medium)\">\
         <!--[if !mso]><style>v\\:* {{behavior:url(#default#VML);}}</style><![endif]-->\
         <style><!--\n@font-face {{font-family:\"Cambria Math\"; panose-1:2 4 5 3 5 4 6 3 2 4;}}\n\
         p.MsoNormal, li.MsoNormal, div.MsoNormal {{margin:0in; font-size:11.0pt; font-family:\"Calibri\",sans-serif;}}\n\
         a:link, span.MsoHyperlink {{mso-style-priority:99; color:#0563C1; text-decoration:underline;}}\n\
         span.EmailStyle18 {{mso-style-type:personal-reply; color:#1F497D;}}\n\
         @page WordSection1 {{size:8.5in 11.0in; margin:1.0in 1.0in 1.0in 1.0in;}}\n\
         div.WordSection1 {{page:WordSection1;}}\n--></style>\
         <!--[if gte mso 9]><xml><o:shapedefaults v:ext=\"edit\" spidmax=\"1026\" /></xml><![endif]-->\
         </head><body lang=EN-US link=\"#0563C1\" vlink=\"#954F72\"><div class=WordSection1>\
         <p class=MsoNormal><span style='color:#1F497D'>please approve<o:p></o:p></span></p>\
         <div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'>\
         <p class=MsoNormal><b>From:</b> CyberArk Vault &lt;vault@example.com&gt;<br><b>Sent:</b> \
         Tuesday, March 4, 2025 9:12 AM<br><b>To:</b> Bob<br><b>Subject:</b> Notification: Password \
         access request<o:p></o:p></p></div>\
         <table class=MsoNormalTable border=0 cellspacing=0 cellpadding=0 style='margin-left:-5.4pt;border-collapse:collapse'>\
         <tr><td style='background:#002060;padding:0in 5.4pt 0in 5.4pt'><p class=MsoNormal>\
         <span style='color:white'>Requester email:</span></p></td><td><p class=MsoNormal>\
         <a href=\"mailto:{ALICE}\"><span style='color:#0563C1'>{ALICE}</span></a><o:p></o:p></p></td></tr>\
         <tr><td><p class=MsoNormal>Safe:</p></td><td><p class=xmsonormal align=center style='text-align:center'>\
         <span style='mso-bookmark:_MailOriginal'><span lang=ES-MX style='font-size:8.0pt;font-family:\"Aptos Narrow\",sans-serif;color:black;mso-ansi-language:ES-MX'>InfraSafe</span></span>\
         <span style='mso-bookmark:_MailOriginal'></span><o:p></o:p></p></td></tr>\
         <tr><td><p class=MsoNormal>Request Id:</p></td><td><p class=MsoNormal>1234<o:p>&nbsp;</o:p></p></td></tr>\
         </table></div></body></html>"
    ));
    accepted(&raw, "InfraSafe_1234");
    // OWA: display:none on an empty <style> in the head, x_ classes, font wrappers.
    let raw = html_body(&format!(
        "<html><head><style type=\"text/css\" style=\"display:none\"></style></head><body dir=\"ltr\">\
         <div style=\"font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);\">hi</div>\
         <div id=\"appendonsend\"></div><hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">\
         <div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri, sans-serif\" style=\"font-size:11pt\" color=\"#000000\">\
         <b>From:</b> CyberArk Vault &lt;vault@example.com&gt;<br><b>Sent:</b> Tuesday<br><b>To:</b> Bob<br>\
         <b>Subject:</b> Notification: Password access request</font><div>&nbsp;</div></div>\
         <div class=\"x_WordSection1\"><p class=\"x_MsoNormal\">Requester email: \
         <a href=\"mailto:{ALICE}\" class=\"x_moz-txt-link-abbreviated\">{ALICE}</a></p>\
         <p class=\"x_MsoNormal\">Safe: InfraSafe</p><p class=\"x_MsoNormal\">Request Id: 1234</p>\
         <p class=\"x_MsoNormal\">Issued on: <a href=\"x-apple-data-detectors://0\" dir=\"ltr\" \
         x-apple-data-detectors=\"true\" style=\"color: currentcolor; text-decoration: underline;\">\
         March 4, 2025</a></p></div></body></html>"
    ));
    accepted(&raw, "InfraSafe_1234");
    // Gmail <wbr> inside the address.
    let raw = html_mail("InfraSafe", "1234", "alice@<wbr>example.com");
    accepted(&raw, "InfraSafe_1234");
}

#[test]
fn hostile_html_of_several_mib_is_read_in_linear_time() {
    // Deep unclosed styled spans, closers with no opener, conditional comments, many classes
    // and a large stylesheet: every pass stays linear (stack capped, closers found by index).
    let mut style = String::new();
    for i in 0..3000 {
        style.push_str(&format!("div.c{i} span.k{i} {{ color: #00{:04x} }}\n", i));
    }
    let mut body = String::new();
    for i in 0..60_000 {
        body.push_str(&format!(
            "<span class=\"c{} k{}\" style=\"font-size:12px;color:#000\">x</span><span>\
             </div></td><!--[if mso]>y<![endif]--><![if !x]>z<![endif]>",
            i % 3000,
            i % 7
        ));
    }
    let html = format!(
        "<html><head><style>{style}</style></head><body>{FWD_HTML}{body}\
         <p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p><p>Request Id: 1234</p></body></html>"
    );
    assert!(html.len() > 5 * 1024 * 1024, "{}", html.len());
    let raw = html_body(&html);
    let cfg = NoticeConfig {
        max_bytes: 10 * 1024 * 1024,
        ..NoticeConfig::default()
    };
    let started = std::time::Instant::now();
    let _ = parse(&raw, &cfg);
    let took = started.elapsed();
    // Only separates linear (seconds, even debug on a loaded machine) from quadratic (hours).
    assert!(took < std::time::Duration::from_secs(300), "took {took:?}");
}

#[test]
fn marks_cannot_be_forged_and_spaces_carry_no_mark() {
    // Private-use characters of the mark planes in the mail are not marks.
    let raw = html_mail("InfraSafe", "12\u{F0000}99\u{10FFFD}", ALICE);
    assert_eq!(
        read(&raw).expect_err("refused").reason,
        Reason::InvalidField
    );
    let plain = format!(
        "{HEAD}Content-Type: text/plain; charset=utf-8\r\n\r\n\
         From: CyberArk Vault <vault@example.com>\r\nSent: Tuesday\r\nTo: Bob <bob@example.com>\r\n\
         Subject: Notification: Password access request\r\n\r\n\
         Requester email: alice@example.com\r\nSafe: InfraSafe\r\nRequest Id: 12\u{10FFFD}\r\n"
    );
    assert_eq!(
        read(plain.as_bytes()).expect_err("refused").reason,
        Reason::InvalidField
    );
    // An &nbsp; in a cell whose inherited colour is that of its background marks nothing.
    let raw = html_body(&format!(
        "<html><head><style>p.MsoNormal {{margin:0cm}}</style></head><body>{FWD_HTML}<table>\
         <tr><td style='background:#002060'><p class=MsoNormal><span style='color:white'>Safe:</span>\u{a0}\
         <o:p></o:p></p></td><td><p class=MsoNormal>InfraSafe</p></td></tr>\
         <tr><td><p class=MsoNormal>Request Id:</p></td><td><p class=MsoNormal>1234</p></td></tr>\
         <tr><td><p class=MsoNormal>Requester email:</p></td><td><p class=MsoNormal>{ALICE}</p></td></tr>\
         </table></body></html>"
    ));
    accepted(&raw, "InfraSafe_1234");
    // Apple's LRM around a date in a Latin value is dropped; with Hebrew it is refused.
    let raw = html_body(&format!(
        "<html><body>{FWD_HTML}<p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p>\
         <p>Request Id: 1234</p><p>Issued on: 3/4/2025&#x200E; 9:12&#x200E; AM</p></body></html>"
    ));
    accepted(&raw, "InfraSafe_1234");
    let raw = html_body(&format!(
        "<html><body>{FWD_HTML}<p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p>\
         <p>Request Id: 1234</p><p>Issued on: &#x5D0;3/4&#x200E;/2025</p></body></html>"
    ));
    refused(&raw, "invalid_field", &["issued_on"]);
}

#[test]
fn a_hidden_forward_header_does_not_decide_the_kind_of_notice() {
    // The notice shown is a confirmation (nothing to approve); a header block hidden by CSS
    // claims a pending-request subject right above the fields.
    let shown = FWD_HTML.replace(
        "Notification: Password access request</p>",
        "Notification: Password access request confirmation</p>",
    );
    let raw = html_body(&format!(
        "<html><body>{shown}<div style=\"display:none\"><p>From: CyberArk Vault<br>Sent: Tuesday<br>\
         To: Bob<br>Subject: Notification: Password access request</p></div>\
         <p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p><p>Request Id: 1234</p></body></html>"
    ));
    refused(&raw, "not_actionable", &["confirmation"]);
}

#[test]
fn body_and_link_colours_count() {
    // <body text=white>: text without its own colour is white on white.
    let raw = html_body(&format!(
        "<html><body text=\"#ffffff\">{FWD_HTML}<p>Requester email: {ALICE}</p>\
         <p>Safe: InfraSafe</p><p>Request Id: <span style='color:black'>12</span>99</p></body></html>"
    ));
    refused(&raw, "invalid_field", &["colour", "<body>"]);
    // <body link=white>: a linked value is white on white.
    let raw = html_body(&format!(
        "<html><body link=\"#ffffff\" vlink=\"#ffffff\">{FWD_HTML}<p>Requester email: {ALICE}</p>\
         <p>Safe: InfraSafe</p><p>Request Id: 12<a href=\"https://x.example\">99</a></p></body></html>"
    ));
    refused(&raw, "invalid_field", &["request_id"]);
    // Text directly inside a conditional block in a dark cell is judged like the cell's.
    let raw = html_body(&format!(
        "<html><body>{FWD_HTML}<p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p><table><tr>\
         <td style='background:#000'><!--[if mso]>Request Id: 99<![endif]--></td></tr></table>\
         <p>Request Id: 12</p></body></html>"
    ));
    refused(&raw, "invalid_field", &["request_id", "colour"]);
}

#[test]
fn shrinking_tags_and_clipped_widths_count() {
    let tiny = format!("12{}99{}", "<small>".repeat(12), "</small>".repeat(12));
    refused(
        &html_mail("InfraSafe", &tiny, ALICE),
        "invalid_field",
        &["font-size"],
    );
    let clipped = "12<span style='display:inline-block;width:1px;overflow:hidden'>99</span>";
    refused(
        &html_mail("InfraSafe", clipped, ALICE),
        "invalid_field",
        &["overflow"],
    );
    // Word's 1037898<sup>th</sup> and <font size=1> stay readable.
    let raw = html_mail("Infra<sup>S</sup>afe", "<font size=1>1234</font>", ALICE);
    accepted(&raw, "InfraSafe_1234");
}

#[test]
fn html_parsing_quirks_do_not_split_display_from_reading() {
    // Text between cells is shown before the table, not after the label.
    let raw = html_body(&format!(
        "<html><body>{FWD_HTML}<p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p>\
         <table><tr><td>Request Id: 12</td>99</tr></table></body></html>"
    ));
    refused(&raw, "invalid_field", &["table cell"]);
    // `--!>` ends a comment: what follows is shown, so it is read.
    let raw = html_body(&format!(
        "<html><body>{FWD_HTML}<p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p>\
         <p>Request Id: 12</p><!-- x --!><p>Request Id: 99</p><!-- y --></body></html>"
    ));
    refused(&raw, "conflicting_fields", &["12", "99"]);
    // <xmp> shows its markup as text.
    refused(
        &html_mail("InfraSafe", "12<xmp><b></xmp>", ALICE),
        "invalid_field",
        &["<xmp>"],
    );
}

#[test]
fn many_distinct_findings_and_selectors_stay_linear() {
    let mut body = String::new();
    for i in 0..150_000 {
        body.push_str(&format!(
            "<span style=\"display:none;color:#{:06x}\">x</span>",
            i
        ));
    }
    let sels: Vec<String> = (0..200_000).map(|i| format!(".s{i}")).collect();
    let html = format!(
        "<html><head><style>{} {{ color: red }}</style></head><body>{FWD_HTML}{body}\
         <p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p><p>Request Id: 1234</p></body></html>",
        sels.join(",")
    );
    let raw = html_body(&html);
    let cfg = NoticeConfig {
        max_bytes: 10 * 1024 * 1024,
        ..NoticeConfig::default()
    };
    let started = std::time::Instant::now();
    let _ = parse(&raw, &cfg);
    let took = started.elapsed();
    // Only separates linear (seconds, even debug on a loaded machine) from quadratic (hours).
    assert!(took < std::time::Duration::from_secs(300), "took {took:?}");
}

#[test]
fn a_required_label_without_a_readable_value_refuses_the_mail() {
    // The HTML shows the id as an image far below its label; the text part reads 1299.
    let html = format!(
        "<html><body>{FWD_HTML}<p>Requester email: {ALICE}</p><p>Safe: InfraSafe</p>\
         <table><tr><td>Request Id:</td><td></td></tr><tr><td>Reason:</td><td>Patch</td></tr>\
         </table><p>Please use this id:</p><p><img src=\"cid:id.png\"></p></body></html>"
    );
    refused(
        &alternative(PLAIN_OK, &html),
        "unreadable_rendering",
        &["request_id"],
    );
}
