//! Sanitising HTML the bridge sends as `formatted_body`.
//!
//! Remote HTML is untrusted. The allow-list is the one the Matrix
//! client-server spec recommends for `m.room.message` `formatted_body`; links
//! may only use `https`, `http`, `mailto` and `mxc`, images only `mxc`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};

/// Tags the spec permits (`font` and `strike` are deprecated but still listed).
/// `mx-reply` is left out on purpose: remote content has no business
/// carrying a reply fallback, which clients hide.
const TAGS: &[&str] = &[
    "font",
    "del",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "p",
    "a",
    "ul",
    "ol",
    "sup",
    "sub",
    "li",
    "b",
    "i",
    "u",
    "strong",
    "em",
    "s",
    "strike",
    "code",
    "hr",
    "br",
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "caption",
    "pre",
    "span",
    "img",
    "details",
    "summary",
];

/// Per-tag attributes the spec permits.
const ATTRIBUTES: &[(&str, &[&str])] = &[
    ("font", &["data-mx-bg-color", "data-mx-color", "color"]),
    ("span", &["data-mx-bg-color", "data-mx-color", "data-mx-spoiler", "data-mx-maths"]),
    ("a", &["target", "href"]),
    ("img", &["width", "height", "alt", "title", "src"]),
    ("ol", &["start"]),
    ("code", &["class"]),
    ("div", &["data-mx-maths"]),
];

const URL_SCHEMES: &[&str] = &["https", "http", "mailto", "mxc"];

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::empty();
    builder
        .tags(TAGS.iter().copied().collect())
        .tag_attributes(
            ATTRIBUTES
                .iter()
                .map(|(tag, attrs)| (*tag, attrs.iter().copied().collect::<HashSet<_>>()))
                .collect::<HashMap<_, _>>(),
        )
        .url_schemes(URL_SCHEMES.iter().copied().collect())
        .url_relative(UrlRelative::Deny)
        // Script and style contents are code, not text: drop them entirely.
        .clean_content_tags(["script", "style"].into_iter().collect())
        .strip_comments(true)
        // `rel` is not on the spec's list; clients would strip it anyway.
        .link_rel(None)
        .attribute_filter(filter_attribute);
    builder
});

/// Value checks the tag/attribute lists alone cannot express.
fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    let keep = match (element, attribute) {
        // Clients must not fetch images from arbitrary URLs.
        ("img", "src") => value.starts_with("mxc://"),
        // Only syntax-highlighting hints.
        ("code", "class") => value.split_whitespace().all(|c| c.starts_with("language-")),
        (_, "color" | "data-mx-color" | "data-mx-bg-color") => is_hex_color(value),
        ("ol", "start") | ("img", "width" | "height") => !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
        _ => true,
    };
    keep.then_some(Cow::Borrowed(value))
}

fn is_hex_color(value: &str) -> bool {
    value.strip_prefix('#').is_some_and(|hex| hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Sanitises HTML for a `formatted_body`.
pub fn sanitize_html(html: &str) -> String {
    SANITIZER.clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_allowed_markup() {
        let html = r#"<p><strong>bold</strong> <a href="https://example.org" target="_blank">link</a></p>"#;
        assert_eq!(sanitize_html(html), html);
        assert_eq!(sanitize_html(r#"<code class="language-rust">x</code>"#), r#"<code class="language-rust">x</code>"#);
        assert_eq!(sanitize_html(r##"<font color="#ff0000">red</font>"##), r##"<font color="#ff0000">red</font>"##);
    }

    #[test]
    fn drops_dangerous_markup() {
        assert_eq!(sanitize_html("<script>alert(1)</script>hi"), "hi");
        assert_eq!(sanitize_html(r#"<a href="javascript:alert(1)">x</a>"#), "<a>x</a>");
        assert_eq!(sanitize_html(r#"<a href="/relative">x</a>"#), "<a>x</a>");
        assert_eq!(sanitize_html(r#"<img src="https://evil.example/x.png">"#), "<img>");
        assert_eq!(sanitize_html(r#"<img src="mxc://hs/abc">"#), r#"<img src="mxc://hs/abc">"#);
        assert_eq!(sanitize_html(r#"<p onclick="x()" style="color:red">t</p>"#), "<p>t</p>");
        assert_eq!(sanitize_html("<mx-reply>quoted</mx-reply>text"), "quotedtext");
        assert_eq!(sanitize_html(r#"<iframe src="https://x"></iframe>ok"#), "ok");
        assert_eq!(sanitize_html(r#"<code class="evil">x</code>"#), "<code>x</code>");
        assert_eq!(sanitize_html(r#"<span data-mx-color="red;x">t</span>"#), "<span>t</span>");
        assert_eq!(sanitize_html("<!-- c -->t"), "t");
    }
}
