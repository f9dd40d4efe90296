//! `Authentication-Results` (RFC 8601) as far as the policy needs it: the authserv-id and each
//! `method=result`. Comments and quoted strings are honoured; Exchange Online's form without an
//! authserv-id (`spf=pass ...; dkim=none ...`) is understood.

/// One `method=result` from one header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResult {
    /// None when the header starts straight with a result (Exchange Online does this).
    pub authserv_id: Option<String>,
    /// Lower case, without version (`dkim`, `spf`, `dmarc`, `compauth`, ...).
    pub method: String,
    /// Lower case (`pass`, `fail`, `none`, `softfail`, ...).
    pub result: String,
}

/// Longest header value we parse (a real one is well under 2 kB).
const MAX_LEN: usize = 16 * 1024;

/// Remove RFC 5322 comments (nested parentheses) outside quoted strings.
fn strip_comments(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for c in v.chars() {
        if escaped {
            if depth == 0 {
                out.push(c);
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth = depth.saturating_add(1),
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Split on `;` outside quoted strings.
fn split_semicolons(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in v.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// `method[/version] = result` at the start of a resinfo.
fn method_result(resinfo: &str) -> Option<(String, String)> {
    let (method, rest) = resinfo.split_once('=')?;
    let method = method.trim();
    let method = method.split('/').next().unwrap_or(method).trim();
    if method.is_empty() || method.contains(char::is_whitespace) {
        return None;
    }
    let result = rest.split_whitespace().next()?;
    Some((method.to_ascii_lowercase(), result.to_ascii_lowercase()))
}

/// Parse one header value. Unreadable parts are skipped, never guessed.
pub fn parse(value: &str) -> Vec<AuthResult> {
    let cut: String = value.chars().take(MAX_LEN).collect();
    let text = strip_comments(&cut);
    let pieces = split_semicolons(&text);
    let mut iter = pieces.iter();
    let Some(first) = iter.next() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let first_token = first.split_whitespace().next().unwrap_or("");
    let authserv_id = if first_token.contains('=') {
        // No authserv-id: the first piece is already a result.
        if let Some((method, result)) = method_result(first) {
            out.push((method, result));
        }
        None
    } else if first_token.is_empty() {
        None
    } else {
        Some(first_token.to_ascii_lowercase())
    };
    for piece in iter {
        if let Some(mr) = method_result(piece) {
            out.push(mr);
        }
    }
    out.into_iter()
        .map(|(method, result)| AuthResult {
            authserv_id: authserv_id.clone(),
            method,
            result,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &str) -> Vec<(Option<String>, String, String)> {
        parse(v)
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
        assert_eq!(pairs(""), vec![]);
    }
}
