//! Teams HTML to and from Matrix HTML.
//!
//! Both directions go through `ammonia` twice: once to turn untrusted input
//! into canonical, well-formed HTML that the small rewrites here (mentions,
//! inline images) can scan safely, and once at the end with the allow-list of
//! the receiving side. Safety never depends on the rewrites: whatever they
//! produce is sanitised again.

mod from_teams;
mod to_teams;

use std::collections::HashSet;

pub(crate) use from_teams::{TeamsMention, teams_to_matrix};
pub(crate) use to_teams::matrix_to_teams;

/// Tags Matrix clients render (a subset of the spec's list).
const MATRIX_TAGS: &[&str] = &[
    "a",
    "div",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "del",
    "s",
    "strike",
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
    "sup",
    "sub",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
];

/// Keeps only what Matrix clients render, and links that cannot run script.
pub(crate) fn sanitize_for_matrix(html: &str) -> String {
    let tags: HashSet<&str> = MATRIX_TAGS.iter().copied().collect();
    ammonia::Builder::default()
        .tags(tags)
        .clean_content_tags(["script", "style", "mx-reply"].into_iter().collect())
        .link_rel(None)
        .url_schemes(["https", "http", "mailto"].into_iter().collect())
        .tag_attributes([("a", ["href"].into_iter().collect())].into_iter().collect())
        .generic_attributes(HashSet::new())
        .clean(html)
        .to_string()
}

/// Plain text of canonical (ammonia-serialised) HTML: tags dropped, line
/// breaks kept, entities decoded.
pub(crate) fn plain_text(html: &str) -> String {
    let spaced = html
        .replace("<br>", "\n")
        .replace("</p>", "</p>\n")
        .replace("</div>", "</div>\n")
        .replace("</li>", "</li>\n")
        .replace("</blockquote>", "</blockquote>\n");
    let stripped = ammonia::Builder::empty().clean(&spaced).to_string();
    let text = unescape(&stripped);
    text.trim().to_owned()
}

/// Decodes the entities the HTML serialiser writes.
pub(crate) fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Splits canonical HTML at each `<{tag} ...>inner</{tag}>` element (not
/// nested; `void` elements have no inner HTML), handing `rewrite` the opening
/// tag's attributes text and the inner HTML; returns the rewritten HTML.
pub(crate) fn rewrite_elements(
    html: &str,
    tag: &str,
    void: bool,
    rewrite: &mut dyn FnMut(&str, &str) -> String,
) -> String {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        // `<at` must be the whole tag name (not `<atx`).
        if !after.starts_with([' ', '>']) {
            out.push_str(&rest[..start + open.len()]);
            rest = after;
            continue;
        }
        let Some(gt) = after.find('>') else { break };
        let attrs = &after[..gt];
        let body = &after[gt + 1..];
        let (inner, tail) = match body.find(&close) {
            _ if void => ("", body),
            Some(end) => (&body[..end], &body[end + close.len()..]),
            None => (body, ""),
        };
        out.push_str(&rest[..start]);
        out.push_str(&rewrite(attrs, inner));
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// The value of attribute `name` in a canonical attributes text (` a="v" b="w"`).
pub(crate) fn attribute(attrs: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = attrs.find(&key)? + key.len();
    let end = attrs[start..].find('"')?;
    Some(unescape(&attrs[start..start + end]))
}
