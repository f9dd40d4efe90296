//! The send key: a value stored on a sent mail (not in its headers; EWS keeps it in a named
//! extended property) by which [`super::Mailbox::was_sent`] finds the mail after a crash between
//! sending it and recording that it was sent. Every backend stores and finds the same key.

/// The send key of a reply: a digest of its kind, the mail's journal key and `extra`, so the
/// same reply always has the same key and nothing of the mail shows in it.
pub fn send_key(kind: &str, mail_key: &str, extra: &str) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for part in [kind, mail_key, extra] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("pam-approval-{kind}-{}", &hex::encode(h.finalize())[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_always_has_the_same_key_and_shows_nothing_of_the_mail() {
        let a = send_key("reply", "msgid:<secret-subject@example.com>", "");
        assert_eq!(
            a,
            send_key("reply", "msgid:<secret-subject@example.com>", "")
        );
        assert!(a.starts_with("pam-approval-reply-"), "{a}");
        assert_eq!(a.len(), "pam-approval-reply-".len() + 32);
        assert!(!a.contains("secret"), "{a}");
        // Kind, key and extra are kept apart: moving a byte between them changes the key.
        assert_ne!(send_key("reply", "ab", ""), send_key("reply", "a", "b"));
        assert_ne!(
            a,
            send_key("report", "msgid:<secret-subject@example.com>", "")
        );
    }
}
