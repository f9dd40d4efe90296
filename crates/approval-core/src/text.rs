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

#[cfg(test)]
mod tests {
    use super::*;

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
