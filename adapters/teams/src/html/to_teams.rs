//! Matrix message text to Teams message HTML, with pills turned into mentions.

use std::collections::HashSet;

use brygga_core::Text;

use super::{attribute, escape, plain_text, rewrite_elements};

/// Tags Teams renders in a message body.
const TEAMS_TAGS: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "s",
    "strike",
    "del",
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
    "span",
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "hr",
];

/// A mention to send in a chatMessage's `mentions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OutMention {
    /// The `<at id>` in the body.
    pub(crate) id: usize,
    /// The text shown (also the `<at>` content).
    pub(crate) text: String,
    /// The Entra object id of the mentioned user.
    pub(crate) user_id: String,
}

/// A Matrix text rendered for Teams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ToTeams {
    /// The body, `contentType: html`.
    pub(crate) html: String,
    /// Mentions referenced by the body.
    pub(crate) mentions: Vec<OutMention>,
}

/// Renders a Matrix text for Teams. `teams_user` maps a Matrix user id (a
/// ghost or a linked user) to their Entra object id.
pub(crate) fn matrix_to_teams(text: &Text, teams_user: &dyn Fn(&str) -> Option<String>) -> ToTeams {
    let source = match &text.html {
        Some(html) => html.clone(),
        None => escape(&text.body).replace('\n', "<br>"),
    };
    let staged = clean(&source, false);
    let mut mentions = Vec::new();
    let rewritten = rewrite_elements(&staged, "a", false, &mut |attrs, inner| {
        let href = attribute(attrs, "href");
        let target = href.as_deref().and_then(pill_user).and_then(|user| teams_user(&user));
        match target {
            Some(user_id) => {
                let name = plain_text(inner);
                let id = mentions.len();
                let shown = escape(&name);
                mentions.push(OutMention { id, text: name, user_id });
                format!("<at id=\"{id}\">{shown}</at>")
            }
            None => match href {
                Some(href) => format!("<a href=\"{}\">{inner}</a>", escape(&href)),
                None => format!("<a>{inner}</a>"),
            },
        }
    });
    ToTeams { html: clean(&rewritten, true).trim().to_owned(), mentions }
}

/// Sanitises for Teams; `at` elements only once this module wrote them.
fn clean(html: &str, with_mentions: bool) -> String {
    let mut tags: HashSet<&str> = TEAMS_TAGS.iter().copied().collect();
    let mut attributes = vec![("a", ["href"].into_iter().collect::<HashSet<_>>())];
    if with_mentions {
        tags.insert("at");
        attributes.push(("at", ["id"].into_iter().collect()));
    }
    ammonia::Builder::default()
        .tags(tags)
        .clean_content_tags(["script", "style", "mx-reply"].into_iter().collect())
        .link_rel(None)
        .url_schemes(["https", "http", "mailto"].into_iter().collect())
        .tag_attributes(attributes.into_iter().collect())
        .generic_attributes(HashSet::new())
        .clean(html)
        .to_string()
}

/// The Matrix user a `https://matrix.to/#/@user:server` link pills.
pub(crate) fn pill_user(href: &str) -> Option<String> {
    let rest = href.strip_prefix("https://matrix.to/#/")?;
    let rest = rest.split('?').next()?;
    let user = percent_encoding::percent_decode_str(rest).decode_utf8().ok()?;
    (user.starts_with('@') && user.contains(':')).then(|| user.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(user: &str) -> Option<String> {
        match user {
            "@teams_t_aad-bob:hub.example" => Some("aad-bob".into()),
            "@alice:hub.example" => Some("aad-alice".into()),
            _ => None,
        }
    }

    #[test]
    fn pills_become_mentions() {
        let text = Text {
            body: "Bob: hi".into(),
            html: Some(
                r#"<a href="https://matrix.to/#/%40teams_t_aad-bob%3Ahub.example">Bob</a>: hi <a href="https://matrix.to/#/@alice:hub.example?via=x">Alice &amp; co</a> <a href="https://matrix.to/#/@carol:hub.example">Carol</a>"#.into(),
            ),
        };
        let out = matrix_to_teams(&text, &lookup);
        assert_eq!(
            out.html,
            r#"<at id="0">Bob</at>: hi <at id="1">Alice &amp; co</at> <a href="https://matrix.to/#/@carol:hub.example">Carol</a>"#
        );
        assert_eq!(out.mentions.len(), 2);
        assert_eq!(out.mentions[1], OutMention { id: 1, text: "Alice & co".into(), user_id: "aad-alice".into() });
    }

    #[test]
    fn plain_text_is_escaped_with_line_breaks() {
        let out = matrix_to_teams(&Text::plain("a <b>\nc & d"), &lookup);
        assert_eq!(out.html, "a &lt;b&gt;<br>c &amp; d");
        assert!(out.mentions.is_empty());
    }

    #[test]
    fn hostile_matrix_html_is_cleaned_and_cannot_forge_mentions() {
        let text = Text {
            body: "x".into(),
            html: Some(
                r#"<mx-reply><blockquote>quoted secret</blockquote></mx-reply><p onclick="x()">hi</p><script>bad()</script><a href="javascript:alert(1)">j</a><at id="0">forged</at><img src="https://e.example/i.png">"#.into(),
            ),
        };
        let out = matrix_to_teams(&text, &lookup);
        assert_eq!(out.html, "<p>hi</p><a>j</a>forged");
        assert!(out.mentions.is_empty());
    }

    #[test]
    fn only_matrix_to_user_links_are_pills() {
        assert_eq!(pill_user("https://matrix.to/#/@a:b"), Some("@a:b".into()));
        assert_eq!(pill_user("https://matrix.to/#/!room:b"), None);
        assert_eq!(pill_user("https://evil.example/#/@a:b"), None);
        assert_eq!(pill_user("https://matrix.to/#/@nohost"), None);
    }
}
