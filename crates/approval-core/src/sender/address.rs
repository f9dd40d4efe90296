//! A strict reader of one RFC 5322 `mailbox` (the value of `From` or `Sender`).
//!
//! Mail parsers are lenient by design: they recover an address from `"x" a@b`, `<a@b`,
//! `<> a@b` or `<<a@b>>`, and which of several candidates they return is their choice. Who
//! forwarded a mail decides who approved a request, so this reader accepts only the grammar:
//!
//! ```text
//! mailbox      = name-addr / addr-spec
//! name-addr    = [display-name] [CFWS] "<" addr-spec ">" [CFWS]
//! display-name = 1*( atom / quoted-string )      ; "." allowed between words (obs-phrase)
//! addr-spec    = local-part "@" domain
//! local-part   = dot-atom / quoted-string
//! domain       = dot-atom / domain-literal
//! ```
//!
//! with comments and folding white space (CFWS) allowed between tokens and UTF-8 in atoms and
//! quoted strings (RFC 6532). Anything else (a group, a list, a route, a second address, a
//! stray `<`, `>`, `@`, `,`, `;`, `:` or `"`) is refused with the reason. RFC 2047 encoded
//! words in the display name are atoms here; the caller decodes the name separately.

/// A lexical token between CFWS.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// atext and dots (a dot-atom or an obs-phrase word).
    Atom(String),
    /// A quoted string, unescaped.
    Quoted(String),
    /// `[ ... ]`, kept as written.
    Literal(String),
    /// One of `< > @ , ; :`.
    Special(char),
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn tokens(value: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = value.chars().peekable();
    while let Some(&c) = it.peek() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                it.next();
            }
            '(' => {
                it.next();
                let mut depth = 1u32;
                while depth > 0 {
                    match it.next() {
                        Some('\\') => {
                            it.next().ok_or("a comment ends in a backslash")?;
                        }
                        Some('(') => depth += 1,
                        Some(')') => depth -= 1,
                        Some(_) => {}
                        None => return Err("a comment is not closed".into()),
                    }
                }
            }
            '"' => {
                it.next();
                let mut s = String::new();
                loop {
                    match it.next() {
                        Some('\\') => {
                            s.push(it.next().ok_or("a quoted string ends in a backslash")?)
                        }
                        Some('"') => break,
                        Some(ch) if ch.is_control() && ch != '\t' => {
                            return Err("a control character in a quoted string".into());
                        }
                        Some(ch) => s.push(ch),
                        None => return Err("a quoted string is not closed".into()),
                    }
                }
                out.push(Tok::Quoted(s));
            }
            '[' => {
                it.next();
                let mut s = String::from("[");
                loop {
                    match it.next() {
                        Some(']') => break,
                        Some('[' | '\\') | None => {
                            return Err("a domain literal is not closed".into());
                        }
                        Some(ch) if ch.is_control() || ch.is_whitespace() => {
                            return Err("white space in a domain literal".into());
                        }
                        Some(ch) => s.push(ch),
                    }
                }
                s.push(']');
                out.push(Tok::Literal(s));
            }
            '<' | '>' | '@' | ',' | ';' | ':' => {
                it.next();
                out.push(Tok::Special(c));
            }
            c if is_atext(c) || c == '.' => {
                let mut s = String::new();
                while let Some(&ch) = it.peek() {
                    if is_atext(ch) || ch == '.' {
                        s.push(ch);
                        it.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Atom(s));
            }
            other => {
                return Err(format!(
                    "the character {other:?} has no place in an address"
                ));
            }
        }
    }
    Ok(out)
}

fn dot_atom(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|p| !p.is_empty())
}

/// `local-part "@" domain` from exactly these tokens.
fn addr_spec(t: &[Tok]) -> Result<String, String> {
    let (local, domain) = match t {
        [local, Tok::Special('@'), domain] => (local, domain),
        [] => return Err("no address".into()),
        _ if t.iter().filter(|x| **x == Tok::Special('@')).count() > 1 => {
            return Err("more than one @".into());
        }
        _ => return Err("not a single local@domain address".into()),
    };
    let local = match local {
        Tok::Atom(a) if dot_atom(a) => a.clone(),
        Tok::Atom(a) => return Err(format!("the local part \"{a}\" has a misplaced dot")),
        Tok::Quoted(q) if !q.is_empty() => {
            let escaped: String = q
                .chars()
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("\"{escaped}\"")
        }
        _ => return Err("the local part is missing".into()),
    };
    let domain = match domain {
        Tok::Atom(a) if dot_atom(a) => a.clone(),
        Tok::Literal(l) => l.clone(),
        _ => return Err("the domain is missing or malformed".into()),
    };
    Ok(format!("{local}@{domain}"))
}

/// The address of exactly one mailbox in `value`, or why it is not one.
pub fn strict_mailbox(value: &str) -> Result<String, String> {
    let t = tokens(value)?;
    let opens = t.iter().filter(|x| **x == Tok::Special('<')).count();
    let closes = t.iter().filter(|x| **x == Tok::Special('>')).count();
    if t.iter().any(|x| matches!(x, Tok::Special(',' | ';' | ':'))) {
        return Err("a list, group or route, not one mailbox".into());
    }
    match (opens, closes) {
        (0, 0) => addr_spec(&t),
        (1, 1) => {
            let open = t.iter().position(|x| *x == Tok::Special('<')).unwrap_or(0);
            let close = t.iter().position(|x| *x == Tok::Special('>')).unwrap_or(0);
            if close != t.len() - 1 || close < open {
                return Err("text after the <address>".into());
            }
            let phrase = &t[..open];
            if !phrase
                .iter()
                .all(|x| matches!(x, Tok::Atom(_) | Tok::Quoted(_)))
            {
                return Err("the display name is not a phrase".into());
            }
            addr_spec(&t[open + 1..close])
        }
        (o, c) if o != c => Err("unbalanced angle brackets".into()),
        _ => Err("more than one <address>".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::strict_mailbox;

    #[test]
    fn the_forms_mail_clients_write_are_read() {
        for (v, want) in [
            ("alice@example.test", "alice@example.test"),
            ("<alice@example.test>", "alice@example.test"),
            ("Alice <alice@example.test>", "alice@example.test"),
            (
                "\"Approver, Alice\" <alice@example.test>",
                "alice@example.test",
            ),
            (
                "Alice Q. Approver <alice@example.test>",
                "alice@example.test",
            ),
            (
                "=?utf-8?q?J=C3=B6rg?= <jorg@example.test>",
                "jorg@example.test",
            ),
            ("Jörg Müller <jörg@example.test>", "jörg@example.test"),
            ("alice@example.test (Alice)", "alice@example.test"),
            (
                "Alice (CORP) <alice@example.test> (via Exchange)",
                "alice@example.test",
            ),
            ("  Alice\r\n <alice.a@example.test>", "alice.a@example.test"),
            ("\"odd local\"@example.test", "\"odd local\"@example.test"),
            ("a@[10.0.0.1]", "a@[10.0.0.1]"),
        ] {
            assert_eq!(strict_mailbox(v).as_deref(), Ok(want), "{v}");
        }
    }

    #[test]
    fn invalid_address_anything_but_one_mailbox_is_refused() {
        for v in [
            "",
            "Alice",
            "<alice@example.test",
            "Alice <alice@example.test",
            "alice@example.test>",
            "\"Boss\" mallory@evil.test",
            "\"alice@example.test\" mallory@evil.test",
            "<> alice@example.test",
            "<>alice@example.test",
            "<<alice@example.test>>",
            "<alice@example.test> mallory@evil.test",
            "<alice@example.test> <mallory@evil.test>",
            "alice@example.test, mallory@evil.test",
            "alice@example.test mallory@evil.test",
            "Team: alice@example.test;",
            "<@relay.test:alice@example.test>",
            "alice@@example.test",
            "alice@mallory@example.test",
            ".alice@example.test",
            "alice.@example.test",
            "alice@example..test",
            "alice@",
            "@example.test",
            "Alice (unclosed <alice@example.test>",
            "\"unclosed <alice@example.test>",
            "alice@example.test\\",
            "Alice <alice@example.test> \"",
            "alice@[10.0.0.1",
        ] {
            assert!(strict_mailbox(v).is_err(), "accepted: {v:?}");
        }
    }
}
