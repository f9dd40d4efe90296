//! Character-level cleaning shared by the notice and sender readers.
//!
//! Two jobs: `clean` makes a value safe to show, log or put in a reply (no CR/LF, no control or
//! bidirectional-override characters, bounded length); `normalise_line` makes a body line
//! comparable with a label (no NBSP, no zero-width characters, no quote markers).

/// Longest value we keep from a mail field, in characters.
pub const MAX_VALUE_CHARS: usize = 512;

pub use crate::text::is_invisible;

/// Spaces that are not ASCII space: treated as one.
fn is_odd_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// A value fit for logs, JSON and replies: control characters (CR, LF, TAB, C1, DEL) become
/// spaces, invisible and bidi characters go, runs of spaces shrink to one, ends are trimmed,
/// and the result is at most `max_chars` characters.
pub fn clean(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars * 4));
    let mut count = 0usize;
    let mut pending_space = false;
    for c in s.chars() {
        if is_invisible(c) {
            continue;
        }
        if c.is_control() || c.is_whitespace() || is_odd_space(c) {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            if count + 1 >= max_chars {
                break;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max_chars {
            break;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// `clean` with the default bound.
pub fn clean_value(s: &str) -> String {
    clean(s, MAX_VALUE_CHARS)
}

/// Characters that change the display order of the text around them (embeddings, overrides,
/// isolates, the Arabic letter mark): never inserted by a mail client, never dropped here.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A body line ready for label matching: odd spaces become spaces, leading quote markers (`>`,
/// `|`) and whitespace are stripped. Tabs stay (they separate table cells). Invisible
/// characters mail clients insert around labels (zero-width spaces and joiners, LRM/RLM, BOM,
/// soft hyphens) go from the label (before the first colon) and from both ends of the value;
/// inside a value they stay, as do bidi controls anywhere, so the field reader can refuse a
/// value that would display differently from what it says.
pub fn normalise_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_value = false;
    for c in line.chars() {
        if is_invisible(c) && !is_bidi_control(c) {
            // At the start of the value (right after the colon and spaces) it is an edge.
            let at_value_start = in_value && out.ends_with([':', '\u{FF1A}', ' ', '\t']);
            if !in_value || at_value_start {
                continue;
            }
            out.push(c);
            continue;
        }
        if c == ':' || c == '\u{FF1A}' {
            in_value = true;
        }
        if is_odd_space(c) {
            out.push(' ');
        } else if c == '\t' {
            out.push('\t');
        } else if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    let trimmed = out.trim_start_matches(['>', '|', ' ']);
    trimmed
        .trim_end_matches(|c: char| c.is_whitespace() || (is_invisible(c) && !is_bidi_control(c)))
        .to_string()
}

/// Undo `format=flowed` (RFC 3676): a line ending in a space continues on the next line of
/// the same quote depth; with `delsp=yes` that space is not part of the text. Space-stuffing is
/// removed. The signature separator `-- ` is never joined.
pub fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending: Option<(usize, String)> = None;
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let depth = raw.chars().take_while(|c| *c == '>').count();
        let body = raw.get(depth..).unwrap_or("");
        let body = body.strip_prefix(' ').unwrap_or(body);
        let mut line = match pending.take() {
            Some((d, mut acc)) if d == depth => {
                acc.push_str(body);
                acc
            }
            Some((d, acc)) => {
                push_line(&mut out, d, &acc);
                body.to_string()
            }
            None => body.to_string(),
        };
        let flowed = line.ends_with(' ') && line != "-- ";
        if flowed {
            if delsp {
                line.pop();
            }
            pending = Some((depth, line));
        } else {
            push_line(&mut out, depth, &line);
        }
    }
    if let Some((d, acc)) = pending {
        push_line(&mut out, d, &acc);
    }
    out
}

fn push_line(out: &mut String, depth: usize, line: &str) {
    for _ in 0..depth {
        out.push('>');
    }
    if depth > 0 {
        out.push(' ');
    }
    out.push_str(line);
    out.push('\n');
}

/// Case-insensitive `contains` on already normalised text (Unicode lower case).
pub fn contains_ci(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_removes_line_breaks_controls_and_bidi() {
        assert_eq!(
            clean_value("a\r\nBcc: x@evil\u{202E}txt\u{0007}"),
            "a Bcc: x@eviltxt"
        );
        assert_eq!(clean_value("  \u{00A0}Infra\u{200B}Safe\t "), "InfraSafe");
        assert_eq!(clean("abcdef", 3), "abc");
        assert_eq!(clean("ab cdef", 3), "ab");
    }

    #[test]
    fn invisible_characters_inside_a_value_and_bidi_controls_stay_for_the_reader() {
        // Around labels and at a value's ends, as clients insert them: gone.
        assert_eq!(
            normalise_line("\u{200B}Request\u{200E} Id:\u{FEFF} 12\u{200B}"),
            "Request Id: 12"
        );
        // Inside a value, or a bidi override anywhere: kept, so the value can be refused.
        assert_eq!(
            normalise_line("Request Id: 1\u{200B}2"),
            "Request Id: 1\u{200B}2"
        );
        assert_eq!(
            normalise_line("Request Id: \u{202E}21"),
            "Request Id: \u{202E}21"
        );
        assert_eq!(
            normalise_line("\u{202E}Request Id: 21"),
            "\u{202E}Request Id: 21"
        );
    }

    #[test]
    fn normalise_strips_quotes_and_odd_spaces() {
        assert_eq!(normalise_line("> >  Safe:\u{00A0}X\u{FEFF} "), "Safe: X");
        assert_eq!(normalise_line("Safe:\tX"), "Safe:\tX");
    }
}
