//! HTML to plain text, for reading notifications that arrive as HTML.
//!
//! Not a browser: it keeps what label matching needs, and marks what it cannot vouch for.
//! Block elements and `<br>` end lines; cells of one table row are separated by a TAB (so a
//! label cell and its value cell stay together); `<style>`, `<script>`, `<title>`, `<head>`
//! content and comments are dropped; entities are decoded. It works on `char`s and never slices
//! by computed byte offsets, so no input can make it panic.
//!
//! Issue 25: what is displayed must be what is read. So the converter
//! - builds one text per *rendering*: [`Client::Browser`] (every client but classic Outlook:
//!   conditional comments are comments, downlevel-revealed ones are shown) and
//!   [`Client::Outlook`] (Word's engine: `<!--[if mso]>` evaluated). They are read each on its
//!   own and never concatenated;
//! - tracks, for every open element, the styles that can hide, add or reorder text
//!   ([`super::css`]: hiding styles, classes of the mail's own `<style>`, `hidden`, `dir=rtl`,
//!   `<bdo>`, `<details>`, images, form fields, …). Text written under such markup is wrapped
//!   in *marks* (private-use characters, see [`Mark`]) naming the finding; text inside a
//!   conditional comment is wrapped in conditional marks. The field reader refuses a field
//!   line holding a finding mark, or text both inside and outside a conditional mark.
//!   Markup on the allowlist (shared/reference/forwarded-html.md §3) leaves no mark.

use std::collections::HashMap;

use mail_parser::decoders::html::add_html_token;

use super::css::{self, AncestorBits, Attrs, Ctx, Sheet};

/// First mark of a finding (plane 15 private use): `HIDE_BASE + n` opens text under finding n.
const HIDE_BASE: u32 = 0xF_0000;
/// First mark of a conditional comment (plane 16 private use).
const COND_BASE: u32 = 0x10_0000;
/// Marks per kind; later findings share the last one.
const MAX_MARKS: u32 = 0xFFF0;
/// Closes the open mark.
pub const MARK_END: char = '\u{10FFFD}';

/// What a mark character says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Text under markup that can hide, add or reorder it (index into the findings).
    Hide(usize),
    /// Text inside a conditional comment (index into the findings).
    Cond(usize),
    End,
}

/// The mark a character is, if it is one. Private-use characters of planes 15 and 16 in the
/// mail itself are replaced before conversion, so any mark in a converted text is ours.
pub fn mark_of(c: char) -> Option<Mark> {
    let n = u32::from(c);
    if c == MARK_END {
        Some(Mark::End)
    } else if (COND_BASE..COND_BASE + MAX_MARKS).contains(&n) {
        Some(Mark::Cond((n - COND_BASE) as usize))
    } else if (HIDE_BASE..HIDE_BASE + MAX_MARKS).contains(&n) {
        Some(Mark::Hide((n - HIDE_BASE) as usize))
    } else {
        None
    }
}

/// Characters of the planes marks use: replaced in mail text before it is read.
pub fn is_reserved(c: char) -> bool {
    u32::from(c) >= HIDE_BASE
}

/// The same text with every mark's index moved by `offset` (to join several parts' texts).
pub fn renumber(s: &str, offset: usize) -> String {
    if offset == 0 {
        return s.to_string();
    }
    s.chars()
        .map(|c| match mark_of(c) {
            Some(Mark::Hide(i)) => shifted(HIDE_BASE, i + offset),
            Some(Mark::Cond(i)) => shifted(COND_BASE, i + offset),
            _ => c,
        })
        .collect()
}

fn shifted(base: u32, idx: usize) -> char {
    let n = u32::try_from(idx).unwrap_or(MAX_MARKS).min(MAX_MARKS - 1);
    char::from_u32(base + n).unwrap_or(MARK_END)
}

/// The text without marks (hidden text kept).
pub fn strip_marks(s: &str) -> String {
    s.chars().filter(|c| mark_of(*c).is_none()).collect()
}

/// The text a reader would see: marked text under a finding removed, conditional text kept.
pub fn displayed(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut hidden = false;
    for c in s.chars() {
        match mark_of(c) {
            Some(Mark::Hide(_)) => hidden = true,
            Some(Mark::End) => hidden = false,
            Some(Mark::Cond(_)) => {}
            None if !hidden || c == '\n' || c == '\t' => out.push(c),
            None => {}
        }
    }
    out
}

/// Which client's rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// Every client but classic Outlook for Windows: conditional comments are comments.
    Browser,
    /// Classic Outlook for Windows (Word's engine): `<!--[if mso]>` evaluated.
    Outlook,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Browser => "the HTML as most clients show it",
            Client::Outlook => "the HTML as Outlook for Windows shows it",
        }
    }
}

/// One rendering of an HTML part: text lines with marks, and what each mark stands for.
#[derive(Debug, Clone)]
pub struct Rendering {
    pub client: Client,
    pub text: String,
    pub findings: Vec<String>,
}

impl Rendering {
    /// The finding a mark stands for.
    pub fn finding(&self, m: Mark) -> Option<&str> {
        match m {
            Mark::Hide(i) | Mark::Cond(i) => self.findings.get(i).map(String::as_str),
            Mark::End => None,
        }
    }
}

/// Convert an HTML document to text lines as most clients show it (marks removed, text under
/// hiding markup kept). For tests and tools; the reader uses [`renderings`].
pub fn to_text(html: &str) -> String {
    strip_marks(&convert(html, Client::Browser).text)
}

/// The renderings of an HTML part: the browser one, and the Outlook one when the HTML has
/// conditional comments and Outlook's text differs.
pub fn renderings(html: &str) -> Vec<Rendering> {
    let browser = convert(html, Client::Browser);
    let has_conditionals = html.contains("[if") || html.contains("[IF") || html.contains("[If");
    if !has_conditionals {
        return vec![browser];
    }
    let outlook = convert(html, Client::Outlook);
    if outlook.text == browser.text {
        return vec![browser];
    }
    vec![browser, outlook]
}

fn convert(html: &str, client: Client) -> Rendering {
    // Pass 1: the stylesheets this client applies (a rule may follow the text it hides).
    let mut first = Conv::new(client, Sheet::default(), true);
    first.run(html);
    let mut sheet = Sheet::parse(&first.styles);
    if let Some(d) = first.doubt.take() {
        sheet.global.get_or_insert(d);
    }
    let mut conv = Conv::new(client, sheet, false);
    conv.run(html);
    Rendering {
        client,
        text: tidy(&conv.out.text),
        findings: conv.findings,
    }
}

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

/// Longest tag name or entity we look at; longer ones are treated as text.
const MAX_NAME: usize = 32;

/// Elements whose content is not text for the reader.
const SKIPPED: &[&str] = &[
    "style", "script", "title", "head", "template", "xml", "object", "noembed", "noframes",
];

/// Elements with no end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "image", "input", "link", "meta", "param",
    "source", "track", "wbr", "keygen", "basefont", "frame",
];

/// Elements that can hide, add or reorder text, with how a refusal names them.
const NOT_INERT: &[(&str, &str)] = &[
    ("bdo", "a <bdo> element (reorders text)"),
    ("xmp", "an <xmp> element (shows markup as text)"),
    ("listing", "a <listing> element (shows markup as text)"),
    ("plaintext", "a <plaintext> element (shows markup as text)"),
    ("bdi", "a <bdi> element (reorders text)"),
    ("details", "a <details> element (folded text)"),
    ("summary", "a <summary> element (folded text)"),
    ("dialog", "a <dialog> element"),
    ("svg", "an <svg> drawing"),
    ("math", "a <math> formula"),
    ("button", "a form field (<button>)"),
    ("select", "a form field (<select>)"),
    ("textarea", "a form field (<textarea>)"),
    ("iframe", "an <iframe>"),
    ("video", "a <video>"),
    ("audio", "an <audio>"),
    ("canvas", "a <canvas>"),
    ("picture", "an image (<picture>)"),
    ("marquee", "a <marquee>"),
    ("ruby", "a <ruby> annotation"),
    ("rt", "a <rt> annotation"),
    ("rp", "a <rp> annotation"),
    ("del", "struck-out text (<del>)"),
    ("s", "struck-out text (<s>)"),
    ("strike", "struck-out text (<strike>)"),
    ("map", "an image map"),
    ("frameset", "frames"),
    ("applet", "an applet"),
    ("meter", "a <meter>"),
    ("progress", "a <progress>"),
];

/// Void elements that show something other than text.
const EMPTY_NOT_INERT: &[(&str, &str)] = &[
    ("img", "an image (<img>)"),
    ("image", "an image (<image>)"),
    ("input", "a form field (<input>)"),
    ("embed", "an embedded object (<embed>)"),
    ("area", "an image map (<area>)"),
    ("frame", "frames"),
    ("object", "an embedded object (<object>)"),
];

/// Deepest element nesting followed; deeper is doubt about everything after.
const MAX_STACK: usize = 512;
/// Most attributes read on one element, and longest attribute value.
const MAX_ATTRS: usize = 64;
const MAX_ATTR_CHARS: usize = 8192;
/// Longest conditional-comment expression.
const MAX_EXPR: usize = 200;

struct Out {
    text: String,
    /// A space is owed before the next visible character.
    space: bool,
    /// Inside `<pre>`: keep whitespace as is.
    pre: usize,
    /// A cell was opened on the current line.
    cell_on_line: bool,
    /// The mark text should be under now, and the mark open in the text.
    want: Option<char>,
    open: Option<char>,
    /// A conditional comment whose content this client does not show: marks the line it is
    /// on (the text next to it), not a line of its own.
    pending: Option<char>,
    /// The current line (or cell) has visible text.
    line_text: bool,
}

impl Out {
    fn at_line_start(&self) -> bool {
        self.text.is_empty() || self.text.ends_with('\n')
    }

    fn close_mark(&mut self) {
        if self.open.take().is_some() {
            self.text.push(MARK_END);
        }
    }

    /// At a line or cell boundary: a pending conditional mark goes to the text before it, or
    /// nowhere when there is none.
    fn flush_pending(&mut self) {
        if let Some(m) = self.pending.take()
            && self.line_text
        {
            self.close_mark();
            self.text.push(m);
            self.text.push(MARK_END);
        }
        self.line_text = false;
    }

    fn sync(&mut self) {
        if self.open != self.want {
            self.close_mark();
            if let Some(m) = self.want {
                self.text.push(m);
                self.open = Some(m);
            }
        }
    }

    fn trim_spaces(&mut self) {
        while self.text.ends_with(' ') {
            self.text.pop();
        }
    }

    fn newline(&mut self) {
        self.flush_pending();
        self.close_mark();
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
        self.flush_pending();
        self.close_mark();
        self.trim_spaces();
        self.text.push('\n');
        self.space = false;
        self.cell_on_line = false;
    }

    fn cell(&mut self) {
        self.flush_pending();
        self.close_mark();
        if self.cell_on_line && !self.at_line_start() {
            self.trim_spaces();
            self.text.push('\t');
        }
        self.cell_on_line = true;
        self.space = false;
    }

    /// Something shown that is not text (an image): a mark with nothing inside.
    fn empty_mark(&mut self, m: char) {
        self.close_mark();
        if self.space && !self.at_line_start() && !self.text.ends_with('\t') {
            self.text.push(' ');
        }
        self.space = false;
        self.text.push(m);
        self.text.push(MARK_END);
    }

    fn push_char(&mut self, c: char) {
        let c = if is_reserved(c) { '\u{FFFD}' } else { c };
        if self.pre > 0 {
            if c != '\n' && c != '\t' && !c.is_whitespace() {
                self.visible();
            } else if c == '\n' {
                self.flush_pending();
                self.close_mark();
            }
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
        // A space (`&nbsp;`) shows nothing a mark should vouch for: only letters open one.
        if !c.is_whitespace() {
            self.visible();
        }
        self.text.push(c);
    }

    /// Before a visible character: a pending conditional mark, then the right mark.
    fn visible(&mut self) {
        if let Some(m) = self.pending.take() {
            self.close_mark();
            self.text.push(m);
            self.text.push(MARK_END);
        }
        self.line_text = true;
        self.sync();
    }

    fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            self.push_char(c);
        }
    }
}

/// An open element.
struct Elem {
    name: String,
    /// A conditional-comment region, not an element.
    region: bool,
    hiding: Option<char>,
    contrast: Option<char>,
    cond: Option<char>,
    ctx: Ctx,
    bits: AncestorBits,
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

struct Conv {
    client: Client,
    sheet: Sheet,
    /// Pass 1: collect `<style>` texts only.
    collecting: bool,
    styles: Vec<String>,
    doubt: Option<String>,
    out: Out,
    root: Elem,
    stack: Vec<Elem>,
    positions: HashMap<String, Vec<usize>>,
    regions: Vec<usize>,
    findings: Vec<String>,
    /// Index of each finding (a hostile mail may hold many distinct ones).
    finding_index: HashMap<String, usize>,
    /// The mark of text outside table cells, once made.
    foster: Option<char>,
}

impl Conv {
    fn new(client: Client, sheet: Sheet, collecting: bool) -> Conv {
        let mut conv = Conv {
            client,
            sheet,
            collecting,
            styles: Vec::new(),
            doubt: None,
            out: Out {
                text: String::new(),
                space: false,
                pre: 0,
                cell_on_line: false,
                want: None,
                open: None,
                pending: None,
                line_text: false,
            },
            root: Elem {
                name: String::new(),
                region: false,
                hiding: None,
                contrast: None,
                cond: None,
                ctx: Ctx::default(),
                bits: [0; 4],
            },
            stack: Vec::new(),
            positions: HashMap::new(),
            regions: Vec::new(),
            findings: Vec::new(),
            finding_index: HashMap::new(),
            foster: None,
        };
        if let Some(g) = conv.sheet.global.clone() {
            let m = conv.hide_mark(format!("{g} in the mail's stylesheet"));
            conv.root.hiding = Some(m);
        }
        conv
    }

    fn mark(&mut self, base: u32, what: String) -> char {
        let what = super::text::clean(&what, 240);
        let idx = match self.finding_index.get(&what) {
            Some(i) => *i,
            None if self.findings.len() < MAX_MARKS as usize => {
                self.findings.push(what.clone());
                self.finding_index.insert(what, self.findings.len() - 1);
                self.findings.len() - 1
            }
            // Past the last mark, findings share it (the refusal names one of them).
            None => self.findings.len().saturating_sub(1),
        };
        let n = (idx as u32).min(MAX_MARKS - 1);
        char::from_u32(base + n).unwrap_or(MARK_END)
    }

    fn hide_mark(&mut self, what: String) -> char {
        self.mark(HIDE_BASE, what)
    }

    fn top(&self) -> &Elem {
        self.stack.last().unwrap_or(&self.root)
    }

    fn update_want(&mut self) {
        let t = self.top();
        let want = t.hiding.or(t.contrast);
        // Text right inside a table, outside any cell, is moved before the table by browsers
        // ("foster parenting"): it is not shown where it reads.
        let fostered = want.is_none()
            && !t.region
            && matches!(
                t.name.as_str(),
                "table" | "tbody" | "thead" | "tfoot" | "tr"
            );
        let want = if fostered {
            match self.foster {
                Some(m) => Some(m),
                None => {
                    let m = self.hide_mark(
                        "text outside a table cell (a browser shows it before the table)".into(),
                    );
                    self.foster = Some(m);
                    Some(m)
                }
            }
        } else {
            want
        };
        let t = self.top();
        self.out.want = want.or(t.cond);
    }

    fn push_elem(&mut self, e: Elem) {
        if self.stack.len() >= MAX_STACK {
            if self.root.hiding.is_none() {
                let m = self.hide_mark(format!(
                    "markup nested more than {MAX_STACK} deep (cannot be evaluated)"
                ));
                self.root.hiding = Some(m);
                for el in &mut self.stack {
                    el.hiding = el.hiding.or(Some(m));
                }
            }
            self.update_want();
            return;
        }
        let idx = self.stack.len();
        if e.region {
            self.regions.push(idx);
        }
        self.positions.entry(e.name.clone()).or_default().push(idx);
        self.stack.push(e);
        self.update_want();
    }

    fn pop_to(&mut self, len: usize) {
        while self.stack.len() > len {
            if let Some(e) = self.stack.pop() {
                if let Some(v) = self.positions.get_mut(&e.name) {
                    v.pop();
                }
                if e.region {
                    self.regions.pop();
                }
            }
        }
        self.update_want();
    }

    fn close(&mut self, name: &str) {
        let barrier = self.regions.last().copied();
        let Some(p) = self.positions.get(name).and_then(|v| v.last()).copied() else {
            return;
        };
        if barrier.is_some_and(|b| p <= b) {
            return;
        }
        self.pop_to(p);
    }

    fn open_region(&mut self, expr: &str) {
        let what = format!("a conditional comment [if {}]", expr.trim());
        let m = self.mark(COND_BASE, what);
        let t = self.top();
        let e = Elem {
            name: "![if".into(),
            region: true,
            hiding: t.hiding,
            contrast: t.contrast,
            cond: Some(m),
            ctx: t.ctx,
            bits: t.bits,
        };
        self.push_elem(e);
    }

    /// A conditional block this client does not show: the line it sits in is marked.
    fn hidden_conditional(&mut self, expr: &str) {
        if self.collecting {
            return;
        }
        let what = format!("a conditional comment [if {}]", expr.trim());
        let m = self.mark(COND_BASE, what);
        self.out.pending = Some(m);
    }

    fn close_region(&mut self) {
        if let Some(r) = self.regions.last().copied() {
            self.pop_to(r);
        }
    }

    fn run(&mut self, html: &str) {
        let mut skip: Option<String> = None;
        let mut capture: Option<String> = None;
        let mut chars = html.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '<' {
                if let Some(buf) = capture.as_mut() {
                    if buf.len() < 1 << 20 {
                        buf.push(c);
                    }
                    continue;
                }
                match c {
                    '&' if skip.is_none() && !self.collecting => {
                        let decoded = read_entity(&mut chars);
                        self.out.push_str(&decoded);
                    }
                    _ if skip.is_some() || self.collecting => {}
                    '\r' if self.out.pre > 0 => {}
                    _ => self.out.push_char(c),
                }
                continue;
            }
            if let Some(buf) = capture.as_mut() {
                // Raw text up to `</style`: `<!--` and `-->` inside it are CSS's, not comments.
                if starts_ci(&chars, "/style") {
                    let _ = read_tag(&mut chars);
                    self.styles.push(std::mem::take(buf));
                    capture = None;
                    if skip.as_deref() == Some("style") {
                        skip = None;
                    }
                } else if buf.len() < 1 << 20 {
                    buf.push('<');
                }
                continue;
            }
            if self.markup_declaration(&mut chars, false) {
                continue;
            }
            let Some(tag) = read_tag(&mut chars) else {
                if skip.is_none() && !self.collecting {
                    self.out.push_char('<');
                }
                continue;
            };
            if let Some(name) = &skip {
                if tag.closing && tag.name == *name {
                    skip = None;
                } else if name == "head" && !tag.closing && tag.name == "style" {
                    capture = Some(String::new());
                } else if name == "head" && !tag.closing && tag.name == "body" {
                    skip = None;
                    self.tag(&tag, &mut skip, &mut capture);
                } else if name == "head" && !tag.closing && tag.name == "link" {
                    self.link(&tag);
                }
                continue;
            }
            self.tag(&tag, &mut skip, &mut capture);
        }
        if let Some(buf) = capture {
            self.styles.push(buf);
        }
        self.out.flush_pending();
        self.out.close_mark();
    }

    /// `<link rel=stylesheet>`: rules from elsewhere cannot be evaluated.
    fn link(&mut self, tag: &Tag) {
        if tag
            .attr("rel")
            .is_some_and(|r| r.to_ascii_lowercase().contains("stylesheet"))
            && self.doubt.is_none()
        {
            self.doubt = Some("a linked stylesheet (cannot be evaluated)".into());
        }
    }

    /// Comments, conditional comments, `<!DOCTYPE>`, `<?xml?>`. True when consumed.
    fn markup_declaration(&mut self, chars: &mut Chars<'_>, in_style: bool) -> bool {
        let mut look = chars.clone();
        match look.next() {
            Some('!') => {}
            Some('?') => {
                if in_style {
                    return false;
                }
                for c in chars.by_ref() {
                    if c == '>' {
                        break;
                    }
                }
                return true;
            }
            _ => return false,
        }
        let mut probe = look.clone();
        let is_comment = probe.next() == Some('-') && probe.next() == Some('-');
        if is_comment {
            *chars = probe;
            // `<!-->` and `<!--->` are empty comments.
            let mut p = chars.clone();
            if p.peek() == Some(&'>') || (p.next() == Some('-') && p.peek() == Some(&'>')) {
                *chars = p;
                chars.next();
                return true;
            }
            if self.client == Client::Outlook && starts_ci(chars, "[if") {
                let mut p = chars.clone();
                p.nth(2);
                if let Some(expr) = read_expr(&mut p) {
                    *chars = p;
                    if eval_mso(&expr) {
                        self.open_region(&expr);
                    } else {
                        skip_to_endif(chars);
                        self.hidden_conditional(&expr);
                    }
                    return true;
                }
            }
            // An ordinary comment: keep its start to recognise `[if …]><!` and `<![endif]`.
            let mut head = String::new();
            let mut dashes = 0usize;
            let mut kept = 0usize;
            let mut bang = false;
            for c in chars.by_ref() {
                if kept < MAX_EXPR + 16 {
                    head.push(c);
                    kept += 1;
                }
                // `-->` ends a comment, and so does `--!>` (HTML's comment end bang).
                match c {
                    '-' => {
                        dashes += 1;
                        bang = false;
                    }
                    '!' if dashes >= 2 && !bang => bang = true,
                    '>' if dashes >= 2 => break,
                    _ => {
                        dashes = 0;
                        bang = false;
                    }
                }
            }
            if in_style {
                return true;
            }
            let body = head.trim_end_matches('>').trim_end_matches('-');
            let lower = body.to_ascii_lowercase();
            if lower.starts_with("<![endif]") {
                self.close_region();
            } else if lower.starts_with("[if") && !lower.ends_with("<!") {
                // Downlevel-hidden (`<!--[if mso]>…<![endif]-->`): a comment here.
                let expr = body
                    .get(3..)
                    .and_then(|e| e.split(']').next())
                    .unwrap_or("")
                    .to_string();
                self.hidden_conditional(&expr);
            } else if lower.starts_with("[if") && lower.ends_with("<!") {
                // Downlevel-revealed: `<!--[if !mso]><!-->` … `<!--<![endif]-->`, shown by
                // every client that treats it as a comment.
                let expr = body
                    .get(3..)
                    .and_then(|e| e.split(']').next())
                    .unwrap_or("")
                    .to_string();
                self.open_region(&expr);
            }
            return true;
        }
        // `<![if …]>` / `<![endif]>` (downlevel-revealed), `<!DOCTYPE …>`, `<![CDATA[…]]>`.
        if in_style {
            return false;
        }
        let mut p = look.clone();
        if starts_ci(&p, "[if") {
            p.nth(2);
            if let Some(expr) = read_expr(&mut p) {
                *chars = p;
                if self.client == Client::Outlook && !eval_mso(&expr) {
                    skip_to_endif(chars);
                    self.hidden_conditional(&expr);
                } else {
                    self.open_region(&expr);
                }
                return true;
            }
        }
        if starts_ci(&look, "[endif]") {
            self.close_region();
        }
        for c in chars.by_ref() {
            if c == '>' {
                break;
            }
        }
        true
    }

    fn tag(&mut self, tag: &Tag, skip: &mut Option<String>, capture: &mut Option<String>) {
        let name = tag.name.as_str();
        if !tag.closing && SKIPPED.contains(&name) {
            if name == "object" && !self.collecting {
                let m = self.hide_mark("an embedded object (<object>)".into());
                self.out.empty_mark(m);
            }
            if !tag.self_closing {
                *skip = Some(tag.name.clone());
                if name == "style" {
                    *capture = Some(String::new());
                }
            }
            return;
        }
        if name == "link" {
            self.link(tag);
        }
        if self.collecting {
            return;
        }
        if tag.closing {
            self.close(name);
        } else if let Some((_, what)) = EMPTY_NOT_INERT.iter().find(|(n, _)| *n == name) {
            let m = self.hide_mark((*what).to_string());
            self.out.empty_mark(m);
        } else if !VOID.contains(&name) {
            if matches!(name, "xmp" | "listing" | "plaintext") {
                // Its markup is shown as text, which this reader does not see: marked even
                // when it holds no text here.
                let m = self.hide_mark(format!("an <{name}> element (shows markup as text)"));
                self.out.empty_mark(m);
            }
            self.open(tag);
        }
        match name {
            "br" => self.out.break_line(),
            "td" | "th" if !tag.closing => self.out.cell(),
            "td" | "th" => {}
            "pre" => {
                self.out.newline();
                if tag.closing {
                    self.out.pre = self.out.pre.saturating_sub(1);
                } else if !tag.self_closing {
                    self.out.pre = self.out.pre.saturating_add(1);
                }
            }
            _ if BLOCKS.contains(&name) => self.out.newline(),
            _ => {}
        }
    }

    fn open(&mut self, tag: &Tag) {
        let name = tag.name.as_str();
        let parent = self.top();
        let (pctx, pbits, phiding, pcond, pcontrast) = (
            parent.ctx,
            parent.bits,
            parent.hiding,
            parent.cond,
            parent.contrast,
        );
        let mut own: Option<String> = NOT_INERT
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, w)| (*w).to_string());
        if tag.vml {
            own = Some(format!("a VML shape (<v:{name}>)"));
        }
        if tag.truncated {
            own.get_or_insert_with(|| format!("an over-long attribute on <{name}>"));
        }
        let attrs = Attrs {
            style: tag.attr("style"),
            class: tag.attr("class"),
            id: tag.attr("id"),
            bgcolor: tag.attr("bgcolor"),
            color: if name == "font" {
                tag.attr("color")
            } else {
                None
            },
            face: if name == "font" {
                tag.attr("face")
            } else {
                None
            },
            dir: tag.attr("dir"),
            hidden: tag.attr("hidden").is_some(),
            link: name == "a" && tag.attr("href").is_some(),
            size: if name == "font" {
                tag.attr("size")
            } else {
                None
            },
            text: if name == "body" {
                tag.attr("text")
            } else {
                None
            },
            link_colour: if name == "body" {
                tag.attr("link")
            } else {
                None
            },
            vlink_colour: if name == "body" {
                tag.attr("vlink")
            } else {
                None
            },
        };
        let classes: Vec<String> = attrs
            .class
            .map(|c| c.split_whitespace().take(32).map(str::to_string).collect())
            .unwrap_or_default();
        let plain = attrs.style.is_none()
            && attrs.class.is_none()
            && attrs.id.is_none()
            && attrs.bgcolor.is_none()
            && attrs.color.is_none()
            && attrs.face.is_none()
            && attrs.dir.is_none()
            && !attrs.hidden
            && !attrs.link
            && attrs.text.is_none()
            && attrs.link_colour.is_none()
            && attrs.vlink_colour.is_none()
            && attrs.size.is_none()
            && !matches!(name, "small" | "sub" | "sup" | "big")
            && self.sheet.is_empty();
        let (judged, ctx, bits) = if plain {
            (css::Judged::default(), pctx, pbits)
        } else {
            let (j, ctx) = css::judge(name, &attrs, &pctx, &self.sheet, &pbits, &classes);
            let bits = if self.sheet.has_ancestor_rules() {
                self.sheet.ancestor_bits(&pbits, name, attrs.id, &classes)
            } else {
                pbits
            };
            (j, ctx, bits)
        };
        let hiding = match phiding {
            Some(h) => Some(h),
            None => own.or(judged.hiding).map(|w| self.hide_mark(w)),
        };
        // An element that sets nothing has its parent's colours, so its parent's contrast.
        let contrast = if plain {
            pcontrast
        } else {
            judged.contrast.map(|w| self.hide_mark(w))
        };
        self.push_elem(Elem {
            name: tag.name.clone(),
            region: false,
            hiding,
            contrast,
            cond: pcond,
            ctx,
            bits,
        });
    }
}

fn starts_ci(chars: &Chars<'_>, s: &str) -> bool {
    let mut p = chars.clone();
    s.chars()
        .all(|w| p.next().is_some_and(|c| c.eq_ignore_ascii_case(&w)))
}

/// After `[if`: the expression up to `]>`, consuming it. None when there is none nearby.
fn read_expr(chars: &mut Chars<'_>) -> Option<String> {
    let mut expr = String::new();
    let mut p = chars.clone();
    while let Some(c) = p.next() {
        if c == ']' && p.peek() == Some(&'>') {
            p.next();
            *chars = p;
            return Some(expr);
        }
        if expr.len() >= MAX_EXPR || c == '<' {
            return None;
        }
        expr.push(c);
    }
    None
}

/// Skip a conditional block Outlook does not show: to its `<![endif]` (nested ones counted)
/// and the `>` after it.
fn skip_to_endif(chars: &mut Chars<'_>) {
    let mut depth = 1usize;
    while let Some(c) = chars.next() {
        if c != '[' {
            continue;
        }
        if starts_ci(chars, "if") {
            let mut p = chars.clone();
            p.next();
            p.next();
            if p.peek().is_some_and(|c| c.is_whitespace()) {
                depth += 1;
            }
        } else if starts_ci(chars, "endif]") {
            depth -= 1;
            if depth == 0 {
                for c in chars.by_ref() {
                    if c == '>' {
                        return;
                    }
                }
                return;
            }
        }
    }
}

/// Word's evaluation of a conditional expression: `mso` (any version comparison: the version
/// is not known, so every one counts as shown), `!`, `|`, `&`, parentheses; `false` is false,
/// `IE` is false, other features (`supportLists`, `vml`) are Word's and true.
fn eval_mso(expr: &str) -> bool {
    let toks: Vec<String> = {
        let mut v = Vec::new();
        let mut cur = String::new();
        for c in expr.chars() {
            if matches!(c, '!' | '|' | '&' | '(' | ')') {
                if !cur.trim().is_empty() {
                    v.push(cur.trim().to_ascii_lowercase());
                }
                cur.clear();
                v.push(c.to_string());
            } else {
                cur.push(c);
            }
        }
        if !cur.trim().is_empty() {
            v.push(cur.trim().to_ascii_lowercase());
        }
        v
    };
    let mut pos = 0usize;
    eval_or(&toks, &mut pos, 0)
}

fn eval_or(t: &[String], pos: &mut usize, depth: usize) -> bool {
    let mut v = eval_and(t, pos, depth);
    while t.get(*pos).is_some_and(|s| s == "|") {
        *pos += 1;
        v |= eval_and(t, pos, depth);
    }
    v
}

fn eval_and(t: &[String], pos: &mut usize, depth: usize) -> bool {
    let mut v = eval_not(t, pos, depth);
    while t.get(*pos).is_some_and(|s| s == "&") {
        *pos += 1;
        v &= eval_not(t, pos, depth);
    }
    v
}

fn eval_not(t: &[String], pos: &mut usize, depth: usize) -> bool {
    match t.get(*pos).map(String::as_str) {
        Some("!") => {
            *pos += 1;
            !eval_not(t, pos, depth)
        }
        Some("(") if depth < 16 => {
            *pos += 1;
            let v = eval_or(t, pos, depth + 1);
            if t.get(*pos).is_some_and(|s| s == ")") {
                *pos += 1;
            }
            v
        }
        Some(term) => {
            *pos += 1;
            let words: Vec<&str> = term.split_whitespace().collect();
            let feature = words
                .iter()
                .find(|w| !matches!(**w, "gt" | "gte" | "lt" | "lte") && w.parse::<f32>().is_err())
                .copied()
                .unwrap_or("");
            !matches!(feature, "false" | "ie" | "!mso")
        }
        None => true,
    }
}

struct Tag {
    name: String,
    closing: bool,
    self_closing: bool,
    /// A VML element (`v:…`): Outlook draws its text as a shape.
    vml: bool,
    attrs: Vec<(String, String)>,
    truncated: bool,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Read a tag after `<`. Returns None (consuming nothing) when what follows is not a tag name.
fn read_tag(chars: &mut Chars<'_>) -> Option<Tag> {
    let mut look = chars.clone();
    let mut closing = false;
    if look.peek() == Some(&'/') {
        closing = true;
        look.next();
    }
    let first = *look.peek()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let mut name = String::new();
    while let Some(&c) = look.peek() {
        if c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_' {
            if name.len() < MAX_NAME {
                name.push(c.to_ascii_lowercase());
            }
            look.next();
        } else {
            break;
        }
    }
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut truncated = false;
    let mut self_closing = false;
    loop {
        while look.peek().is_some_and(|c| c.is_whitespace()) {
            look.next();
        }
        match look.peek() {
            None => break,
            Some('>') => {
                look.next();
                break;
            }
            Some('/') => {
                look.next();
                if look.peek() == Some(&'>') {
                    look.next();
                    self_closing = true;
                    break;
                }
                continue;
            }
            _ => {}
        }
        let mut aname = String::new();
        while let Some(&c) = look.peek() {
            if c.is_whitespace() || c == '>' || c == '=' || (c == '/' && !aname.is_empty()) {
                break;
            }
            if aname.len() < MAX_NAME {
                aname.push(c.to_ascii_lowercase());
            }
            look.next();
        }
        while look.peek().is_some_and(|c| c.is_whitespace()) {
            look.next();
        }
        let mut value = String::new();
        if look.peek() == Some(&'=') {
            look.next();
            while look.peek().is_some_and(|c| c.is_whitespace()) {
                look.next();
            }
            let quote = match look.peek() {
                Some(&q) if q == '"' || q == '\'' => {
                    look.next();
                    Some(q)
                }
                _ => None,
            };
            let mut raw = String::new();
            while let Some(&c) = look.peek() {
                match quote {
                    Some(q) if c == q => {
                        look.next();
                        break;
                    }
                    None if c.is_whitespace() || c == '>' => break,
                    _ => {}
                }
                if raw.chars().count() < MAX_ATTR_CHARS {
                    raw.push(c);
                } else {
                    truncated = true;
                }
                look.next();
            }
            // Entities in attribute values count (`display&#58;none`).
            let mut vc = raw.chars().peekable();
            while let Some(c) = vc.next() {
                if c == '&' {
                    value.push_str(&read_entity(&mut vc));
                } else {
                    value.push(c);
                }
            }
        }
        if aname.is_empty() {
            // A stray character: skip it.
            look.next();
            continue;
        }
        if attrs.len() < MAX_ATTRS {
            if !attrs.iter().any(|(n, _)| *n == aname) {
                attrs.push((aname, value));
            }
        } else {
            truncated = true;
        }
    }
    *chars = look;
    // Office namespaces (`o:p`) carry no text structure; VML (`v:`) draws shapes.
    let (vml, name) = match name.rsplit_once(':') {
        Some((ns, n)) => (ns == "v", n.to_string()),
        None => (false, name),
    };
    Some(Tag {
        name,
        closing,
        self_closing,
        vml,
        attrs,
        truncated,
    })
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
    use super::{Client, renderings, strip_marks, to_text};

    #[test]
    fn each_client_reads_its_own_branch_and_never_both() {
        let html = "<!--[if mso]><p>Request Id: 12</p><![endif]-->\
                    <!--[if !mso]><!--><p>Request Id: 99</p><!--<![endif]-->\
                    <!--[if false]><p>Request Id: 77</p><![endif]-->\
                    <!-- a real comment: Request Id: 55 -->";
        let t = to_text(html);
        assert_eq!(t, "Request Id: 99\n");
        let r = renderings(html);
        assert_eq!(r.len(), 2);
        let outlook = r
            .iter()
            .find(|r| r.client == Client::Outlook)
            .expect("outlook");
        assert_eq!(strip_marks(&outlook.text), "Request Id: 12\n");
        assert!(
            outlook.findings.iter().any(|f| f.contains("[if mso]")),
            "{:?}",
            outlook.findings
        );
    }

    #[test]
    fn head_conditionals_and_downlevel_revealed_lists_are_inert() {
        let html = "<html><head><!--[if gte mso 9]><xml><o:shapedefaults/></xml><![endif]-->\
                    <!--[if !mso]><style>v\\:* {behavior:url(#default#VML);}</style><![endif]-->\
                    </head><body><p>Safe: InfraSafe</p></body></html>";
        for r in renderings(html) {
            assert_eq!(r.text, "Safe: InfraSafe\n", "{:?}", r.client);
        }
    }
}
