//! Just enough CSS to tell inert markup from markup that can hide, add or reorder text
//! (shared/reference/forwarded-html.md §3, §6). Not a style engine: every rule is judged by
//! what it *could* do, and whatever cannot be evaluated counts as a finding (fail closed).
//!
//! [`Sheet`] holds the rules of the mail's own `<style>` elements; [`judge`] takes one element
//! (tag, attributes, its parent's [`Ctx`]) and says what on it can hide or reorder text, and
//! the context its children inherit (font size, colours, opacity).

use std::collections::HashMap;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// The background behind an element: a colour, or one that cannot be known (an image,
/// a gradient, an unknown name).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bg {
    Known(Rgb),
    Unknown,
}

/// What an element's children inherit.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub font_px: f32,
    pub fg: Rgb,
    pub bg: Bg,
    pub opacity: f32,
    /// Link colours (`<body link= vlink=>`; the UA's blue and purple by default).
    pub link: Rgb,
    pub vlink: Rgb,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx {
            font_px: 16.0,
            fg: Rgb(0, 0, 0),
            bg: Bg::Known(Rgb(255, 255, 255)),
            opacity: 1.0,
            link: Rgb(0, 0, 0xee),
            vlink: Rgb(0x55, 0x1a, 0x8b),
        }
    }
}

/// Smallest font size shown as readable text, in CSS px.
const MIN_FONT_PX: f32 = 6.0;
/// Largest offset (text-indent, negative margin) a genuine forward uses, in px (Word tables use
/// `margin-left:-5.4pt`, list paragraphs `text-indent:-.25in`).
const MAX_OFFSET_PX: f32 = 60.0;
/// Below this WCAG contrast ratio, text counts as the background's colour.
const MIN_CONTRAST: f32 = 1.5;
/// Most rules read from a mail's stylesheets; more is doubt about all of them.
const MAX_RULES: usize = 2000;
/// Most rules looked at for one element.
const MAX_CANDIDATES: usize = 128;

/// Properties that cannot hide, add or reorder text (after a vendor prefix is removed).
const INERT: &[&str] = &[
    "font-family",
    "font-weight",
    "font-style",
    "font-variant",
    "font-variant-caps",
    "font-variant-ligatures",
    "font-variant-numeric",
    "font-kerning",
    "font-stretch",
    "font-synthesis",
    "font-smoothing",
    "osx-font-smoothing",
    "text-rendering",
    "text-decoration",
    "text-decoration-line",
    "text-decoration-color",
    "text-decoration-style",
    "text-decoration-thickness",
    "text-underline",
    "text-underline-offset",
    "text-underline-position",
    "text-align",
    "text-align-last",
    "text-justify",
    "text-autospace",
    "text-shadow",
    "text-size-adjust",
    "text-stroke-width",
    "text-overflow",
    "white-space",
    "word-wrap",
    "word-break",
    "overflow-wrap",
    "hyphens",
    "line-break",
    "nbsp-mode",
    "tab-size",
    "tab-stops",
    "layout-grid-mode",
    "page",
    "page-break-before",
    "page-break-after",
    "page-break-inside",
    "break-before",
    "break-after",
    "break-inside",
    "orphans",
    "widows",
    "border",
    "border-top",
    "border-bottom",
    "border-left",
    "border-right",
    "border-color",
    "border-style",
    "border-width",
    "border-top-color",
    "border-bottom-color",
    "border-left-color",
    "border-right-color",
    "border-top-style",
    "border-bottom-style",
    "border-left-style",
    "border-right-style",
    "border-top-width",
    "border-bottom-width",
    "border-left-width",
    "border-right-width",
    "border-radius",
    "border-collapse",
    "border-spacing",
    "box-shadow",
    "box-sizing",
    "outline",
    "outline-color",
    "outline-style",
    "outline-width",
    "padding",
    "padding-top",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-alt",
    "width",
    "min-width",
    "min-height",
    "table-layout",
    "vertical-align",
    "caret-color",
    "cursor",
    "list-style",
    "list-style-type",
    "list-style-position",
    "list-style-image",
    "tap-highlight-color",
    "user-select",
    "pointer-events",
    "background-image",
    "background-repeat",
    "background-position",
    "background-size",
    "background-attachment",
    "background-clip",
    "background-origin",
    "behavior",
    "size",
    "panose-1",
    "quotes",
    "speak",
    "empty-cells",
    "caption-side",
    "word-spacing",
    "text-decorations-in-effect",
    "font-variant-east-asian",
    "font-variant-position",
    "font-optical-sizing",
    "font-feature-settings",
    "font-language-override",
    "will-change",
    "color-scheme",
    "forced-color-adjust",
    "print-color-adjust",
    "color-adjust",
    "user-modify",
    "text-wrap",
    "box-decoration-break",
    "accent-color",
    "aspect-ratio",
    "object-fit",
    "object-position",
    "resize",
    "appearance",
    "inline-size",
    "min-inline-size",
    "min-block-size",
    "text-emphasis",
    "text-emphasis-color",
    "text-emphasis-style",
    "text-combine",
    "hyphenate-character",
    "line-height-step",
];

/// A rule of the mail's stylesheet.
#[derive(Debug, Clone, Default)]
struct Rule {
    /// The compound the element itself must match.
    last: Compound,
    /// Compounds an ancestor must match (indexes into `Sheet::ancestors`).
    ancestors: Vec<usize>,
    decls: Vec<Decl>,
    /// Set when the rule is a `::before`/`::after` with `content`, or uses something
    /// that cannot be evaluated: matching it is a finding.
    finding: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Compound {
    tag: Option<String>,
    classes: Vec<String>,
    id: Option<String>,
}

impl Compound {
    fn matches(&self, tag: &str, id: Option<&str>, classes: &[String]) -> bool {
        self.tag.as_deref().is_none_or(|t| t == tag)
            && self.id.as_deref().is_none_or(|i| id == Some(i))
            && self
                .classes
                .iter()
                .all(|c| classes.iter().any(|e| e.eq_ignore_ascii_case(c)))
    }
}

#[derive(Debug, Clone)]
pub struct Decl {
    pub prop: String,
    pub value: String,
    pub important: bool,
}

/// The rules of a mail's `<style>` elements, indexed by what their last compound names.
#[derive(Debug, Default)]
pub struct Sheet {
    rules: Vec<Rule>,
    by_class: HashMap<String, Vec<usize>>,
    by_tag: HashMap<String, Vec<usize>>,
    by_id: HashMap<String, Vec<usize>>,
    universal: Vec<usize>,
    ancestors: Vec<Compound>,
    /// Families declared by `@font-face` with a `src`: a web font can draw any character as
    /// any glyph.
    web_fonts: Vec<String>,
    /// Something in the stylesheet applies to everything and cannot be evaluated.
    pub global: Option<String>,
}

/// Ancestor compounds tracked per element (a bit set); more are treated as always matching.
const MAX_ANCESTOR_COMPOUNDS: usize = 256;
pub type AncestorBits = [u64; MAX_ANCESTOR_COMPOUNDS / 64];

fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(rest.get(..i).unwrap_or(""));
        rest = match rest.get(i + 2..).and_then(|r| r.find("*/").map(|j| (r, j))) {
            Some((r, j)) => r.get(j + 2..).unwrap_or(""),
            None => "",
        };
        out.push(' ');
    }
    out.push_str(rest);
    out
}

/// Split `a:b; c:d` into declarations, honouring quotes and parentheses.
pub fn parse_decls(style: &str) -> Vec<Decl> {
    let style = strip_comments(style);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let flush = |cur: &mut String, out: &mut Vec<Decl>| {
        if let Some((p, v)) = cur.split_once(':') {
            let prop = p.trim().to_ascii_lowercase();
            let mut value = v.trim().to_ascii_lowercase();
            let important = value.ends_with("!important");
            if important {
                value = value.trim_end_matches("!important").trim().to_string();
            }
            if !prop.is_empty() {
                out.push(Decl {
                    prop,
                    value,
                    important,
                });
            }
        } else if !cur.trim().is_empty() {
            out.push(Decl {
                prop: cur.trim().to_ascii_lowercase(),
                value: String::new(),
                important: false,
            });
        }
        cur.clear();
    };
    for c in style.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ';' if depth == 0 => {
                    flush(&mut cur, &mut out);
                    continue;
                }
                _ => {}
            },
        }
        cur.push(c);
    }
    flush(&mut cur, &mut out);
    out
}

/// A number and its unit: `-5.4pt` → (-5.4, "pt").
fn number(v: &str) -> Option<(f32, &str)> {
    let v = v.trim();
    let end = v
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || ((*c == '-' || *c == '+') && *i == 0)))
        .map(|(i, _)| i)
        .unwrap_or(v.len());
    let n: f32 = v.get(..end)?.parse().ok()?;
    n.is_finite()
        .then_some((n, v.get(end..).unwrap_or("").trim()))
}

/// A length in px; `%` and `em` relative to `font_px`. None when it is no length.
fn length_px(v: &str, font_px: f32) -> Option<f32> {
    let (n, unit) = number(v)?;
    let k = match unit {
        "" if n == 0.0 => 0.0,
        "px" => 1.0,
        "pt" => 4.0 / 3.0,
        "pc" => 16.0,
        "in" => 96.0,
        "cm" => 37.8,
        "mm" => 3.78,
        "q" => 0.945,
        "em" => font_px,
        "rem" => 16.0,
        "ex" | "ch" => font_px / 2.0,
        "%" => font_px / 100.0,
        "vw" | "vh" | "vmin" | "vmax" => 8.0,
        _ => return None,
    };
    Some(n * k)
}

fn font_size_px(v: &str, parent: f32) -> Option<f32> {
    let kw = match v {
        "xx-small" => Some(9.0),
        "x-small" => Some(10.0),
        "small" => Some(13.0),
        "medium" => Some(16.0),
        "large" => Some(18.0),
        "x-large" => Some(24.0),
        "xx-large" => Some(32.0),
        "xxx-large" => Some(48.0),
        "smaller" => Some(parent / 1.2),
        "larger" => Some(parent * 1.2),
        "inherit" | "initial" | "unset" | "revert" => Some(parent),
        _ => None,
    };
    kw.or_else(|| length_px(v, parent))
}

fn hex(s: &str) -> Option<Rgb> {
    let d: Vec<u8> = s
        .chars()
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    match d.as_slice() {
        [r, g, b] | [r, g, b, _] => Some(Rgb(r * 17, g * 17, b * 17)),
        [r1, r2, g1, g2, b1, b2] | [r1, r2, g1, g2, b1, b2, _, _] => {
            Some(Rgb(r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2))
        }
        _ => None,
    }
}

/// A parsed colour value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Colour {
    Rgb(Rgb, f32),
    /// `inherit`, `currentcolor`, …: no change.
    Same,
    Unknown,
}

fn colour(v: &str) -> Colour {
    let v = v.trim();
    if let Some(h) = v.strip_prefix('#') {
        let alpha = match h.len() {
            4 => h
                .get(3..4)
                .and_then(|a| u8::from_str_radix(a, 16).ok())
                .map(|a| a as f32 / 15.0),
            8 => h
                .get(6..8)
                .and_then(|a| u8::from_str_radix(a, 16).ok())
                .map(|a| a as f32 / 255.0),
            _ => Some(1.0),
        };
        return match (hex(h), alpha) {
            (Some(c), Some(a)) => Colour::Rgb(c, a),
            _ => Colour::Unknown,
        };
    }
    if let Some(args) = v
        .strip_prefix("rgba(")
        .or_else(|| v.strip_prefix("rgb("))
        .and_then(|r| r.strip_suffix(')'))
    {
        let parts: Vec<&str> = args
            .split([',', ' ', '/'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let chan = |p: &str| -> Option<u8> {
            if let Some(pc) = p.strip_suffix('%') {
                let n: f32 = pc.parse().ok()?;
                return Some((n.clamp(0.0, 100.0) * 2.55) as u8);
            }
            let n: f32 = p.parse().ok()?;
            Some(n.clamp(0.0, 255.0) as u8)
        };
        let alpha = |p: &str| -> Option<f32> {
            if let Some(pc) = p.strip_suffix('%') {
                return pc.parse::<f32>().ok().map(|n| n / 100.0);
            }
            p.parse().ok()
        };
        return match parts.as_slice() {
            [r, g, b] => match (chan(r), chan(g), chan(b)) {
                (Some(r), Some(g), Some(b)) => Colour::Rgb(Rgb(r, g, b), 1.0),
                _ => Colour::Unknown,
            },
            [r, g, b, a] => match (chan(r), chan(g), chan(b), alpha(a)) {
                (Some(r), Some(g), Some(b), Some(a)) => Colour::Rgb(Rgb(r, g, b), a),
                _ => Colour::Unknown,
            },
            _ => Colour::Unknown,
        };
    }
    let named = match v {
        "inherit" | "initial" | "unset" | "revert" | "currentcolor" | "auto" | "" => {
            return Colour::Same;
        }
        "transparent" => return Colour::Rgb(Rgb(0, 0, 0), 0.0),
        "black"
        | "windowtext"
        | "canvastext"
        | "buttontext"
        | "captiontext"
        | "infotext"
        | "menutext"
        | "-webkit-text"
        | "text"
        | "-apple-system-label"
        | "-moz-default-color"
        | "fieldtext" => "000000",
        "-webkit-link" | "-moz-hyperlinktext" => "0000ee",
        "white" | "window" | "canvas" | "buttonface" | "menu" => "ffffff",
        "red" => "ff0000",
        "maroon" => "800000",
        "darkred" => "8b0000",
        "green" => "008000",
        "darkgreen" => "006400",
        "lime" => "00ff00",
        "blue" => "0000ff",
        "navy" => "000080",
        "darkblue" => "00008b",
        "yellow" => "ffff00",
        "olive" => "808000",
        "purple" => "800080",
        "fuchsia" | "magenta" => "ff00ff",
        "aqua" | "cyan" => "00ffff",
        "teal" => "008080",
        "gray" | "grey" => "808080",
        "darkgray" | "darkgrey" => "a9a9a9",
        "dimgray" | "dimgrey" => "696969",
        "silver" => "c0c0c0",
        "orange" => "ffa500",
        "brown" => "a52a2a",
        "linktext" => "0000ee",
        "visitedtext" => "551a8b",
        _ => return Colour::Unknown,
    };
    hex(named).map_or(Colour::Unknown, |c| Colour::Rgb(c, 1.0))
}

fn luminance(c: Rgb) -> f32 {
    let lin = |v: u8| {
        let s = v as f32 / 255.0;
        if s <= 0.04045 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2)
}

fn contrast(a: Rgb, b: Rgb) -> f32 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// The background a `background` shorthand or `background-color` sets. None: no change.
fn background(v: &str) -> Option<Bg> {
    if v.contains("url(") || v.contains("gradient") || v.contains("image(") {
        return Some(Bg::Unknown);
    }
    let mut found = None;
    for tok in split_top(v) {
        match colour(&tok) {
            Colour::Rgb(c, a) if a >= 0.5 => found = Some(Bg::Known(c)),
            Colour::Rgb(..) | Colour::Same => {}
            Colour::Unknown => {
                let known_word = matches!(
                    tok.as_str(),
                    "none"
                        | "repeat"
                        | "no-repeat"
                        | "repeat-x"
                        | "repeat-y"
                        | "scroll"
                        | "fixed"
                        | "local"
                        | "top"
                        | "bottom"
                        | "left"
                        | "right"
                        | "center"
                );
                if !known_word && number(&tok).is_none() {
                    return Some(Bg::Unknown);
                }
            }
        }
    }
    found
}

/// Split a value on spaces outside parentheses.
fn split_top(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in v.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ' ' | ',' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn base_name(prop: &str) -> &str {
    for p in ["-webkit-", "-moz-", "-ms-", "-o-"] {
        if let Some(b) = prop.strip_prefix(p) {
            return b;
        }
    }
    prop
}

fn families(v: &str) -> Vec<String> {
    v.split(',')
        .map(|f| {
            f.trim()
                .trim_matches(['"', '\''])
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|f| !f.is_empty())
        .collect()
}

/// An element's attributes the judge reads.
#[derive(Debug, Default)]
pub struct Attrs<'a> {
    pub style: Option<&'a str>,
    pub class: Option<&'a str>,
    pub id: Option<&'a str>,
    pub bgcolor: Option<&'a str>,
    pub color: Option<&'a str>,
    pub face: Option<&'a str>,
    pub dir: Option<&'a str>,
    pub hidden: bool,
    /// `<a href>`: its text takes the link colour.
    pub link: bool,
    /// `<body text= link= vlink=>`.
    pub text: Option<&'a str>,
    /// `<font size=>`.
    pub size: Option<&'a str>,
    pub link_colour: Option<&'a str>,
    pub vlink_colour: Option<&'a str>,
}

/// What [`judge`] found on one element.
#[derive(Debug, Default)]
pub struct Judged {
    /// Markup that can hide, add or reorder text: holds for the whole subtree.
    pub hiding: Option<String>,
    /// Text of this element would be the background's colour (children may set their own).
    pub contrast: Option<String>,
}

impl Sheet {
    /// Read the text of `<style>` elements.
    pub fn parse(texts: &[String]) -> Sheet {
        let mut sheet = Sheet::default();
        for t in texts {
            let t = strip_comments(t).replace("<!--", " ").replace("-->", " ");
            sheet.add_block(&t, 0);
        }
        sheet
    }

    fn doubt(&mut self, why: &str) {
        if self.global.is_none() {
            self.global = Some(why.to_string());
        }
    }

    fn add_block(&mut self, css: &str, depth: usize) {
        let mut rest = css;
        loop {
            let Some(open) = rest.find('{') else {
                if rest.contains('}') && depth == 0 {
                    // Stray braces: the rules cannot be read as a browser would.
                }
                if rest.trim().starts_with("@import") || rest.contains("@import") {
                    self.doubt("an @import stylesheet (cannot be evaluated)");
                }
                return;
            };
            let prelude = rest.get(..open).unwrap_or("").trim().to_string();
            if prelude.contains("@import") {
                self.doubt("an @import stylesheet (cannot be evaluated)");
            }
            // Find the matching close brace.
            let body_start = open + 1;
            let mut level = 1usize;
            let mut end = None;
            for (i, c) in rest.get(body_start..).unwrap_or("").char_indices() {
                match c {
                    '{' => level += 1,
                    '}' => {
                        level -= 1;
                        if level == 0 {
                            end = Some(body_start + i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let end = end.unwrap_or(rest.len());
            let body = rest.get(body_start..end).unwrap_or("");
            let prelude = prelude
                .rsplit_once(';')
                .map(|(_, p)| p.trim().to_string())
                .unwrap_or(prelude);
            let lower = prelude.to_ascii_lowercase();
            if lower.starts_with("@media")
                || lower.starts_with("@supports")
                || lower.starts_with("@document")
                || lower.starts_with("@layer")
                || lower.starts_with("@container")
            {
                if depth < 4 {
                    self.add_block(body, depth + 1);
                } else {
                    self.doubt("style rules nested too deep");
                }
            } else if lower.starts_with("@font-face") {
                let decls = parse_decls(body);
                if decls.iter().any(|d| d.prop == "src") {
                    for d in decls.iter().filter(|d| d.prop == "font-family") {
                        self.web_fonts.extend(families(&d.value));
                    }
                }
            } else if lower.starts_with('@') {
                // @page, @list, @keyframes, …: no text.
            } else if self.rules.len() >= MAX_RULES {
                self.doubt("more style rules than can be evaluated");
            } else {
                let decls = parse_decls(body);
                for sel in lower.split(',') {
                    self.add_rule(sel.trim(), &decls);
                }
            }
            rest = rest.get(end + 1..).unwrap_or("");
            if rest.is_empty() {
                return;
            }
        }
    }

    fn add_rule(&mut self, sel: &str, decls: &[Decl]) {
        if sel.is_empty() {
            return;
        }
        if self.rules.len() >= MAX_RULES {
            self.doubt("more style rules than can be evaluated");
            return;
        }
        let mut finding = None;
        // Word's own `v\:*`, `o\:*` selectors name VML elements: no text.
        let sel = sel.replace("\\:", "|");
        if sel.contains('\\') {
            finding = Some(format!(
                "a style rule \"{sel}\" with escapes (cannot be evaluated)"
            ));
        }
        let compounds: Vec<&str> = sel
            .split([' ', '>', '+', '~'])
            .filter(|c| !c.is_empty())
            .collect();
        let Some((last, before)) = compounds.split_last() else {
            return;
        };
        let (last_c, pseudo) = compound(last);
        if pseudo.contains("before") || pseudo.contains("after") {
            if decls.iter().any(|d| {
                d.prop == "content"
                    && !matches!(d.value.as_str(), "none" | "normal" | "\"\"" | "''")
            }) {
                finding = Some(format!("a \"{sel}\" rule that adds text (content)"));
            } else {
                return;
            }
        } else if pseudo.contains("selection")
            || pseudo.contains("placeholder")
            || pseudo.contains("marker")
            || pseudo.contains("hover")
            || pseudo.contains("focus")
            || pseudo.contains("active")
        {
            return;
        }
        if last_c.tag.as_deref().is_some_and(|t| t.contains('|')) {
            return;
        }
        let mut ancestors = Vec::new();
        for b in before {
            let (c, _) = compound(b);
            if c == Compound::default() {
                continue;
            }
            let idx = match self.ancestors.iter().position(|a| *a == c) {
                Some(i) => i,
                None if self.ancestors.len() < MAX_ANCESTOR_COMPOUNDS => {
                    self.ancestors.push(c);
                    self.ancestors.len() - 1
                }
                None => continue, // over-approximate: treated as matching
            };
            ancestors.push(idx);
        }
        let idx = self.rules.len();
        let key_class = last_c.classes.first().cloned();
        let key_id = last_c.id.clone();
        let key_tag = last_c.tag.clone();
        self.rules.push(Rule {
            last: last_c,
            ancestors,
            decls: decls.to_vec(),
            finding,
        });
        if let Some(c) = key_class {
            self.by_class.entry(c).or_default().push(idx);
        } else if let Some(i) = key_id {
            self.by_id.entry(i).or_default().push(idx);
        } else if let Some(t) = key_tag {
            self.by_tag.entry(t).or_default().push(idx);
        } else {
            self.universal.push(idx);
        }
    }

    /// The ancestor compounds this element matches, added to its parent's.
    pub fn ancestor_bits(
        &self,
        parent: &AncestorBits,
        tag: &str,
        id: Option<&str>,
        classes: &[String],
    ) -> AncestorBits {
        let mut bits = *parent;
        for (i, a) in self.ancestors.iter().enumerate() {
            if a.matches(tag, id, classes)
                && let Some(w) = bits.get_mut(i / 64)
            {
                *w |= 1u64 << (i % 64);
            }
        }
        bits
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn has_ancestor_rules(&self) -> bool {
        !self.ancestors.is_empty()
    }

    /// The rules that apply to an element; None when more could apply than are evaluated
    /// (a hostile stylesheet must not make reading quadratic).
    fn matching(
        &self,
        tag: &str,
        id: Option<&str>,
        classes: &[String],
        parent_bits: &AncestorBits,
    ) -> Option<Vec<usize>> {
        let mut cands: Vec<usize> = self.universal.clone();
        if let Some(v) = self.by_tag.get(tag) {
            cands.extend(v);
        }
        if let Some(v) = id.and_then(|i| self.by_id.get(&i.to_ascii_lowercase())) {
            cands.extend(v);
        }
        for c in classes {
            if let Some(v) = self.by_class.get(&c.to_ascii_lowercase()) {
                cands.extend(v);
            }
        }
        if cands.len() > MAX_CANDIDATES {
            return None;
        }
        cands.sort_unstable();
        cands.dedup();
        let found = cands
            .into_iter()
            .filter(|i| {
                self.rules.get(*i).is_some_and(|r| {
                    r.last
                        .matches(tag, id.map(str::to_ascii_lowercase).as_deref(), classes)
                        && r.ancestors.iter().all(|a| {
                            parent_bits
                                .get(a / 64)
                                .is_some_and(|w| w & (1u64 << (a % 64)) != 0)
                        })
                })
            })
            .collect();
        Some(found)
    }
}

/// `tag.class#id:pseudo` → the compound and the pseudo part (lower case).
fn compound(s: &str) -> (Compound, String) {
    let mut c = Compound::default();
    let (main, pseudo) = match s.find(':') {
        Some(i) => (
            s.get(..i).unwrap_or(""),
            s.get(i..).unwrap_or("").to_string(),
        ),
        None => (s, String::new()),
    };
    let main = main.split('[').next().unwrap_or("");
    let mut cur = String::new();
    let mut kind = 't';
    let push = |kind: char, cur: &mut String, c: &mut Compound| {
        if !cur.is_empty() {
            let v = std::mem::take(cur).to_ascii_lowercase();
            match kind {
                '.' => c.classes.push(v),
                '#' => c.id = Some(v),
                _ if v != "*" => c.tag = Some(v),
                _ => {}
            }
        }
    };
    for ch in main.chars() {
        if ch == '.' || ch == '#' {
            push(kind, &mut cur, &mut c);
            kind = ch;
        } else {
            cur.push(ch);
        }
    }
    push(kind, &mut cur, &mut c);
    (c, pseudo)
}

/// Judge one element: what on it can hide, add or reorder text, and the context its
/// children inherit.
pub fn judge(
    tag: &str,
    attrs: &Attrs<'_>,
    parent: &Ctx,
    sheet: &Sheet,
    parent_bits: &AncestorBits,
    classes: &[String],
) -> (Judged, Ctx) {
    let mut j = Judged::default();
    let mut ctx = *parent;
    let hide = |j: &mut Judged, what: String| {
        if j.hiding.is_none() {
            j.hiding = Some(what);
        }
    };
    if attrs.hidden {
        hide(&mut j, format!("the hidden attribute on <{tag}>"));
    }
    if let Some(d) = attrs.dir {
        let d = d.trim().to_ascii_lowercase();
        if d != "ltr" && d != "auto" {
            hide(&mut j, format!("dir=\"{d}\" on <{tag}> (reorders text)"));
        }
    }
    // Declarations in cascade order: rules, then inline; !important ones last.
    let mut decls: Vec<(Decl, String)> = Vec::new();
    let matching = sheet.matching(tag, attrs.id, classes, parent_bits);
    if matching.is_none() {
        hide(
            &mut j,
            format!("more style rules for <{tag}> than can be evaluated"),
        );
    }
    for i in matching.unwrap_or_default() {
        let Some(r) = sheet.rules.get(i) else {
            continue;
        };
        let origin = format!("<{tag}> through a rule of the mail's <style>");
        if let Some(f) = &r.finding {
            hide(&mut j, format!("{f} on <{tag}>"));
        }
        decls.extend(r.decls.iter().cloned().map(|d| (d, origin.clone())));
    }
    if let Some(s) = attrs.style {
        if s.contains('\\') {
            hide(
                &mut j,
                format!("a style with escapes on <{tag}> (cannot be evaluated)"),
            );
        }
        decls.extend(parse_decls(s).into_iter().map(|d| (d, format!("<{tag}>"))));
    }
    let (normal, important): (Vec<_>, Vec<_>) = decls.into_iter().partition(|(d, _)| !d.important);
    let mut fg_declared = false;
    let body_colour = |v: Option<&str>| match v.map(|c| colour(&c.trim().to_ascii_lowercase())) {
        Some(Colour::Rgb(c, a)) if a >= 0.5 => Ok(Some(c)),
        Some(Colour::Same) | None => Ok(None),
        Some(_) => Err(()),
    };
    for (v, slot) in [
        (attrs.text, &mut ctx.fg),
        (attrs.link_colour, &mut ctx.link),
        (attrs.vlink_colour, &mut ctx.vlink),
    ] {
        match body_colour(v) {
            Ok(Some(c)) => {
                *slot = c;
                fg_declared = true;
            }
            Ok(None) => {}
            Err(()) => hide(
                &mut j,
                format!("a text or link colour on <{tag}> that cannot be evaluated"),
            ),
        }
    }
    if attrs.link {
        ctx.fg = ctx.link;
    }
    // The UA's own sizes: `<small>`, `<sub>`, `<sup>` are `smaller` (nested ones shrink),
    // `<big>` `larger`, `<font size=1..7>` absolute.
    match tag {
        "small" | "sub" | "sup" => ctx.font_px = parent.font_px / 1.2,
        "big" => ctx.font_px = parent.font_px * 1.2,
        _ => {}
    }
    if let Some(size) = attrs.size {
        let size = size.trim();
        let base = 3i32;
        let n = if let Some(rel) = size.strip_prefix('+') {
            rel.parse::<i32>().ok().map(|r| base + r)
        } else if let Some(rel) = size.strip_prefix('-') {
            rel.parse::<i32>().ok().map(|r| base - r)
        } else {
            size.parse::<i32>().ok()
        };
        match n {
            Some(n) => {
                ctx.font_px = match n.clamp(1, 7) {
                    1 => 10.0,
                    2 => 13.0,
                    3 => 16.0,
                    4 => 18.0,
                    5 => 24.0,
                    6 => 32.0,
                    _ => 48.0,
                }
            }
            None => hide(
                &mut j,
                format!("size=\"{size}\" on <{tag}> (cannot be evaluated)"),
            ),
        }
    }
    if let Some(b) = attrs.bgcolor.and_then(background) {
        ctx.bg = match b {
            Bg::Known(c) => Bg::Known(c),
            Bg::Unknown => Bg::Unknown,
        };
    }
    if let Some(c) = attrs.color {
        match colour(&c.trim().to_ascii_lowercase()) {
            Colour::Rgb(c, a) if a >= 0.5 => {
                ctx.fg = c;
                fg_declared = true;
            }
            Colour::Same => {}
            _ => hide(
                &mut j,
                format!("color=\"{c}\" on <{tag}> (cannot be evaluated)"),
            ),
        }
    }
    if let Some(face) = attrs.face {
        let fams = families(face);
        if let Some(f) = fams.iter().find(|f| sheet.web_fonts.contains(f)) {
            hide(
                &mut j,
                format!("the web font \"{f}\" on <{tag}> (can draw any character as another)"),
            );
        }
    }
    let mut overflow_hidden = false;
    let mut small_box = false;
    let mut positioned = false;
    let mut offsets = false;
    for (d, origin) in normal.iter().chain(important.iter()) {
        let v = d.value.as_str();
        let what = || format!("{}:{} on {origin}", d.prop, v);
        let prop = d.prop.as_str();
        if prop.starts_with("mso-") {
            if prop == "mso-hide" && v != "none" {
                hide(&mut j, what());
            }
            continue;
        }
        let base = base_name(prop);
        match base {
            "display" if v == "none" => hide(&mut j, what()),
            "display" => {}
            "visibility" if v != "visible" && v != "inherit" && v != "initial" && v != "unset" => {
                hide(&mut j, what())
            }
            "visibility" => {}
            "font-size" => match font_size_px(v, parent.font_px) {
                Some(px) => ctx.font_px = px,
                None => hide(&mut j, format!("{} (cannot be evaluated)", what())),
            },
            "font" => {
                let mut size = None;
                for tok in split_top(v) {
                    let first = tok.split('/').next().unwrap_or("");
                    if let Some(px) = font_size_px(first, parent.font_px)
                        && (first
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_digit() || c == '.')
                            || first.ends_with("small")
                            || first.ends_with("large")
                            || first == "medium")
                    {
                        size = Some(px);
                        break;
                    }
                }
                if let Some(px) = size {
                    ctx.font_px = px;
                }
                let fams = families(v);
                if let Some(f) = sheet
                    .web_fonts
                    .iter()
                    .find(|w| fams.iter().any(|f| f.contains(w.as_str())))
                {
                    hide(
                        &mut j,
                        format!(
                            "the web font \"{f}\" on {origin} (can draw any character as another)"
                        ),
                    );
                }
            }
            "font-family" => {
                let fams = families(v);
                if let Some(f) = fams.iter().find(|f| sheet.web_fonts.contains(f)) {
                    hide(
                        &mut j,
                        format!(
                            "the web font \"{f}\" on {origin} (can draw any character as another)"
                        ),
                    );
                }
            }
            "color" | "text-fill-color" => match colour(v) {
                Colour::Rgb(c, a) if a >= 0.5 => {
                    ctx.fg = c;
                    fg_declared = true;
                }
                Colour::Rgb(..) => hide(&mut j, format!("{} (transparent text)", what())),
                Colour::Same => {}
                Colour::Unknown => hide(
                    &mut j,
                    format!("{} (a colour that cannot be evaluated)", what()),
                ),
            },
            "background" | "background-color" => {
                if let Some(b) = background(v) {
                    ctx.bg = b;
                }
            }
            "opacity" => match number(v) {
                Some((n, unit)) => {
                    let n = if unit == "%" { n / 100.0 } else { n };
                    ctx.opacity *= n.clamp(0.0, 1.0);
                }
                None => hide(&mut j, what()),
            },
            "position" => {
                if v == "absolute" || v == "fixed" {
                    hide(&mut j, format!("{} (moves text away)", what()));
                } else if v == "relative" || v == "sticky" {
                    positioned = true;
                }
            }
            "top" | "left" | "right" | "bottom" | "inset" => {
                if !(v == "auto" || length_px(v, ctx.font_px) == Some(0.0)) {
                    offsets = true;
                }
            }
            "margin"
            | "margin-top"
            | "margin-bottom"
            | "margin-left"
            | "margin-right"
            | "margin-inline-start"
            | "margin-inline-end" => {
                for tok in split_top(v) {
                    if tok == "auto" {
                        continue;
                    }
                    match length_px(&tok, ctx.font_px) {
                        Some(px) if !(-MAX_OFFSET_PX..=10.0 * MAX_OFFSET_PX).contains(&px) => {
                            hide(&mut j, format!("{} (moves text away)", what()))
                        }
                        Some(_) => {}
                        None => hide(&mut j, format!("{} (cannot be evaluated)", what())),
                    }
                }
            }
            "text-indent" => match length_px(v, ctx.font_px) {
                Some(px) if px.abs() <= 2.0 * MAX_OFFSET_PX => {}
                _ => hide(&mut j, format!("{} (moves text away)", what())),
            },
            "letter-spacing" | "word-spacing" => {
                if v != "normal" && !matches!(length_px(v, ctx.font_px), Some(px) if px >= -1.0) {
                    hide(&mut j, what());
                }
            }
            "line-height" => {
                let tiny = match number(v) {
                    Some((n, "")) => n < 0.3,
                    Some((_, "%")) => number(v).is_some_and(|(n, _)| n < 30.0),
                    Some(_) => length_px(v, ctx.font_px).is_none_or(|px| px < 4.0),
                    None => !matches!(v, "normal" | "inherit" | "initial" | "unset"),
                };
                if tiny {
                    hide(&mut j, what());
                }
            }
            "overflow" | "overflow-x" | "overflow-y" => {
                if !matches!(v, "visible" | "inherit" | "initial" | "unset") {
                    overflow_hidden = true;
                }
            }
            "height" | "max-height" | "max-width" | "width" => {
                if length_px(v, ctx.font_px).is_some_and(|px| px < 2.0 * ctx.font_px) {
                    small_box = true;
                }
            }
            "clip" | "clip-path" | "mask" | "mask-image" | "filter" | "backdrop-filter"
            | "transform" | "rotate" | "scale" | "translate" | "text-transform" | "content"
            | "mix-blend-mode" => {
                if !matches!(v, "auto" | "none" | "normal" | "initial" | "unset" | "") {
                    hide(&mut j, what());
                }
            }
            "direction" => {
                if v != "ltr" {
                    hide(&mut j, format!("{} (reorders text)", what()));
                }
            }
            "unicode-bidi" => {
                if v != "normal" {
                    hide(&mut j, format!("{} (reorders text)", what()));
                }
            }
            "zoom" => {
                if number(v).is_none_or(|(n, u)| if u == "%" { n < 50.0 } else { n < 0.5 }) {
                    hide(&mut j, what());
                }
            }
            "float" => {
                if v != "none" {
                    hide(&mut j, format!("{} (reorders text)", what()));
                }
            }
            b if INERT.contains(&b) => {}
            _ => hide(&mut j, format!("{} (cannot be evaluated)", what())),
        }
    }
    if positioned && offsets {
        hide(
            &mut j,
            format!("a positioned <{tag}> with offsets (moves text away)"),
        );
    }
    if overflow_hidden && small_box {
        hide(
            &mut j,
            format!("overflow with a small height or width on <{tag}> (clips text)"),
        );
    }
    if ctx.font_px < MIN_FONT_PX {
        hide(
            &mut j,
            format!(
                "a font-size of {:.1}px on <{tag}> (too small to read)",
                ctx.font_px
            ),
        );
    }
    if ctx.opacity < 0.5 {
        hide(
            &mut j,
            format!("opacity {:.2} on <{tag}> (faint or invisible)", ctx.opacity),
        );
    }
    match ctx.bg {
        Bg::Known(bg) if attrs.link && !fg_declared && contrast(ctx.vlink, bg) < MIN_CONTRAST => {
            j.contrast = Some(format!(
                "a visited-link colour on a background #{:02x}{:02x}{:02x} on <{tag}> (the colour of the background)",
                bg.0, bg.1, bg.2
            ));
        }
        Bg::Known(bg) if contrast(ctx.fg, bg) < MIN_CONTRAST => {
            j.contrast = Some(format!(
                "text colour #{:02x}{:02x}{:02x} on a background #{:02x}{:02x}{:02x} on <{tag}> (the colour of the background)",
                ctx.fg.0, ctx.fg.1, ctx.fg.2, bg.0, bg.1, bg.2
            ));
        }
        Bg::Unknown if fg_declared || parent.bg != ctx.bg => {
            j.contrast = Some(format!(
                "a text colour on a background that cannot be evaluated on <{tag}>"
            ));
        }
        _ => {}
    }
    (j, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(style: &str) -> Judged {
        let attrs = Attrs {
            style: Some(style),
            ..Attrs::default()
        };
        judge(
            "span",
            &attrs,
            &Ctx::default(),
            &Sheet::default(),
            &[0; 4],
            &[],
        )
        .0
    }

    #[test]
    fn genuine_styles_are_inert_and_hiding_ones_are_not() {
        for s in [
            "font-size:8.0pt;font-family:\"Aptos Narrow\",sans-serif;color:black;mso-ansi-language:ES-MX",
            "mso-bookmark:_MailOriginal",
            "font:7.0pt \"Times New Roman\"",
            "color: rgb(0, 0, 0); font-size: 12pt; -webkit-text-size-adjust: 100%",
            "margin-left:-5.4pt;border-collapse:collapse",
            "caret-color: rgb(0, 0, 0); text-transform: none; text-indent: 0px; -webkit-text-stroke-width: 0px",
        ] {
            let j = one(s);
            assert!(j.hiding.is_none() && j.contrast.is_none(), "{s}: {j:?}");
        }
        for s in [
            "display:none",
            "DISPLAY: none !important",
            "font-size:0",
            "font-size:4px",
            "visibility:hidden",
            "mso-hide:all",
            "opacity:0.1",
            "position:absolute",
            "max-height:0;overflow:hidden",
            "text-indent:-9999px",
            "color:transparent",
            "-webkit-transform:scaleX(-1)",
            "unicode-bidi:bidi-override",
            "line-height:0",
            "display:\\6e one",
            "frobnicate:1",
        ] {
            assert!(one(s).hiding.is_some(), "{s}");
        }
        assert!(one("color:#fefefe").contrast.is_some());
    }
}
