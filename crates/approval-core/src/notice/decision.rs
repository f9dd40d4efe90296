//! The forwarder's decision (issue 32): approve, or reject with a reason, read from **their own
//! new text** alone — the lines of the outer message's body above the first forward header
//! (and above the first notification field), never quoted (`>`) lines, never forwarded text,
//! never an attachment or an attached message.
//!
//! The rule, for the forwarder (docs/approvers-guide.md):
//! - the first word of their text is a reject word (`notice.reject_words`, default `reject`,
//!   `deny` and their listed inflections): reject, the rest of their text is the reason;
//! - the first word is an approve word (`notice.approve_words`): approve;
//! - no decision word first: approve, as before rejecting by mail existed.
//!
//! Anything else is unclear and refused (`unclear_decision`), never guessed: a reject word that
//! is not the first word ("please reject"), a reject word in a text that starts with an approve
//! word, a later line that starts with an approve word after a reject (an approve word inside
//! the reason, "not approved by the CAB", is the reason's), a decision word hidden from
//! view by markup or shown differently by the mail's renderings (text/plain, HTML as most
//! clients show it, HTML as Outlook shows it), or a reject word in the subject the forwarder
//! typed while their text does not reject. Words are compared whole and without regard to case
//! (a name such as "Denys" is no reject word); inflections count when listed, as the defaults
//! list them (`rejection`, `denying`). A first word that joins a decision word to another by a
//! hyphen (`deny-list`) is unclear too.

use serde::Serialize;

use super::fields::LabelSet;
use super::mime::Rendered;
use super::refusal::{Reason, Refusal};
use super::{NoticeConfig, forward, html, text};

/// Longest reason of the forwarder's kept, in characters (the PVWA reason is bounded again).
pub const MAX_REASON_CHARS: usize = 200;

/// Longest own text read for a decision, in lines: a forwarder writes a few lines.
const MAX_OWN_LINES: usize = 200;

/// What the forwarder decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    Approve,
    /// Reject, with the forwarder's reason (one line, cleaned, bounded; empty when none).
    Reject {
        reason: String,
    },
}

impl Decision {
    pub fn is_reject(&self) -> bool {
        matches!(self, Decision::Reject { .. })
    }
}

/// The decision and where it was read, for the watcher and `--explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRead {
    pub decision: Decision,
    /// The decision word as written (cleaned), when there was one.
    pub word: Option<String>,
    /// Where it was read, as a sentence part ("the first word of the forwarder's own text, …").
    pub source: String,
}

impl Default for DecisionRead {
    /// Approve, no word: what a mail without a decision word of the forwarder's means.
    fn default() -> Self {
        DecisionRead {
            decision: Decision::Approve,
            word: None,
            source: String::new(),
        }
    }
}

/// Which decision a word is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Approve,
    Reject,
    /// A hyphenated word with a decision word as one of its parts (`deny-list`,
    /// `reject-no`): no decision word itself, but as the first word unclear rather than
    /// guessed either way.
    Joined,
}

struct Words {
    approve: Vec<String>,
    reject: Vec<String>,
}

impl Words {
    fn new(cfg: &NoticeConfig) -> Words {
        let norm = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect()
        };
        Words {
            approve: norm(&cfg.approve_words),
            reject: norm(&cfg.reject_words),
        }
    }

    /// A word's kind: a configured word matches **whole** (any case), never as the start of a
    /// longer word: "Denys" and "Rejectable" are no reject words. Inflections (`rejection`,
    /// `denying`) count only when listed (the defaults list them).
    fn kind(&self, word: &str) -> Option<Kind> {
        let whole = |w: &str| {
            let w = w.to_lowercase();
            if self.reject.contains(&w) {
                Some(Kind::Reject)
            } else if self.approve.contains(&w) {
                Some(Kind::Approve)
            } else {
                None
            }
        };
        match whole(word) {
            Some(k) => Some(k),
            None if word.contains('-') && word.split('-').any(|p| whole(p).is_some()) => {
                Some(Kind::Joined)
            }
            None => None,
        }
    }
}

/// The words of a text: runs of letters and digits, a hyphen inside a word kept (`deny-list`
/// is one word); any other character (blank, `:`, `,`, `.`, `!`, a dash) ends a word.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric() && c != '-')
        .map(|w| w.trim_matches('-'))
        .filter(|w| !w.is_empty())
}

/// What one rendering's own text says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Said {
    /// (kind, word as written) of the first word, when it is a decision word.
    first: Option<(Kind, String)>,
    /// The text after the first word (reject reason).
    rest: String,
    /// Kinds of every decision word, first included.
    all: Vec<Kind>,
    /// Kinds of the decision words that start a later line (a second decision).
    line_starts: Vec<Kind>,
}

fn read_text(text: &str, w: &Words) -> Said {
    let mut first = None;
    let mut all = Vec::new();
    let mut rest = String::new();
    let mut seen_first = false;
    for word in words(text) {
        let k = w.kind(word);
        if let Some(k) = k {
            all.push(k);
        }
        if !seen_first {
            seen_first = true;
            first = k.map(|k| (k, text::clean(word, 40)));
        }
    }
    if first.is_some() {
        // The reason: everything after the first word, punctuation between them dropped.
        let start = text
            .char_indices()
            .find(|(_, c)| c.is_alphanumeric())
            .map(|(i, _)| i)
            .unwrap_or(0);
        let after = text.get(start..).unwrap_or("");
        let end = after
            .char_indices()
            .find(|(_, c)| !c.is_alphanumeric())
            .map(|(i, _)| i)
            .unwrap_or(after.len());
        let tail = after.get(end..).unwrap_or("");
        // The reason is the rest of the decision's paragraph, or the next paragraph when the
        // decision word stands alone; later paragraphs (a signature) are not part of it.
        let mut paragraphs = tail
            .split("\n\n")
            .map(|p| p.trim_start_matches(|c: char| !c.is_alphanumeric() && c != '"' && c != '('));
        let first = paragraphs.next().unwrap_or("");
        let tail = if first.trim().is_empty() {
            paragraphs.find(|p| !p.trim().is_empty()).unwrap_or("")
        } else {
            first
        };
        rest = text::clean(tail, MAX_REASON_CHARS);
    }
    let line_starts = text
        .lines()
        .filter_map(|l| words(l).next())
        .skip(1)
        .filter_map(|x| w.kind(x))
        .collect();
    Said {
        first,
        rest,
        all,
        line_starts,
    }
}

/// The forwarder's own lines of one rendering: above the first forward header block and the
/// first notification field line, without quoted (`>`) lines. `displayed` chooses the text as
/// shown (hidden text removed) or as written (hidden text kept).
fn own_text(r: &Rendered, labels: &LabelSet, displayed: bool) -> String {
    let raw: Vec<&str> = r.text.lines().take(MAX_OWN_LINES * 4).collect();
    let shown: Vec<String> = raw
        .iter()
        .map(|l| text::normalise_line(&html::displayed(l)))
        .collect();
    // Where the forward headers are is judged on the text as shown (as the notice reader
    // does): a header block hidden by markup does not end the forwarder's text.
    let end_fwd = forward::segments(&shown)
        .first()
        .map(|s| s.end)
        .unwrap_or(shown.len());
    let end_label = shown
        .iter()
        .position(|l| labels.match_line(l).is_some())
        .unwrap_or(shown.len());
    let end_sep = shown
        .iter()
        .position(|l| is_separator(l))
        .unwrap_or(shown.len());
    let end = end_fwd.min(end_label).min(end_sep).min(MAX_OWN_LINES);
    let mut out = Vec::new();
    for l in raw.iter().take(end) {
        let plain = html::strip_marks(l);
        if plain.trim_start().starts_with('>') {
            continue;
        }
        let line = if displayed { html::displayed(l) } else { plain };
        let line = line.replace('\t', " ");
        // A line of spaces alone (`&nbsp;` paragraphs) separates paragraphs like an empty one.
        out.push(if line.trim().is_empty() {
            String::new()
        } else {
            line
        });
    }
    out.join("\n")
}

/// A line clients put above a forward header: `-----Original Message-----`, Gmail's
/// `---------- Forwarded message ---------`, Outlook's `________________________________`,
/// Apple Mail's `Begin forwarded message:`. The forwarder's text ends there.
fn is_separator(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("-----")
        || (t.chars().count() >= 10 && t.chars().all(|c| matches!(c, '_' | '-' | '=' | ' ')))
        || t.eq_ignore_ascii_case("begin forwarded message:")
}

/// Read the decision from the outer message's body renderings and its subject.
/// `notice_subject` is the notification's own subject (its words are not the forwarder's).
pub fn read(
    renderings: &[Rendered],
    subject: Option<&str>,
    notice_subject: Option<&str>,
    request_id: &str,
    cfg: &NoticeConfig,
    labels: &LabelSet,
) -> Result<DecisionRead, Refusal> {
    let w = Words::new(cfg);
    let first_reject = cfg
        .reject_words
        .first()
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "reject".into());
    let unclear = |why: String| {
        Refusal::new(
            Reason::UnclearDecision,
            format!(
                "{why}, so it is not clear whether you approve or reject: nothing was approved or rejected. To reject, forward the notification again with \"{first_reject}\" as the very first word of your own text (above the forwarded notification), then your reason; to approve, forward it with no reject word in your text."
            ),
        )
    };
    let mut chosen: Option<(Said, String)> = None;
    for r in renderings {
        let shown = read_text(&own_text(r, labels, true), &w);
        let written = read_text(&own_text(r, labels, false), &w);
        if shown != written {
            return Err(unclear(format!(
                "{} hides a decision word from view (markup that hides text) in your own text",
                upper_first(&r.name)
            )));
        }
        if let Some(k) = judge(&shown) {
            return Err(unclear(format!("In {}, {k}", r.name)));
        }
        // A decision aimed at another request than the one forwarded ("reject InfraSafe_13"
        // above the notification of InfraSafe_12) is not carried over to this one.
        if let Some(other) = other_request(&own_text(r, labels, true), request_id) {
            return Err(unclear(format!(
                "Your own text names request {other}, but the forwarded notification is request {request_id}; forward each request's own notification"
            )));
        }
        match &chosen {
            None => chosen = Some((shown, r.name.clone())),
            Some((c, name)) => {
                if c.first.as_ref().map(|f| f.0) != shown.first.as_ref().map(|f| f.0)
                    || c.all.contains(&Kind::Reject) != shown.all.contains(&Kind::Reject)
                {
                    return Err(unclear(format!(
                        "{} and {} show different decisions in your own text",
                        upper_first(name),
                        r.name
                    )));
                }
            }
        }
    }
    let (said, name) = chosen.unwrap_or((
        Said {
            first: None,
            rest: String::new(),
            all: Vec::new(),
            line_starts: Vec::new(),
        },
        "the mail".into(),
    ));
    let rejects = matches!(said.first, Some((Kind::Reject, _)));
    // The subject the forwarder typed: a reject word there (not in the notification's own
    // subject) while their text does not reject is unclear, never an approval.
    let reject_words_in = |s: Option<&str>| {
        words(s.unwrap_or(""))
            .filter(|x| w.kind(x) == Some(Kind::Reject))
            .count()
    };
    if !rejects && reject_words_in(subject) > reject_words_in(notice_subject) {
        return Err(unclear(
            "The subject of your mail holds a reject word but your own text does not start with one (the decision is read from your text, not the subject)".into(),
        ));
    }
    let where_ = format!(
        "the first word of the forwarder's own text in {name} (above the forwarded notification)"
    );
    Ok(match said.first {
        Some((Kind::Reject, word)) => DecisionRead {
            decision: Decision::Reject { reason: said.rest },
            word: Some(word),
            source: where_,
        },
        Some((Kind::Approve, word)) => DecisionRead {
            decision: Decision::Approve,
            word: Some(word),
            source: where_,
        },
        Some((Kind::Joined, _)) => {
            return Err(unclear(
                "Your own text starts with a word joined to a decision word by a hyphen".into(),
            ));
        }
        None => DecisionRead {
            decision: Decision::Approve,
            word: None,
            source: format!(
                "no decision word in the forwarder's own text in {name} (none means approve)"
            ),
        },
    })
}

/// A request id (`<Safe>_<number>`) in the text that is not `request_id`.
fn other_request(text: &str, request_id: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || ",;:()[]<>\"'".contains(c))
        .map(|t| t.trim_end_matches(['.', '!', '?']))
        .filter(|t| {
            t.rsplit_once('_').is_some_and(|(safe, n)| {
                !safe.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
            })
        })
        .find(|t| !t.eq_ignore_ascii_case(request_id))
        .map(|t| text::clean(t, 60))
}

/// Why one rendering's own text is unclear, if it is.
fn judge(s: &Said) -> Option<&'static str> {
    let rejects = s.all.iter().filter(|k| **k == Kind::Reject).count();
    let approves = s.all.iter().filter(|k| **k == Kind::Approve).count();
    match s.first.as_ref().map(|f| f.0) {
        // "Deny-list …", "Reject-no ticket": neither read as a reject nor as an approval.
        Some(Kind::Joined) => Some(
            "your own text starts with a word joined to a decision word by a hyphen (write the decision word on its own)",
        ),
        // An approve word inside the reason ("not approved by the CAB") is the reason's;
        // one that starts a line of its own is a second decision.
        Some(Kind::Reject) if approves > 0 && s.line_starts.contains(&Kind::Approve) => Some(
            "your own text starts with a reject word but a later line starts with an approve word",
        ),
        Some(Kind::Approve) if rejects > 0 => {
            Some("your own text starts with an approve word but also holds a reject word")
        }
        None if rejects > 0 => Some("your own text holds a reject word that is not its first word"),
        _ => None,
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
#[path = "decision_tests.rs"]
mod tests;
