//! Rocket.Chat Markdown to sanitised Matrix HTML, with `@username`
//! mentions turned into Matrix pills.
//!
//! Rocket.Chat's dialect differs from CommonMark in one place that matters:
//! `*text*` is bold (as `**text**` is); `_text_` is italic and `~text~`
//! struck through. Single asterisks are doubled before CommonMark parsing.

use std::borrow::Cow;
use std::collections::HashSet;

use brygga_core::Text;
use pulldown_cmark::{CowStr, Event, Options, Parser, html};

/// Tags and attributes Matrix clients render (a subset of the spec's list).
const TAGS: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "p",
    "br",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "span",
];

/// Renders a Rocket.Chat message text for Matrix: the text itself as body,
/// and HTML when it has formatting or mentions. `mention` maps a username to
/// the Matrix user id of its ghost or puppet.
pub(crate) fn to_matrix(text: &str, mention: &dyn Fn(&str) -> Option<String>) -> Text {
    let source = double_single_asterisks(text);
    let mut options = Options::empty();
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let mut pilled = false;
    let events = Parser::new_ext(&source, options).flat_map(|event| match event {
        Event::Text(t) => {
            let parts = split_mentions(&t, mention);
            pilled |= parts.iter().any(|e| matches!(e, Event::InlineHtml(_)));
            parts
        }
        // Raw HTML in a message is shown as typed, never interpreted.
        Event::Html(h) | Event::InlineHtml(h) => vec![Event::Text(h)],
        Event::SoftBreak => vec![Event::HardBreak],
        other => vec![other],
    });
    let mut rendered = String::new();
    html::push_html(&mut rendered, events);
    let rendered = rendered.trim_end().to_owned();
    let plain = format!("<p>{}</p>", escape(text).replace('\n', "<br />\n"));
    let html = (pilled || rendered != plain).then(|| sanitize(&rendered));
    Text { body: text.to_owned(), html }
}

/// Keeps only what Matrix clients render, and links that cannot run script.
pub(crate) fn sanitize(html: &str) -> String {
    let tags: HashSet<&str> = TAGS.iter().copied().collect();
    ammonia::Builder::default()
        .tags(tags)
        .link_rel(None)
        .url_schemes(["https", "http", "mailto"].into_iter().collect())
        .add_tag_attributes("a", ["href"])
        .add_tag_attributes("code", ["class"])
        .clean(html)
        .to_string()
}

/// Splits `@username` mentions out of a text run as pill links.
fn split_mentions<'a>(text: &CowStr<'a>, mention: &dyn Fn(&str) -> Option<String>) -> Vec<Event<'a>> {
    let mut out = Vec::new();
    let mut rest: &str = text;
    let mut plain = String::new();
    while let Some(at) = rest.find('@') {
        let before_ok = at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric() || c == '.');
        let name_len = rest[at + 1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .unwrap_or(rest.len() - at - 1);
        let name = rest[at + 1..at + 1 + name_len].trim_end_matches('.');
        let target = (before_ok && !name.is_empty()).then(|| mention(name)).flatten();
        match target {
            Some(mxid) => {
                plain.push_str(&rest[..at]);
                if !plain.is_empty() {
                    out.push(Event::Text(CowStr::from(std::mem::take(&mut plain))));
                }
                let pill = format!("<a href=\"https://matrix.to/#/{}\">@{}</a>", escape(&mxid), escape(name));
                out.push(Event::InlineHtml(CowStr::from(pill)));
                rest = &rest[at + 1 + name.len()..];
            }
            None => {
                plain.push_str(&rest[..=at]);
                rest = &rest[at + 1..];
            }
        }
    }
    plain.push_str(rest);
    if !plain.is_empty() {
        out.push(Event::Text(CowStr::from(plain)));
    }
    out
}

/// `*bold*` -> `**bold**` outside code, leaving `**` and list bullets alone.
fn double_single_asterisks(text: &str) -> Cow<'_, str> {
    if !text.contains('*') {
        return Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_code = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            in_code = !in_code;
        }
        if c == '*' && !in_code {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let doubled = prev == Some('*') || next == Some('*');
            let bullet = next == Some(' ') && (prev.is_none() || prev == Some('\n'));
            if !doubled && !bullet {
                out.push_str("**");
                i += 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Cow::Owned(out)
}

/// Escapes text for HTML.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn plain_text_has_no_html() {
        let t = to_matrix("just words, and a & b", &none);
        assert_eq!(t.body, "just words, and a & b");
        assert_eq!(t.html, None);
        assert_eq!(to_matrix("two\nlines", &none).html, None);
    }

    #[test]
    fn rocket_chat_emphasis_becomes_html() {
        let t = to_matrix("*bold* _it_ ~gone~ `co*de*`", &none);
        let html = t.html.unwrap();
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("<em>it</em>"), "{html}");
        assert!(html.contains("<del>gone</del>"), "{html}");
        assert!(html.contains("<code>co*de*</code>"), "{html}");
        let html = to_matrix("**also bold**", &none).html.unwrap();
        assert!(html.contains("<strong>also bold</strong>"), "{html}");
    }

    #[test]
    fn html_and_script_links_are_neutralised() {
        let html = to_matrix("<b onclick=x>hi</b> [x](javascript:alert(1))", &none).html.unwrap();
        assert!(!html.contains("<b"), "{html}");
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains("&lt;b onclick=x&gt;"), "{html}");
    }

    #[test]
    fn mentions_become_pills() {
        let known = |u: &str| (u == "bob").then(|| "@rocketchat_t_bob:hs".to_owned());
        let t = to_matrix("hi @bob and @nobody, mail x@bob.org", &known);
        let html = t.html.unwrap();
        assert_eq!(html.matches("matrix.to").count(), 1, "{html}");
        assert!(html.contains("<a href=\"https://matrix.to/#/@rocketchat_t_bob:hs\">@bob</a>"), "{html}");
        assert!(html.contains("@nobody"), "{html}");
        assert_eq!(t.body, "hi @bob and @nobody, mail x@bob.org");
    }
}
