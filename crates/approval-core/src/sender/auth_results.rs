//! `Authentication-Results` (RFC 8601) read by its grammar: the authserv-id, an optional
//! version, then `; method[/version]=result` resinfos each followed by an optional reason and
//! properties, with comments (nested, with quoted-pairs) and quoted strings (with quoted-pairs)
//! anywhere CFWS may stand. Exchange Online's form without an authserv-id
//! (`spf=pass ...; dkim=none ...`) is read too.
//!
//! A header that does not follow the grammar (an unclosed quote or comment, a result without a
//! method, stray text) is an error, never a best guess: text hidden behind an unbalanced quote
//! (`header.from="x; dmarc=fail`) must not disappear, so the policy refuses such a header when
//! it comes from a trusted authserv-id.

/// One `method=result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResult {
    /// None when the header starts straight with a result (Exchange Online does this).
    pub authserv_id: Option<String>,
    /// Lower case, without version (`dkim`, `spf`, `dmarc`, `compauth`, ...).
    pub method: String,
    /// Lower case (`pass`, `fail`, `none`, `softfail`, ...).
    pub result: String,
}

/// A header that does not parse: why, and whose it claims to be (when that much was read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// `None` when the header had no authserv-id or it could not be read.
    pub authserv_id: Option<String>,
    /// Whether the authserv-id itself was read (or the header has the form without one).
    pub id_known: bool,
    pub message: String,
}

/// Longest header value read (a real one is well under 2 kB); a longer one is an error.
const MAX_LEN: usize = 16 * 1024;

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_keyword_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// RFC 2045 `token` bytes (no SPACE, CTLs or tspecials), plus non-ASCII (RFC 6532).
fn is_token_byte(b: u8) -> bool {
    b >= 0x80 || (b > b' ' && b != 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

impl P<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    /// Skip folding white space and comments.
    fn cfws(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.i += 1,
                Some(b'(') => {
                    let start = self.i;
                    self.i += 1;
                    let mut depth = 1usize;
                    while depth > 0 {
                        match self.peek() {
                            None => {
                                return Err(format!("the comment at byte {start} is not closed"));
                            }
                            Some(b'\\') => self.i += 2,
                            Some(b'(') => {
                                depth += 1;
                                self.i += 1;
                            }
                            Some(b')') => {
                                depth -= 1;
                                self.i += 1;
                            }
                            Some(_) => self.i += 1,
                        }
                    }
                    if self.i > self.s.len() {
                        return Err("a comment ends in a backslash".into());
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn keyword(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_keyword_byte) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).to_lowercase())
    }

    fn quoted(&mut self) -> Result<String, String> {
        let start = self.i;
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(format!("the quoted string at byte {start} is not closed")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    let c = self
                        .s
                        .get(self.i + 1)
                        .ok_or("a quoted string ends in a backslash")?;
                    out.push(*c);
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// `value` (token or quoted string) or, for a property, a `[local-part] @ domain` or a
    /// dotted name: everything up to white space, `;` or a comment.
    fn pvalue(&mut self) -> Result<String, String> {
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        let start = self.i;
        while let Some(b) = self.peek() {
            if b <= b' ' || b == 0x7f || b";()\"".contains(&b) {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return Err(format!("a value is missing at byte {start}"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("{what} expected at byte {}", self.i))
        }
    }

    /// `method [/ version] = result`, then an optional reason and properties up to `;` or the end.
    fn resinfo(&mut self) -> Result<Option<(String, String)>, String> {
        self.cfws()?;
        let method = self
            .keyword()
            .ok_or_else(|| format!("a method name expected at byte {}", self.i))?;
        self.cfws()?;
        if method == "none" && (self.at_end() || self.peek() == Some(b';')) {
            return Ok(None);
        }
        if self.peek() == Some(b'/') {
            self.i += 1;
            self.cfws()?;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(format!("a method version expected at byte {}", self.i));
            }
            self.keyword();
            self.cfws()?;
        }
        self.expect(b'=', "`=` after the method")?;
        self.cfws()?;
        let result = self
            .keyword()
            .ok_or_else(|| format!("a result expected at byte {}", self.i))?;
        loop {
            self.cfws()?;
            if self.at_end() || self.peek() == Some(b';') {
                return Ok(Some((method, result)));
            }
            // reason=value, or ptype.property=pvalue
            let start = self.i;
            while self.peek().is_some_and(|b| is_keyword_byte(b) || b == b'.') {
                self.i += 1;
            }
            let name = &self.s[start..self.i];
            if name.is_empty() || name.starts_with(b".") || name.ends_with(b".") {
                return Err(format!("a property expected at byte {start}"));
            }
            self.cfws()?;
            self.expect(b'=', "`=` after a property")?;
            self.cfws()?;
            self.pvalue()?;
        }
    }
}

/// A parsed header: the authserv-id and every result in it.
pub fn parse(value: &str) -> Result<Vec<AuthResult>, ParseError> {
    let fail = |id: &Option<String>, id_known: bool, message: String| ParseError {
        authserv_id: id.clone(),
        id_known,
        message,
    };
    if value.len() > MAX_LEN {
        return Err(fail(&None, false, format!("longer than {MAX_LEN} bytes")));
    }
    let mut p = P {
        s: value.as_bytes(),
        i: 0,
    };
    p.cfws().map_err(|m| fail(&None, false, m))?;
    // Without an authserv-id the header starts with `method=` or `method/`.
    let save = p.i;
    let no_id = p.keyword().is_some() && {
        let _ = p.cfws();
        matches!(p.peek(), Some(b'=' | b'/'))
    };
    p.i = save;
    let mut out = Vec::new();
    let id = if no_id {
        None
    } else {
        let id = if p.peek() == Some(b'"') {
            p.quoted().map_err(|m| fail(&None, false, m))?
        } else {
            let start = p.i;
            while p.peek().is_some_and(is_token_byte) {
                p.i += 1;
            }
            if p.i == start {
                return Err(fail(&None, false, "no authserv-id".into()));
            }
            String::from_utf8_lossy(&p.s[start..p.i]).into_owned()
        };
        Some(id.to_lowercase())
    };
    let push = |out: &mut Vec<AuthResult>, mr: Option<(String, String)>| {
        if let Some((method, result)) = mr {
            out.push(AuthResult {
                authserv_id: id.clone(),
                method,
                result,
            });
        }
    };
    if no_id {
        let first = p.resinfo().map_err(|m| fail(&id, true, m))?;
        push(&mut out, first);
    } else {
        p.cfws().map_err(|m| fail(&id, true, m))?;
        // An optional version number after the authserv-id.
        if p.peek().is_some_and(|b| b.is_ascii_digit()) {
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.i += 1;
            }
        }
    }
    loop {
        p.cfws().map_err(|m| fail(&id, true, m))?;
        if p.at_end() {
            break;
        }
        p.expect(b';', "`;` before a result")
            .map_err(|m| fail(&id, true, m))?;
        p.cfws().map_err(|m| fail(&id, true, m))?;
        if p.at_end() {
            break; // a trailing `;`, as some writers leave
        }
        let mr = p.resinfo().map_err(|m| fail(&id, true, m))?;
        push(&mut out, mr);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &str) -> Vec<(Option<String>, String, String)> {
        parse(v)
            .expect("parses")
            .into_iter()
            .map(|r| (r.authserv_id, r.method, r.result))
            .collect()
    }

    #[test]
    fn rfc_form_with_authserv_id_and_comments() {
        let v = "mx.example.com; spf=pass (sender IP is 192.0.2.1; ok) smtp.mailfrom=example.com;\
                 \r\n dkim=pass header.d=example.com; dmarc=fail action=quarantine header.from=example.com";
        assert_eq!(
            pairs(v),
            vec![
                (Some("mx.example.com".into()), "spf".into(), "pass".into()),
                (Some("mx.example.com".into()), "dkim".into(), "pass".into()),
                (Some("mx.example.com".into()), "dmarc".into(), "fail".into()),
            ]
        );
    }

    #[test]
    fn exchange_online_form_without_authserv_id() {
        let v = "spf=none (sender IP is 10.0.0.1) smtp.mailfrom=example.com; dkim=none (message \
                 not signed) header.d=none;dmarc=none action=none header.from=example.com;\
                 compauth=fail reason=601";
        let p = pairs(v);
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|(id, _, _)| id.is_none()));
        assert_eq!(p.get(3), Some(&(None, "compauth".into(), "fail".into())));
    }

    #[test]
    fn versions_quotes_and_none() {
        assert_eq!(
            pairs("mx.example.com 1; dkim/1=pass header.s=\"a;b\""),
            vec![(Some("mx.example.com".into()), "dkim".into(), "pass".into())]
        );
        assert_eq!(pairs("mx.example.com; none"), vec![]);
        assert_eq!(
            pairs("mx.example.com; spf=pass smtp.mailfrom=alice@example.com;"),
            vec![(Some("mx.example.com".into()), "spf".into(), "pass".into())]
        );
        assert_eq!(
            pairs("mx.example.com; dkim=pass header.i=@example.com header.b=\"a/b+c=\""),
            vec![(Some("mx.example.com".into()), "dkim".into(), "pass".into())]
        );
    }

    #[test]
    fn a_quote_cannot_hide_the_result_after_it() {
        // An escaped quote inside a quoted value does not end it: dmarc=fail is read.
        assert_eq!(
            pairs(
                r#"mx.example.com; spf=pass smtp.mailfrom="a\"b"; dmarc=fail header.from=example.com"#
            ),
            vec![
                (Some("mx.example.com".into()), "spf".into(), "pass".into()),
                (Some("mx.example.com".into()), "dmarc".into(), "fail".into()),
            ]
        );
        // Unbalanced: the header does not parse, and says whose it is.
        for v in [
            r#"mx.example.com; spf=pass smtp.mailfrom="x; dmarc=fail header.from=example.com"#,
            r#"mx.example.com; spf=pass (comment; dmarc=fail"#,
            r#"mx.example.com; spf=pass smtp.mailfrom=a"b; dmarc=fail"#,
        ] {
            let e = parse(v).expect_err(v);
            assert_eq!(e.authserv_id.as_deref(), Some("mx.example.com"), "{v}");
            assert!(e.id_known);
        }
    }

    #[test]
    fn malformed_headers_are_errors_not_guesses() {
        for v in [
            "",
            "mx.example.com; =pass",
            "mx.example.com; spf pass",
            "mx.example.com; spf=",
            "mx.example.com spf=pass",
            "mx.example.com; spf=pass smtp.mailfrom",
            "mx.example.com; spf=pass .x=1",
            "\"mx.example.com; spf=pass",
        ] {
            assert!(parse(v).is_err(), "accepted: {v:?}");
        }
    }
}
