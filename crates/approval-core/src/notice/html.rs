//! HTML to plain text, for reading notifications that arrive as HTML only.
//!
//! Not a browser: it keeps what label matching needs. Block elements and `<br>` end lines;
//! cells of one table row are separated by a TAB (so a label cell and its value cell stay
//! together); `<style>`, `<script>`, `<title>`, `<head>` content and comments are dropped;
//! entities are decoded. It works on `char`s and never slices by computed byte offsets, so no
//! input can make it panic; the output is never longer than the input plus one newline per tag.

use mail_parser::decoders::html::add_html_token;

/// Elements whose start and end both end the current line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "tr",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "address",
    "center",
    "form",
    "fieldset",
    "caption",
    "body",
    "html",
];

/// Elements whose content is not text for the reader.
const SKIPPED: &[&str] = &[
    "style", "script", "title", "head", "template", "xml", "object",
];

/// Longest tag name or entity we look at; longer ones are treated as text.
const MAX_NAME: usize = 32;

struct Out {
    text: String,
    /// A space is owed before the next visible character.
    space: bool,
    /// Inside `<pre>`: keep whitespace as is.
    pre: usize,
    /// A cell was opened on the current line.
    cell_on_line: bool,
}

impl Out {
    fn at_line_start(&self) -> bool {
        self.text.is_empty() || self.text.ends_with('\n')
    }

    fn newline(&mut self) {
        while self.text.ends_with(' ') || self.text.ends_with('\t') {
            self.text.pop();
        }
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        self.space = false;
        self.cell_on_line = false;
    }

    fn break_line(&mut self) {
        while self.text.ends_with(' ') {
            self.text.pop();
        }
        self.text.push('\n');
        self.space = false;
        self.cell_on_line = false;
    }

    fn cell(&mut self) {
        if self.cell_on_line && !self.at_line_start() {
            while self.text.ends_with(' ') {
                self.text.pop();
            }
            self.text.push('\t');
        }
        self.cell_on_line = true;
        self.space = false;
    }

    fn push_char(&mut self, c: char) {
        if self.pre > 0 {
            self.text.push(c);
            return;
        }
        if c.is_whitespace() && c != '\u{00A0}' {
            self.space = true;
            return;
        }
        if self.space && !self.at_line_start() && !self.text.ends_with('\t') {
            self.text.push(' ');
        }
        self.space = false;
        self.text.push(c);
    }

    fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            self.push_char(c);
        }
    }
}

/// Convert an HTML document or fragment to text lines.
pub fn to_text(html: &str) -> String {
    let mut out = Out {
        text: String::with_capacity(html.len() / 2),
        space: false,
        pre: 0,
        cell_on_line: false,
    };
    let mut skip: Option<String> = None;
    let mut chars = html.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' => {
                // Comment: skip to `-->`.
                let mut lookahead = chars.clone();
                if lookahead.next() == Some('!')
                    && lookahead.next() == Some('-')
                    && lookahead.next() == Some('-')
                {
                    chars = lookahead;
                    // `<!-->` and `<!--->` are empty comments (downlevel-revealed conditional
                    // comments end with them).
                    let mut probe = chars.clone();
                    if probe.peek() == Some(&'>')
                        || (probe.next() == Some('-') && probe.peek() == Some(&'>'))
                    {
                        chars = probe;
                        chars.next();
                        continue;
                    }
                    // An Outlook conditional comment (`<!--[if mso]>…<![endif]-->`): what it
                    // holds is shown by some clients, so it is read like the rest (a notice
                    // shown only to Outlook must agree with the one shown elsewhere).
                    let head: String = chars.clone().take(3).collect();
                    if head.eq_ignore_ascii_case("[if") {
                        for c in chars.by_ref() {
                            if c == '>' {
                                break;
                            }
                        }
                        continue;
                    }
                    let mut dashes = 0usize;
                    for c in chars.by_ref() {
                        match c {
                            '-' => dashes += 1,
                            '>' if dashes >= 2 => break,
                            _ => dashes = 0,
                        }
                    }
                    continue;
                }
                let Some(tag) = read_tag(&mut chars) else {
                    // A `<` that starts no tag is text.
                    if skip.is_none() {
                        out.push_char('<');
                    }
                    continue;
                };
                if let Some(name) = &skip {
                    if tag.closing && tag.name == *name {
                        skip = None;
                    }
                    continue;
                }
                handle_tag(&mut out, &tag, &mut skip);
            }
            '&' if skip.is_none() => {
                let decoded = read_entity(&mut chars);
                out.push_str(&decoded);
            }
            _ if skip.is_some() => {}
            '\r' if out.pre > 0 => {}
            _ => out.push_char(c),
        }
    }
    tidy(&out.text)
}

struct Tag {
    name: String,
    closing: bool,
    self_closing: bool,
}

/// Read a tag after `<`. Returns None (consuming nothing) when what follows is not a tag name.
fn read_tag(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<Tag> {
    let mut look = chars.clone();
    let mut closing = false;
    if look.peek() == Some(&'/') {
        closing = true;
        look.next();
    }
    let first = *look.peek()?;
    if !(first.is_ascii_alphabetic() || first == '!' || first == '?') {
        return None;
    }
    let mut name = String::new();
    while let Some(&c) = look.peek() {
        if c.is_ascii_alphanumeric() || c == '!' || c == '?' || c == ':' || c == '-' {
            if name.len() < MAX_NAME {
                name.push(c.to_ascii_lowercase());
            }
            look.next();
        } else {
            break;
        }
    }
    // Skip attributes, honouring quotes, up to `>`.
    let mut quote: Option<char> = None;
    let mut last = ' ';
    let mut self_closing = false;
    for c in look.by_ref() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '>' => {
                    self_closing = last == '/';
                    break;
                }
                _ => {}
            },
        }
        if !c.is_whitespace() {
            last = c;
        }
    }
    *chars = look;
    // Office namespaces (`o:p`, `v:shape`) carry no text structure.
    let name = name
        .rsplit_once(':')
        .map(|(_, n)| n.to_string())
        .unwrap_or(name);
    Some(Tag {
        name,
        closing,
        self_closing,
    })
}

fn handle_tag(out: &mut Out, tag: &Tag, skip: &mut Option<String>) {
    let name = tag.name.as_str();
    if !tag.closing && !tag.self_closing && SKIPPED.contains(&name) {
        *skip = Some(tag.name.clone());
        return;
    }
    match name {
        "br" => out.break_line(),
        "td" | "th" if !tag.closing => out.cell(),
        "td" | "th" => {}
        "pre" => {
            out.newline();
            if tag.closing {
                out.pre = out.pre.saturating_sub(1);
            } else if !tag.self_closing {
                out.pre = out.pre.saturating_add(1);
            }
        }
        _ if BLOCKS.contains(&name) => out.newline(),
        _ => {}
    }
}

/// Decode an entity after `&`. Unknown or malformed ones come back as written.
fn read_entity(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut look = chars.clone();
    let mut body = String::new();
    let mut terminated = false;
    while let Some(&c) = look.peek() {
        if c == ';' {
            look.next();
            terminated = true;
            break;
        }
        if (c.is_ascii_alphanumeric() || c == '#') && body.len() < MAX_NAME {
            body.push(c);
            look.next();
        } else {
            break;
        }
    }
    if !terminated || body.is_empty() {
        return "&".to_string();
    }
    *chars = look;
    if let Some(num) = body.strip_prefix('#') {
        let value = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => num.parse::<u32>().ok(),
        };
        return match value.map(char::from_u32) {
            Some(Some(c)) if c != '\0' => c.to_string(),
            Some(_) => '\u{FFFD}'.to_string(),
            None => format!("&{body};"),
        };
    }
    // The crate's table of named entities; `body` is ASCII alphanumerics only.
    let token = format!("&{body};");
    let mut s = String::new();
    add_html_token(&mut s, token.as_bytes(), false);
    s
}

/// Trim line ends and collapse runs of blank lines to one.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0usize;
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 || out.is_empty() {
                continue;
            }
            out.push('\n');
            continue;
        }
        blank = 0;
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn table_cells_stay_on_one_line_separated_by_tab() {
        let html = "<table><tr><td><b>Safe:</b></td><td>InfraSafe</td></tr>\
                    <tr><td>Request Id:</td><td>42</td></tr></table>";
        assert_eq!(to_text(html), "Safe:\tInfraSafe\nRequest Id:\t42\n");
    }

    #[test]
    fn br_and_paragraphs_end_lines_and_styles_vanish() {
        let html = "<html><head><style>p {color:red}</style><title>t</title></head>\
                    <body><p class=MsoNormal>From: A&nbsp;B &lt;a@x&gt;<br>Sent: Mon</p>\
                    <!-- a <p> comment --><div>Subject:&#32;Hi &amp; bye</div></body></html>";
        assert_eq!(
            to_text(html),
            "From: A\u{a0}B <a@x>\nSent: Mon\nSubject: Hi & bye\n"
        );
    }

    #[test]
    fn broken_html_is_still_text() {
        assert_eq!(to_text("a < b & c <"), "a < b & c <\n");
        assert_eq!(to_text("<p>x<style>unclosed"), "x\n");
        assert_eq!(
            to_text("&#xZZ; &#99999999; &bogus;"),
            "&#xZZ; \u{FFFD} &bogus;\n"
        );
        assert_eq!(to_text("<pre>a\n  b</pre>c"), "a\n  b\nc\n");
    }
}

#[cfg(test)]
mod conditional_comments {
    use super::to_text;

    #[test]
    fn outlook_conditional_content_is_read_on_both_sides() {
        let html = "<!--[if mso]><p>Request Id: 12</p><![endif]-->\
                    <!--[if !mso]><!--><p>Request Id: 99</p><!--<![endif]-->\
                    <!-- a real comment: Request Id: 55 -->";
        let t = to_text(html);
        assert!(t.contains("Request Id: 12"), "{t}");
        assert!(t.contains("Request Id: 99"), "{t}");
        assert!(!t.contains("55"), "{t}");
    }
}
