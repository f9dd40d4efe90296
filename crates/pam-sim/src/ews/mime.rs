//! Just enough RFC 5322 / MIME reading to serve a stored message in EWS's three views: the
//! header list, the raw header block (`PR_TRANSPORT_MESSAGE_HEADERS`) and a text body.

use base64::Engine as _;

/// The header block (CRLF line ends, unfolded lines kept as received) and the body bytes.
pub fn split(raw: &[u8]) -> (String, &[u8]) {
    let (head, body) = match find(raw, b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match find(raw, b"\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => (raw, &raw[raw.len()..]),
        },
    };
    let text = String::from_utf8_lossy(head).replace("\r\n", "\n");
    (text.replace('\n', "\r\n") + "\r\n", body)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Unfolded headers, in order.
pub fn headers(raw: &[u8]) -> Vec<(String, String)> {
    let (block, _) = split(raw);
    parse_headers(&block)
}

fn parse_headers(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.split("\r\n") {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

pub fn header<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    hs.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `"Name" <addr>` or `addr` -> (name, address).
pub fn address(v: &str) -> (Option<String>, String) {
    if let (Some(lt), Some(gt)) = (v.rfind('<'), v.rfind('>'))
        && lt < gt
    {
        let name = v[..lt].trim().trim_matches('"').trim();
        return (
            (!name.is_empty()).then(|| name.to_string()),
            v[lt + 1..gt].trim().to_string(),
        );
    }
    (None, v.trim().to_string())
}

/// The text of the message: the first `text/plain` part (or the whole body), transfer-decoded.
pub fn text_body(raw: &[u8]) -> String {
    let (block, body) = split(raw);
    let hs = parse_headers(&block);
    part_text(&hs, body, 0).unwrap_or_default()
}

fn part_text(hs: &[(String, String)], body: &[u8], depth: u32) -> Option<String> {
    let ct = header(hs, "Content-Type")
        .unwrap_or("text/plain")
        .to_string();
    let lower = ct.to_ascii_lowercase();
    if lower.starts_with("multipart/") && depth < 5 {
        let boundary = param(&ct, "boundary")?;
        let delim = format!("--{boundary}");
        let text = String::from_utf8_lossy(body).into_owned();
        let mut fallback = None;
        for part in text.split(&delim).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.trim_start_matches(['\r', '\n']);
            let (pblock, pbody) = split(part.as_bytes());
            let phs = parse_headers(&pblock);
            let pct = header(&phs, "Content-Type")
                .unwrap_or("text/plain")
                .to_ascii_lowercase();
            if let Some(t) = part_text(&phs, pbody, depth + 1) {
                if pct.starts_with("text/plain") || pct.starts_with("multipart/") {
                    return Some(t);
                }
                fallback.get_or_insert(t);
            }
        }
        return fallback;
    }
    if !lower.starts_with("text/") {
        return None;
    }
    let cte = header(hs, "Content-Transfer-Encoding")
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = match cte.as_str() {
        "base64" => {
            let compact: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()?
        }
        "quoted-printable" => quoted_printable(body),
        _ => body.to_vec(),
    };
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn param(ct: &str, name: &str) -> Option<String> {
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn quoted_printable(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (b.get(i + 1), b.get(i + 2))
                && let Ok(v) = u8::from_str_radix(&format!("{}{}", *h as char, *l as char), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_unfold_and_bodies_decode() {
        let raw = b"From: \"Alice A\" <alice@example.com>\r\nSubject: a\r\n long\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nRequest =3D 42=\r\n!\r\n--b1--\r\n";
        let hs = headers(raw);
        assert_eq!(header(&hs, "subject"), Some("a long"));
        assert_eq!(
            address(header(&hs, "From").expect("from")),
            (Some("Alice A".into()), "alice@example.com".into())
        );
        assert_eq!(text_body(raw).trim_end(), "Request = 42!");
        let (block, _) = split(raw);
        assert!(block.starts_with("From: \"Alice A\""));
        assert!(block.ends_with("boundary=\"b1\"\r\n"));
    }
}
