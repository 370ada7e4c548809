//! Matrix HTML (`formatted_body`) to Rocket.Chat Markdown.
//!
//! The input is first sanitised down to the tags handled here, so the small
//! tag scanner below only ever sees well-formed, known markup. Reply
//! fallbacks (`<mx-reply>`) are dropped: replies travel as quotes.

use std::collections::HashSet;

use crate::markdown::sanitize;

/// Converts Matrix HTML to Markdown; `mention` maps a Matrix user id (from a
/// `matrix.to` pill) to a Rocket.Chat username.
pub(crate) fn to_markdown(html: &str, mention: &dyn Fn(&str) -> Option<String>) -> String {
    let without_reply = strip_reply(html);
    let clean = sanitize(&without_reply);
    let mut out = Converter { out: String::new(), links: Vec::new(), quote: 0, lists: Vec::new(), pre: false };
    let mut rest = clean.as_str();
    while !rest.is_empty() {
        match rest.find('<') {
            Some(0) => {
                let end = rest.find('>').unwrap_or(rest.len() - 1);
                out.tag(&rest[1..end], mention);
                rest = &rest[end + 1..];
            }
            Some(i) => {
                out.text(&decode(&rest[..i]));
                rest = &rest[i..];
            }
            None => {
                out.text(&decode(rest));
                rest = "";
            }
        }
    }
    let text = out.out.trim().to_owned();
    // Collapse the blank lines block ends leave behind.
    let mut collapsed = String::with_capacity(text.len());
    let mut newlines = 0;
    for c in text.chars() {
        newlines = if c == '\n' { newlines + 1 } else { 0 };
        if newlines <= 2 {
            collapsed.push(c);
        }
    }
    collapsed
}

/// Removes `<mx-reply>…</mx-reply>` (ammonia would keep its text).
fn strip_reply(html: &str) -> String {
    match (html.find("<mx-reply>"), html.find("</mx-reply>")) {
        (Some(start), Some(end)) if end > start => format!("{}{}", &html[..start], &html[end + "</mx-reply>".len()..]),
        _ => html.to_owned(),
    }
}

struct Converter {
    out: String,
    /// Open links: (href, where their text starts, mention username).
    links: Vec<(String, usize, Option<String>)>,
    quote: usize,
    /// Open lists: the next number for `<ol>`, `None` for `<ul>`.
    lists: Vec<Option<u32>>,
    pre: bool,
}

impl Converter {
    fn text(&mut self, text: &str) {
        if self.quote > 0 && !self.pre {
            let prefix = format!("\n{}", "> ".repeat(self.quote));
            self.out.push_str(&text.replace('\n', &prefix));
        } else {
            self.out.push_str(text);
        }
    }

    fn newline(&mut self) {
        self.out.push('\n');
        if self.quote > 0 {
            self.out.push_str(&"> ".repeat(self.quote));
        }
    }

    fn tag(&mut self, tag: &str, mention: &dyn Fn(&str) -> Option<String>) {
        let closing = tag.starts_with('/');
        let name: String = tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        match (name.as_str(), closing) {
            ("b" | "strong", _) => self.out.push('*'),
            ("i" | "em", _) => self.out.push('_'),
            ("del" | "s", _) => self.out.push('~'),
            ("code", _) if !self.pre => self.out.push('`'),
            ("pre", false) => {
                self.pre = true;
                self.out.push_str("\n```\n");
            }
            ("pre", true) => {
                self.pre = false;
                if !self.out.ends_with('\n') {
                    self.out.push('\n');
                }
                self.out.push_str("```\n");
            }
            ("br", _) => self.newline(),
            ("p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6", true) => {
                if name.starts_with('h') {
                    self.out.push('*');
                }
                self.newline();
                self.newline();
            }
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", false) => self.out.push('*'),
            ("blockquote", false) => {
                self.quote += 1;
                self.newline();
            }
            ("blockquote", true) => {
                self.quote = self.quote.saturating_sub(1);
                self.newline();
            }
            ("ul", false) => self.lists.push(None),
            ("ol", false) => self.lists.push(Some(1)),
            ("ul" | "ol", true) => {
                self.lists.pop();
                self.newline();
            }
            ("li", false) => {
                self.newline();
                let indent = "  ".repeat(self.lists.len().saturating_sub(1));
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "- ".to_owned(),
                };
                self.out.push_str(&indent);
                self.out.push_str(&marker);
            }
            ("hr", _) => {
                self.newline();
                self.out.push_str("---");
                self.newline();
            }
            ("a", false) => {
                let href = attr(tag, "href").map(|h| decode(&h)).unwrap_or_default();
                let user = href.strip_prefix("https://matrix.to/#/").filter(|u| u.starts_with('@')).and_then(mention);
                self.links.push((href, self.out.len(), user));
            }
            ("a", true) => {
                let Some((href, start, user)) = self.links.pop() else { return };
                let text = self.out[start..].to_owned();
                if let Some(user) = user {
                    self.out.truncate(start);
                    self.out.push('@');
                    self.out.push_str(&user);
                } else if !href.is_empty() && text != href && !href.starts_with("https://matrix.to/") {
                    self.out.truncate(start);
                    self.out.push_str(&format!("[{text}]({href})"));
                }
            }
            _ => {}
        }
    }
}

/// The value of attribute `name` in a (sanitised, double-quoted) tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_owned())
}

/// Decodes the entities ammonia writes (and numeric ones).
fn decode(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let named: HashSet<(&str, char)> =
        [("amp", '&'), ("lt", '<'), ("gt", '>'), ("quot", '"'), ("apos", '\''), ("nbsp", ' ')].into_iter().collect();
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity.strip_prefix('#') {
                Some(num) => match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
                    None => num.parse().ok().and_then(char::from_u32),
                },
                None => named.iter().find(|(n, _)| *n == entity).map(|(_, c)| *c),
            }?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn inline_formatting_maps_to_rocket_chat_markdown() {
        assert_eq!(
            to_markdown("<b>bold</b> <em>it</em> <del>x</del> <code>a&lt;b</code>", &none),
            "*bold* _it_ ~x~ `a<b`"
        );
        assert_eq!(
            to_markdown("<a href=\"https://e.org/x?a=1&amp;b=2\">site</a>", &none),
            "[site](https://e.org/x?a=1&b=2)"
        );
        assert_eq!(to_markdown("<a href=\"https://e.org\">https://e.org</a>", &none), "https://e.org");
    }

    #[test]
    fn blocks_map_to_lines() {
        assert_eq!(to_markdown("<p>one</p><p>two</p>", &none), "one\n\ntwo");
        assert_eq!(to_markdown("a<br>b", &none), "a\nb");
        assert_eq!(to_markdown("<ul><li>x</li><li>y</li></ul>", &none), "- x\n- y");
        assert_eq!(to_markdown("<ol><li>x</li><li>y</li></ol>", &none), "1. x\n2. y");
        assert_eq!(to_markdown("<blockquote>q<br>r</blockquote>after", &none), "> q\n> r\nafter");
        assert_eq!(to_markdown("<pre><code>let x = 1;\n</code></pre>", &none), "```\nlet x = 1;\n```");
    }

    #[test]
    fn pills_become_mentions_and_reply_fallbacks_vanish() {
        let users = |u: &str| (u == "@rocketchat_t_bob:hs").then(|| "bob".to_owned());
        let html = "<mx-reply><blockquote>old</blockquote></mx-reply>hi <a href=\"https://matrix.to/#/@rocketchat_t_bob:hs\">Bob</a>, \
                    <a href=\"https://matrix.to/#/@carol:hs\">Carol</a>";
        assert_eq!(to_markdown(html, &users), "hi @bob, Carol");
    }

    #[test]
    fn hostile_html_is_reduced_to_text() {
        assert_eq!(to_markdown("<script>alert(1)</script>ok<img src=x onerror=y>", &none), "ok");
        assert_eq!(to_markdown("<a href=\"javascript:x\">click</a>", &none), "click");
        assert_eq!(to_markdown("a &amp; b &bogus; &#x1F600; &#99999999;", &none), "a & b &bogus; 😀 \u{fffd}");
        assert_eq!(to_markdown("<b>unclosed", &none), "*unclosed*");
    }
}
