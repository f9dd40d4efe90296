//! Inline forwards: find the header blocks mail clients put above forwarded text
//! (`From:/Sent:/To:/Subject:` in Outlook, `Von:/Gesendet:/An:/Betreff:` in German Outlook,
//! `De :/Envoyé :/À :/Objet :` in French Outlook, Gmail's and Apple Mail's `From/Date/Subject/To`,
//! Thunderbird's `Subject/Date/From/To`) and cut the text into segments at them. The last
//! segment is the innermost forwarded message.

use super::fields::{after_label, first_key};

/// Which part of a forward header a label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    From,
    Date,
    To,
    Subject,
}

/// Forward-header labels of the common client languages (en, de, fr, es, it, nl).
const LABELS: &[(&str, Kind)] = &[
    ("from", Kind::From),
    ("von", Kind::From),
    ("de", Kind::From),
    ("da", Kind::From),
    ("van", Kind::From),
    ("sent", Kind::Date),
    ("date", Kind::Date),
    ("gesendet", Kind::Date),
    ("datum", Kind::Date),
    ("envoyé", Kind::Date),
    ("envoyé le", Kind::Date),
    ("enviado", Kind::Date),
    ("enviado el", Kind::Date),
    ("inviato", Kind::Date),
    ("verzonden", Kind::Date),
    ("to", Kind::To),
    ("an", Kind::To),
    ("à", Kind::To),
    ("a", Kind::To),
    ("para", Kind::To),
    ("aan", Kind::To),
    ("cc", Kind::To),
    ("bcc", Kind::To),
    ("subject", Kind::Subject),
    ("betreff", Kind::Subject),
    ("objet", Kind::Subject),
    ("asunto", Kind::Subject),
    ("oggetto", Kind::Subject),
    ("onderwerp", Kind::Subject),
];

fn kind_of(line: &str) -> Option<(Kind, &str)> {
    let key = first_key(line)?;
    LABELS
        .iter()
        .filter(|(l, _)| first_key(l) == Some(key))
        .find_map(|(l, k)| after_label(line, l).map(|v| (*k, v)))
}

/// True when the line is a forward-header line (so it is never read as a field's value).
pub fn is_header_line(line: &str) -> bool {
    kind_of(line).is_some()
}

/// The header block above a forwarded message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardHeader {
    pub from: Option<String>,
    pub subject: Option<String>,
    pub date: Option<String>,
}

/// A run of lines: `start..end` indexes into the line list; `header` is the forward header
/// that introduced it (None for the top segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
    pub header: Option<ForwardHeader>,
}

/// Longest header block, in lines, and how many non-header lines (a wrapped `To:` list) or
/// blank lines may sit inside one.
const MAX_BLOCK: usize = 24;
const MAX_GAP: usize = 3;

/// Cut lines into segments at every forward header block.
pub fn segments(lines: &[String]) -> Vec<Segment> {
    let mut out = vec![Segment {
        start: 0,
        end: lines.len(),
        header: None,
    }];
    let mut i = 0;
    while i < lines.len() {
        let Some(block_end) = block_at(lines, i) else {
            i += 1;
            continue;
        };
        let header = read_header(lines.get(i..block_end).unwrap_or(&[]));
        if let Some(last) = out.last_mut() {
            last.end = i;
        }
        out.push(Segment {
            start: block_end,
            end: lines.len(),
            header: Some(header),
        });
        i = block_end.max(i + 1);
    }
    out
}

/// If a header block starts at line `i`, the index just past it. A block has a From-like and a
/// Subject-like line and at least one Date- or To-like line.
fn block_at(lines: &[String], i: usize) -> Option<usize> {
    kind_of(lines.get(i)?)?;
    let (mut from, mut subject, mut other) = (false, false, false);
    let mut last_header = i;
    let mut gap = 0;
    let mut j = i;
    while j < lines.len() && j - i < MAX_BLOCK {
        let line = lines.get(j).map(String::as_str).unwrap_or("");
        match kind_of(line) {
            Some((k, _)) => {
                match k {
                    Kind::From => {
                        if from && subject {
                            // A second From after a complete block starts the next block.
                            break;
                        }
                        from = true;
                    }
                    Kind::Subject => subject = true,
                    Kind::Date | Kind::To => other = true,
                }
                last_header = j;
                gap = 0;
            }
            None => {
                gap += 1;
                if gap > MAX_GAP {
                    break;
                }
            }
        }
        j += 1;
    }
    (from && subject && other).then_some(last_header + 1)
}

fn read_header(block: &[String]) -> ForwardHeader {
    let mut h = ForwardHeader::default();
    for line in block {
        if let Some((k, v)) = kind_of(line) {
            let v = super::text::clean_value(v);
            let slot = match k {
                Kind::From => &mut h.from,
                Kind::Subject => &mut h.subject,
                Kind::Date => &mut h.date,
                Kind::To => continue,
            };
            if slot.is_none() && !v.is_empty() {
                *slot = Some(v);
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notice::fields::lines_of;

    #[test]
    fn outlook_german_and_gmail_blocks_are_found_innermost_last() {
        let text = "Bitte freigeben\n\nVon: Alice <a@x>\nGesendet: Montag, 3. März 2025 10:00\n\
                    An: Bob\nBetreff: WG: Notification: Password access request\n\nhi\n\
                    ---------- Forwarded message ---------\nFrom: Vault <v@x>\n\
                    Date: Mon, 3 Mar 2025\nSubject: Notification: Password access request\n\
                    To: <a@x>\n\nSafe: X\n";
        let lines = lines_of(text);
        let segs = segments(&lines);
        assert_eq!(segs.len(), 3, "{segs:?}");
        let inner = segs.last().expect("segment");
        assert_eq!(
            inner.header.as_ref().and_then(|h| h.subject.as_deref()),
            Some("Notification: Password access request")
        );
        assert_eq!(
            lines.get(inner.start..inner.end).expect("range").join("|"),
            "|Safe: X"
        );
        assert_eq!(
            segs.get(1)
                .and_then(|s| s.header.as_ref())
                .and_then(|h| h.from.as_deref()),
            Some("Alice <a@x>")
        );
    }

    #[test]
    fn french_block_with_wrapped_recipients() {
        let text = "De : Vault <v@x>\nEnvoyé : lundi 3 mars 2025 10:00\nÀ : a@x; b@x;\n c@x\n\
                    Objet : Notification: Password access request\nSafe : X";
        let lines = lines_of(text);
        let segs = segments(&lines);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs.last().map(|s| s.start), Some(5));
    }

    #[test]
    fn a_lone_from_line_is_not_a_block() {
        let lines = lines_of("From: someone\nSafe: X\nSubject: y");
        assert_eq!(segments(&lines).len(), 1);
    }
}
