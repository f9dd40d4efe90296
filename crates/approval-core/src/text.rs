//! Untrusted text (a mail's field, a server's answer, a config value) made safe to show in a
//! message, a log line or a reply. Bottom layer: imports nothing from the crate.

/// A GUID in its usual 8-4-4-4-12 hexadecimal form (an Entra tenant or application id).
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A printable, bounded form of untrusted text for messages.
pub fn printable(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(120)
        .collect();
    if s.chars().count() > 120 {
        format!("{clean}…")
    } else {
        clean
    }
}

/// Characters that are invisible or reorder text (soft hyphen, zero-width spaces and joiners,
/// LRM/RLM, bidi embeddings, overrides and isolates, BOM, …). One list for every reader: the
/// mail watcher refuses them inside a field, the Remote Access input inside any text that reaches
/// an invitation.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'              // soft hyphen
            | '\u{034F}'        // combining grapheme joiner
            | '\u{061C}'        // arabic letter mark
            | '\u{180E}'        // mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}'        // BOM / zero-width no-break space
    )
}

/// Line and paragraph separators (U+2028, U+2029): line breaks to a mail client or a browser,
/// though not control characters to `char::is_control`.
pub fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// The characters of `s` that may make it display as something other than what it says
/// (control characters, line separators, invisible and text-direction characters), as
/// `U+XXXX`, each once, in order of appearance.
pub fn hidden_characters(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in s.chars() {
        if c.is_control() || is_line_separator(c) || is_invisible(c) {
            let u = format!("U+{:04X}", u32::from(c));
            if !out.contains(&u) {
                out.push(u);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_named() {
        assert_eq!(
            hidden_characters("Ja\u{202E}ne\u{200B} Doe\u{00AD}\u{2028}\u{202E}\n"),
            vec!["U+202E", "U+200B", "U+00AD", "U+2028", "U+000A"]
        );
        assert!(hidden_characters("José Müller-Lüdenscheidt, 李").is_empty());
    }

    #[test]
    fn control_characters_are_replaced_and_long_text_is_cut() {
        assert_eq!(printable("a\nb\u{1b}[31m"), "a?b?[31m");
        let long = "x".repeat(200);
        let p = printable(&long);
        assert_eq!(p.chars().count(), 121);
        assert!(p.ends_with('…'));
        assert_eq!(printable("short"), "short");
    }
}
