//! Field extraction from the text of a notification: `Label: value` lines, matched at line
//! start, case-insensitively, tolerant of bold markers (`*Safe:*`, `**Safe**:`), NBSP and
//! zero-width characters, extra spaces, a space before the colon (French typography), and a
//! value in the next table cell or on the next line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::html;
use super::text::{clean_value, is_invisible, normalise_line};

/// The fields a notification carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Requester,
    Safe,
    RequestId,
    Account,
    DeviceUser,
    /// The account's address (`Address:`), when the template shows it.
    Address,
    Reason,
    IssuedOn,
    StartDate,
    EndDate,
}

impl Field {
    pub const ALL: &'static [Field] = &[
        Field::Requester,
        Field::Safe,
        Field::RequestId,
        Field::Account,
        Field::DeviceUser,
        Field::Address,
        Field::Reason,
        Field::IssuedOn,
        Field::StartDate,
        Field::EndDate,
    ];

    /// The config key (`notice.labels.<key>`) and JSON name.
    pub const fn key(self) -> &'static str {
        match self {
            Field::Requester => "requester",
            Field::Safe => "safe",
            Field::RequestId => "request_id",
            Field::Account => "account",
            Field::DeviceUser => "device_user",
            Field::Address => "address",
            Field::Reason => "reason",
            Field::IssuedOn => "issued_on",
            Field::StartDate => "start_date",
            Field::EndDate => "end_date",
        }
    }
}

/// Lines of text ready for matching: normalised, with table cells split onto their own lines.
pub fn lines_of(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|l| l.split('\t'))
        .map(normalise_line)
        .collect()
}

/// If `line` starts with `label` (then optional spaces and bold markers, then `:`), the rest
/// after the colon, trimmed. `label` is compared case-insensitively, a space in it matching
/// any run of spaces.
pub fn after_label<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let line = line.trim_start_matches(['*', '_', ' ']);
    let mut rest = line.char_indices().peekable();
    let mut label_chars = label.chars().peekable();
    while let Some(lc) = label_chars.next() {
        if lc == ' ' {
            // One or more spaces (at least one) in the line.
            let mut n = 0;
            while rest.peek().is_some_and(|(_, c)| *c == ' ') {
                rest.next();
                n += 1;
            }
            if n == 0 {
                return None;
            }
            while label_chars.peek() == Some(&' ') {
                label_chars.next();
            }
            continue;
        }
        let (_, c) = rest.next()?;
        let same = if c.is_ascii() && lc.is_ascii() {
            c.eq_ignore_ascii_case(&lc)
        } else {
            c.to_lowercase().eq(lc.to_lowercase())
        };
        if !same {
            return None;
        }
    }
    // Optional spaces and bold/italic markers, then the colon.
    loop {
        match rest.peek() {
            Some((_, ' ' | '*' | '_')) => {
                rest.next();
            }
            Some((_, ':' | '\u{FF1A}')) => {
                rest.next();
                break;
            }
            _ => return None,
        }
    }
    let start = rest.peek().map(|(i, _)| *i).unwrap_or(line.len());
    let value = line.get(start..).unwrap_or("");
    Some(strip_markers(value))
}

/// Trim spaces and surrounding bold markers from a value.
fn strip_markers(v: &str) -> &str {
    let v = v.trim_matches(' ');
    let v = v.trim_start_matches(['*', '_']).trim_start();
    v.trim_end_matches(['*', '_']).trim_end()
}

/// Labels with their trailing colon removed and spaces tidied, for matching.
pub fn prepare_label(label: &str) -> String {
    let l = label.trim().trim_end_matches([':', '\u{FF1A}']).trim();
    l.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Field labels, prepared.
#[derive(Debug, Clone)]
pub struct LabelSet {
    /// Field, label, and the label's first character in lower case (see [`first_key`]).
    labels: Vec<(Field, String, Option<char>)>,
}

/// The first character a label comparison looks at, in lower case: lines are first sorted out
/// by it, so a line is compared in full only with the labels that can match it (a hostile mail
/// may hold hundreds of thousands of lines).
pub fn first_key(s: &str) -> Option<char> {
    let c = s.trim_start_matches(['*', '_', ' ']).chars().next()?;
    c.to_lowercase().next()
}

impl LabelSet {
    pub fn new(pairs: impl IntoIterator<Item = (Field, String)>) -> Self {
        let mut labels: Vec<(Field, String)> = pairs
            .into_iter()
            .map(|(f, l)| (f, prepare_label(&l)))
            .filter(|(_, l)| !l.is_empty())
            .collect();
        // Longer labels first, so `Request Id` wins over a configured `Request`.
        labels.sort_by_key(|(_, l)| std::cmp::Reverse(l.chars().count()));
        LabelSet {
            labels: labels
                .into_iter()
                .map(|(f, l)| {
                    let k = first_key(&l);
                    (f, l, k)
                })
                .collect(),
        }
    }

    /// The field whose label starts this line, and the value after the colon.
    pub fn match_line<'a>(&self, line: &'a str) -> Option<(Field, &'a str)> {
        let key = first_key(line)?;
        self.labels
            .iter()
            .filter(|(_, _, k)| *k == Some(key))
            .find_map(|(f, l, _)| after_label(line, l).map(|v| (*f, v)))
    }
}

/// How many lines start with a label of each field, as the reader matches them.
pub fn label_counts(lines: &[String], labels: &LabelSet) -> BTreeMap<Field, usize> {
    let mut out = BTreeMap::new();
    for l in lines {
        if let Some((f, _)) = labels.match_line(l) {
            *out.entry(f).or_insert(0) += 1;
        }
    }
    out
}

/// How many lines of a text *look* as if they start with a label of each field, the way a
/// person reads them: look-alike letters folded (Cyrillic, Greek, full-width), spaces, tabs
/// (a label split over table cells), invisible characters, quote and bold markers ignored.
/// With each count, the first such line.
pub fn loose_label_lines(text: &str, labels: &LabelSet) -> BTreeMap<Field, (usize, String)> {
    let folded: Vec<(Field, String)> = labels
        .labels
        .iter()
        .map(|(f, l, _)| (*f, format!("{}:", fold(l))))
        .collect();
    // Only a line's start can hold a label: fold no more than the longest label needs (a
    // hostile line may be 10 MiB long).
    let longest = folded.iter().map(|(_, l)| l.len()).max().unwrap_or(0) + 8;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_start_matches(|c: char| {
            c == '>'
                || c == '|'
                || c.is_whitespace()
                || is_invisible(c)
                || html::mark_of(c).is_some()
        });
        let l = fold_prefix(line, longest);
        let l = l.trim_start_matches(['>', '|', '*', '_']);
        if let Some((f, _)) = folded.iter().find(|(_, lab)| l.starts_with(lab.as_str())) {
            out.entry(*f).or_insert((0, line.to_string())).0 += 1;
        }
    }
    out
}

/// Lower case, look-alike letters replaced by the Latin letter they imitate, no spaces,
/// invisible characters or bold markers.
pub fn fold(s: &str) -> String {
    fold_prefix(s, usize::MAX)
}

/// [`fold`], stopping once the result holds `max_bytes` bytes.
fn fold_prefix(s: &str, max_bytes: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() >= max_bytes {
            break;
        }
        if c.is_whitespace()
            || is_invisible(c)
            || c == '*'
            || c == '_'
            || html::mark_of(c).is_some()
        {
            continue;
        }
        let c = match u32::from(c) {
            // Full-width ASCII.
            n @ 0xFF01..=0xFF5E => char::from_u32(n - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        let c = confusable(c);
        out.extend(c.to_lowercase());
    }
    out
}

fn confusable(c: char) -> char {
    match c {
        'а' | 'А' | 'α' | 'Α' => 'a',
        'в' | 'В' | 'β' | 'Β' => 'b',
        'с' | 'С' | 'ϲ' | 'Ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'Е' | 'ё' | 'Ё' | 'ε' | 'Ε' => 'e',
        'һ' | 'Һ' | 'Η' => 'h',
        'і' | 'І' | 'ι' | 'Ι' | 'ı' | 'ӏ' | 'Ӏ' => 'i',
        'ј' | 'Ј' | 'ϳ' => 'j',
        'к' | 'К' | 'κ' | 'Κ' => 'k',
        'м' | 'М' | 'Μ' => 'm',
        'п' | 'η' | 'Ν' => 'n',
        'о' | 'О' | 'ο' | 'Ο' | 'σ' => 'o',
        'р' | 'Р' | 'ρ' | 'Ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' | 'Ѕ' => 's',
        'т' | 'Т' | 'τ' | 'Τ' => 't',
        'υ' | 'Υ' => 'u',
        'ν' | 'ѵ' => 'v',
        'ԝ' | 'ѡ' | 'ω' => 'w',
        'х' | 'Х' | 'χ' | 'Χ' => 'x',
        'у' | 'У' | 'γ' => 'y',
        'Ζ' => 'z',
        '：' => ':',
        other => other,
    }
}

/// Values found, in order of appearance, per field (cleaned; empty values dropped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub values: BTreeMap<Field, Vec<String>>,
    /// Fields whose raw value held bidi controls or invisible characters (their code points).
    pub invalid: Vec<(Field, String)>,
    /// Fields shown through markup that can hide, add or reorder text (what was found).
    pub hidden: Vec<(Field, String)>,
    /// Fields whose label was found with no readable value (not counted by `is_empty`).
    pub empty: Vec<Field>,
}

impl Found {
    pub fn first(&self, f: Field) -> Option<&str> {
        self.values
            .get(&f)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.invalid.is_empty() && self.hidden.is_empty()
    }

    /// Add every value and finding of `other`.
    pub fn absorb(&mut self, other: Found) {
        for (f, vs) in other.values {
            self.values.entry(f).or_default().extend(vs);
        }
        self.invalid.extend(other.invalid);
        self.hidden.extend(other.hidden);
        self.empty.extend(other.empty);
    }

    /// The first two different values (case-insensitively) of a field, if it has two.
    pub fn two_values(&self, f: Field) -> Option<(&str, &str)> {
        two_values([self], f)
    }
}

/// The first two different values (case-insensitively) of a field across several finds. One
/// pass, no allocation: a hostile mail may hold hundreds of thousands of values.
pub fn two_values<'a>(
    founds: impl IntoIterator<Item = &'a Found>,
    f: Field,
) -> Option<(&'a str, &'a str)> {
    let mut first: Option<&'a str> = None;
    for found in founds {
        for v in found.values.get(&f).into_iter().flatten() {
            match first {
                None => first = Some(v),
                Some(a) if !same_ci(a, v) => return Some((a, v)),
                Some(_) => {}
            }
        }
    }
    None
}

/// Case-insensitive equality (Unicode lower case), without allocating.
fn same_ci(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// A value as a mail client showed it, without the link target Outlook writes after a
/// hyperlink when it renders a message as plain text: `alice@example.com<mailto:alice@example.com>`
/// and `https://x.example <https://x.example/>` are the same values as `alice@example.com` and
/// `https://x.example`. Only a target that repeats the text is dropped; any other bracketed text
/// stays part of the value (and may then conflict with the HTML rendering).
pub fn without_link_target(v: &str) -> &str {
    let Some(body) = v.strip_suffix('>') else {
        return v;
    };
    let Some((text, target)) = body.rsplit_once('<') else {
        return v;
    };
    let text_t = text.trim_end();
    if text_t.is_empty() || text_t.contains(['<', '>']) {
        return v;
    }
    let target_l = target.trim().to_lowercase();
    let text_l = text_t.to_lowercase();
    let same = match target_l.strip_prefix("mailto:") {
        Some(addr) => addr == text_l,
        None => {
            let bare = |s: &str| {
                s.trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_string()
            };
            (target_l.starts_with("http://") || target_l.starts_with("https://"))
                && bare(&target_l) == bare(&text_l)
        }
    };
    if same { text_t } else { v }
}

/// Letters of right-to-left scripts (Hebrew, Arabic, Syriac, Thaana, N'Ko, …).
fn is_rtl_letter(c: char) -> bool {
    matches!(u32::from(c), 0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF | 0x10800..=0x10FFF | 0x1E800..=0x1EFFF)
}

/// How far below an empty-valued label we look for its value (blank lines skipped).
const VALUE_LOOKAHEAD: usize = 3;

/// Extract the fields from lines. `is_other_label` tells lines that are labels of something
/// else (forward headers) so they are never taken as a value.
#[cfg(test)]
pub fn extract(
    lines: &[String],
    labels: &LabelSet,
    is_other_label: &dyn Fn(&str) -> bool,
) -> Found {
    extract_marked(lines, lines, &[], labels, is_other_label)
}

/// What the marks of an HTML rendering's line say about it (see `html::Mark`): markup that can
/// hide, add or reorder text, or a conditional comment that covers only part of the line.
pub fn line_finding(marked: &str, findings: &[String]) -> Option<String> {
    let mut outside_cond = false;
    let mut cond: Option<usize> = None;
    let mut in_cond = false;
    for c in marked.chars() {
        match html::mark_of(c) {
            Some(html::Mark::Hide(i)) => {
                return Some(
                    findings
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| "markup that cannot be evaluated".into()),
                );
            }
            Some(html::Mark::Cond(i)) => {
                cond = cond.or(Some(i));
                in_cond = true;
            }
            Some(html::Mark::End) => in_cond = false,
            None if !in_cond && !c.is_whitespace() => outside_cond = true,
            None => {}
        }
    }
    match cond {
        Some(i) if outside_cond => Some(format!(
            "{} around part of the line",
            findings
                .get(i)
                .map(String::as_str)
                .unwrap_or("a conditional comment")
        )),
        _ => None,
    }
}

/// [`extract`] on lines without marks (`lines`), with the same lines as converted (`marked`,
/// same indexes) and what their marks stand for: a field whose label or value line holds a
/// finding is recorded in `Found::hidden`.
pub fn extract_marked(
    lines: &[String],
    marked: &[String],
    findings: &[String],
    labels: &LabelSet,
    is_other_label: &dyn Fn(&str) -> bool,
) -> Found {
    let mut found = Found::default();
    for (i, line) in lines.iter().enumerate() {
        let Some((field, value)) = labels.match_line(line) else {
            continue;
        };
        let mut value_line = i;
        let value = if value.is_empty() {
            lines
                .iter()
                .enumerate()
                .skip(i + 1)
                .take(VALUE_LOOKAHEAD)
                .find(|(_, l)| !l.trim().is_empty())
                .filter(|(_, l)| labels.match_line(l).is_none() && !is_other_label(l))
                .map(|(j, l)| {
                    value_line = j;
                    strip_markers(l)
                })
                .unwrap_or("")
        } else {
            value
        };
        // The label and its value are one run, even when the value is in the next cell.
        let finding = match (marked.get(i), marked.get(value_line)) {
            (Some(a), Some(b)) if value_line != i => line_finding(&format!("{a}\t{b}"), findings),
            (Some(a), _) => line_finding(a, findings),
            _ => None,
        };
        if let Some(what) = finding {
            found.hidden.push((field, what));
        }
        // Apple Mail's data detectors put LRM (U+200E) around dates: in a value with no
        // right-to-left letter it changes nothing shown, and is dropped by `clean_value`.
        let ltr_only = !value.chars().any(is_rtl_letter);
        let hidden: Vec<String> = value
            .chars()
            .filter(|c| is_invisible(*c) && !(ltr_only && *c == '\u{200E}'))
            .map(|c| format!("U+{:04X}", u32::from(c)))
            .collect();
        if !hidden.is_empty() {
            found.invalid.push((field, hidden.join(" ")));
        }
        let value = clean_value(without_link_target(value.trim()));
        if value.is_empty() {
            found.empty.push(field);
        } else {
            found.values.entry(field).or_default().push(value);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> LabelSet {
        LabelSet::new([
            (Field::Safe, "Safe:".to_string()),
            (Field::RequestId, "Request Id:".to_string()),
            (Field::Requester, "Requester email:".to_string()),
            (Field::Reason, "Reason".to_string()),
        ])
    }

    #[test]
    fn label_matching_tolerates_real_world_noise() {
        assert_eq!(after_label("Safe: InfraSafe", "Safe"), Some("InfraSafe"));
        assert_eq!(after_label("*Safe:* InfraSafe", "Safe"), Some("InfraSafe"));
        assert_eq!(
            after_label("**Safe**: *InfraSafe*", "Safe"),
            Some("InfraSafe")
        );
        assert_eq!(after_label("safe :   InfraSafe", "Safe"), Some("InfraSafe"));
        assert_eq!(after_label("REQUEST   ID: 7", "Request Id"), Some("7"));
        assert_eq!(after_label("Safes: x", "Safe"), None);
        assert_eq!(after_label("Unsafe: x", "Safe"), None);
        assert_eq!(after_label("Safe", "Safe"), None);
        assert_eq!(after_label("Saf", "Safe"), None);
        assert_eq!(after_label("Safe:", "Safe"), Some(""));
    }

    #[test]
    fn values_come_from_the_next_cell_or_line_but_never_from_a_label() {
        let text = "Safe:\tInfraSafe\nRequest Id:\n\n42\nReason:\nRequester email: a@b.c\n";
        let found = extract(&lines_of(text), &labels(), &|_| false);
        assert_eq!(found.first(Field::Safe), Some("InfraSafe"));
        assert_eq!(found.first(Field::RequestId), Some("42"));
        assert_eq!(found.first(Field::Reason), None);
        assert_eq!(found.first(Field::Requester), Some("a@b.c"));
    }

    #[test]
    fn nbsp_zero_width_and_quotes_do_not_hide_labels() {
        let text = "> Safe:\u{00A0}Infra\u{200B}Safe\n>> Request\u{00A0}Id: 7";
        let found = extract(&lines_of(text), &labels(), &|_| false);
        assert_eq!(found.first(Field::Safe), Some("InfraSafe"));
        assert_eq!(found.first(Field::RequestId), Some("7"));
    }
}
