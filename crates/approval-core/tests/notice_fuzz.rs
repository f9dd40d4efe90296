//! Fuzzing of the mail readers with proptest (stable Rust; cargo-fuzz needs nightly).
//!
//! Properties: no input makes the notice reader, the sender policy, the HTML converter or the
//! Authentication-Results parser panic; arbitrary bytes never give an actionable notice; what
//! a mutated real mail gives, when accepted, is well-formed (clean values, a valid id).
//!
//! Bounded: 2000 cases per property by default, a few seconds in `cargo test`. Run longer with
//! `PROPTEST_CASES=200000 cargo test -p approval-core --test notice_fuzz --release`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use approval_core::notice::{self, NoticeConfig};
use approval_core::sender::{self, SenderPolicyConfig};
use proptest::prelude::*;

const DEFAULT_CASES: u32 = 2000;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    // proptest reads PROPTEST_CASES itself; only its default (256) is replaced here.
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = DEFAULT_CASES;
    }
    c.max_shrink_iters = 2000;
    c
}

/// The corpus mails small enough to mutate quickly.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mails");
        let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("corpus dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| {
                let b = std::fs::read(&p).expect("read");
                (p, b)
            })
            .filter(|(_, b)| b.len() < 64 * 1024)
            .collect();
        out.sort();
        assert!(out.len() >= 30, "corpus too small: {}", out.len());
        out.into_iter().map(|(_, b)| b).collect()
    })
}

fn notice_cfg() -> NoticeConfig {
    NoticeConfig::default()
}

fn sender_cfg() -> SenderPolicyConfig {
    SenderPolicyConfig {
        allowed_domains: vec!["example.com".into()],
        auth_sources: vec!["EX01.corp.example.com".into(), "*.prod.outlook.com".into()],
        ..SenderPolicyConfig::default()
    }
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop::sample::select(vec![
        b"\r\n".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"--".to_vec(),
        b"=".to_vec(),
        b"=\r\n".to_vec(),
        b"<".to_vec(),
        b"&#".to_vec(),
        b"Content-Type: message/rfc822\r\n\r\n".to_vec(),
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n".to_vec(),
        b"Content-Transfer-Encoding: base64\r\n".to_vec(),
        b"Safe: ".to_vec(),
        b"Request Id: ".to_vec(),
        b"From: a@example.com\r\n".to_vec(),
        b"X-MS-Exchange-Organization-AuthAs: Internal\r\n".to_vec(),
        "\u{00A0}\u{200B}\u{202E}".as_bytes().to_vec(),
        vec![0xff, 0xfe, 0x00],
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<usize>(), interesting).prop_map(|(i, v)| Edit::Insert(i, v)),
        (any::<usize>(), 1usize..256).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), 1usize..512).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut data: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = data.len().max(1);
        match e {
            Edit::Flip(i, b) => {
                if let Some(x) = data.get_mut(i % len) {
                    *x ^= b | 1;
                }
            }
            Edit::Insert(i, v) => {
                let at = (i % len).min(data.len());
                data.splice(at..at, v.iter().copied());
            }
            Edit::Delete(i, n) => {
                let at = (i % len).min(data.len());
                let end = (at + n).min(data.len());
                data.drain(at..end);
            }
            Edit::Duplicate(i, n) => {
                let at = (i % len).min(data.len());
                let end = (at + n).min(data.len());
                let copy: Vec<u8> = data.get(at..end).unwrap_or_default().to_vec();
                data.splice(end..end, copy);
            }
            Edit::Truncate(i) => data.truncate(i % len),
        }
    }
    data
}

fn clean(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || ('\u{202A}'..='\u{202E}').contains(&c))
}

/// What must hold for any input. Returns whether the mail was accepted.
fn check_any(raw: &[u8]) -> Result<bool, TestCaseError> {
    let exam = notice::examine(raw, &notice_cfg());
    if let Err(r) = &exam.outcome {
        prop_assert!(
            !r.message.contains(notice::INTERNAL_ERROR),
            "the reader panicked: {}",
            r.message
        );
        prop_assert!(clean(&r.message), "refusal text not clean: {:?}", r.message);
    }
    let env = &exam.envelope;
    for v in [
        &env.forwarder,
        &env.forwarder_name,
        &env.sender,
        &env.subject,
        &env.message_id,
        &env.date,
    ]
    .into_iter()
    .flatten()
    {
        prop_assert!(clean(v), "envelope value not clean: {v:?}");
    }
    for v in exam.fields.values() {
        prop_assert!(clean(v) && !v.is_empty(), "field not clean: {v:?}");
    }
    if let Ok(n) = &exam.outcome {
        prop_assert_eq!(&n.request_id, &format!("{}_{}", n.safe, n.request_number));
        prop_assert!(n.request_number.bytes().all(|b| b.is_ascii_digit()));
        prop_assert!(!n.safe.is_empty() && n.safe.chars().count() <= 28);
        prop_assert!(clean(&n.safe));
        if let Some(r) = &n.requester {
            prop_assert!(r.contains('@') && clean(r) && !r.contains(' '));
        }
    }
    let headers = sender::headers_from_raw(raw);
    let a = sender::assess(&headers, &sender_cfg());
    if let Some(addr) = &a.address {
        prop_assert!(clean(addr), "sender address not clean: {addr:?}");
    }
    Ok(exam.outcome.is_ok())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_and_are_never_actionable(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(!check_any(&raw)?, "garbage was accepted");
    }

    #[test]
    fn mutated_corpus_mails_never_panic(idx in any::<prop::sample::Index>(), edits in prop::collection::vec(edit(), 1..8)) {
        let mails = corpus();
        let base = mails.get(idx.index(mails.len())).cloned().unwrap_or_default();
        let raw = apply(base, &edits);
        let _accepted = check_any(&raw)?;
    }

    #[test]
    fn text_readers_never_panic(s in ".{0,2000}") {
        let t = notice::html::to_text(&s);
        prop_assert!(t.len() <= s.len() * 4 + 16);
        let _ = sender::auth_results::parse(&s).ok();
        let _ = sender::verify(&[sender::HeaderField::new("From", s.clone())], &sender_cfg());
        prop_assert!(clean(&notice::text::clean_value(&s)));
    }

    #[test]
    fn html_like_garbage_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "<", ">", "</", "<td>", "<tr>", "<br>", "<p>", "</p>", "<style>", "</style>", "<!--", "-->",
        "&", ";", "&#x", "&#", "&nbsp;", "\"", "'", "=", "<pre>", "</pre>", "Safe:", " ", "\n", "é", "\u{200B}",
    ]), 0..200)) {
        let s: String = parts.concat();
        let t = notice::html::to_text(&s);
        prop_assert!(!t.contains("<style>"));
    }

    #[test]
    fn html_with_styles_and_conditionals_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "<!--[if mso]>", "<![endif]-->", "<!--[if !mso]><!-->", "<!--<![endif]-->", "<![if !x]>",
        "<![endif]>", "<!--[if false]>", "<span style=\"display:none\">", "</span>", "<span class=a>",
        "<style>.a{display:none} p span.b::before{content:'x'} @media x{.c{font-size:0}}</style>",
        "<td style='background:#000'>", "<font color=white>", "<img src=x>", "<bdo dir=rtl>",
        "</bdo>", "<details>", "</details>", "<p>", "</p>", "<br>", "Request Id: ", "12", "\u{F0000}",
        "\u{10FFFD}", "<o:p>", "</o:p>", "<v:shape>", "style='", "\"", ">", "&#58;", "<div dir=rtl>",
    ]), 0..120)) {
        let s: String = parts.concat();
        for r in notice::html::renderings(&s) {
            // Every mark a rendering holds has its finding.
            for c in r.text.chars() {
                if let Some(m @ (notice::html::Mark::Hide(_) | notice::html::Mark::Cond(_))) = notice::html::mark_of(c) {
                    prop_assert!(r.finding(m).is_some(), "{s:?}");
                }
            }
        }
    }
}

/// The seeds themselves: every corpus mail passes the properties unmodified.
#[test]
fn corpus_mails_satisfy_the_properties() {
    let accepted = corpus()
        .iter()
        .filter(|raw| check_any(raw).expect("property holds"))
        .count();
    // The seeds include accepted notices, so mutations explore the accepting paths too.
    assert!(accepted >= 10, "{accepted}");
}
