//! Teams message HTML (untrusted) to Matrix `body` and `formatted_body`.

use std::collections::HashSet;

use brygga_core::Text;

use super::{attribute, escape, plain_text, rewrite_elements, sanitize_for_matrix};

/// Tags kept from Teams before the rewrites (the Matrix ones plus mentions and images).
const STAGE_TAGS: &[&str] = &["at", "img"];

/// One entry of a chatMessage's `mentions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TeamsMention {
    /// The `id` the body's `<at id="…">` refers to.
    pub(crate) id: i64,
    /// The Entra object id of the mentioned user (none for channels, teams, tags).
    pub(crate) user: Option<String>,
}

/// A Teams message body rendered for Matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FromTeams {
    /// Body and sanitised HTML.
    pub(crate) text: Text,
    /// URLs of inline images (hosted contents) to re-upload, in order.
    pub(crate) images: Vec<String>,
}

/// Renders a chatMessage body for Matrix. `pill` maps an Entra user id to the
/// Matrix user to pill; `hosted` says whether an image URL is the message's
/// own hosted content (fetched with the app's token, never anything else).
pub(crate) fn teams_to_matrix(
    content: &str,
    is_html: bool,
    mentions: &[TeamsMention],
    pill: &dyn Fn(&str) -> Option<String>,
    hosted: &dyn Fn(&str) -> bool,
) -> FromTeams {
    if !is_html {
        return FromTeams { text: Text::plain(content.trim()), images: Vec::new() };
    }
    let mut tags: HashSet<&str> = super::MATRIX_TAGS.iter().copied().collect();
    tags.extend(STAGE_TAGS);
    let staged = ammonia::Builder::default()
        .tags(tags)
        .link_rel(None)
        .url_schemes(["https", "http", "mailto"].into_iter().collect())
        .tag_attributes(
            [
                ("a", ["href"].into_iter().collect()),
                ("at", ["id"].into_iter().collect()),
                ("img", ["src", "alt"].into_iter().collect()),
            ]
            .into_iter()
            .collect(),
        )
        .generic_attributes(HashSet::new())
        .clean(content)
        .to_string();
    let with_pills = rewrite_elements(&staged, "at", false, &mut |attrs, inner| {
        let name = plain_text(inner);
        let target = attribute(attrs, "id")
            .and_then(|id| id.trim().parse::<i64>().ok())
            .and_then(|id| mentions.iter().find(|m| m.id == id))
            .and_then(|m| m.user.as_deref())
            .and_then(pill);
        match target {
            Some(user) => format!("<a href=\"https://matrix.to/#/{}\">{}</a>", escape(&user), escape(&name)),
            None => escape(&name),
        }
    });
    let mut images = Vec::new();
    let without_images = rewrite_elements(&with_pills, "img", true, &mut |attrs, _| {
        match attribute(attrs, "src").filter(|src| hosted(src)) {
            Some(src) => {
                images.push(src);
                String::new()
            }
            // Other images would be fetched by every reader's client: only their alt text is shown.
            None => attribute(attrs, "alt").map(|alt| escape(&alt)).unwrap_or_default(),
        }
    });
    let html = sanitize_for_matrix(&without_images).trim().to_owned();
    let body = plain_text(&html);
    let formatted = html.contains('<').then_some(html);
    FromTeams { text: Text { body, html: formatted }, images }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(content: &str) -> FromTeams {
        let mentions = [TeamsMention { id: 0, user: Some("aad-bob".into()) }, TeamsMention { id: 1, user: None }];
        let pill = |aad: &str| (aad == "aad-bob").then(|| "@teams_t_aad-bob:hub.example".to_owned());
        let hosted =
            |src: &str| src.starts_with("https://graph.microsoft.com/v1.0/") && src.contains("/hostedContents/");
        teams_to_matrix(content, true, &mentions, &pill, &hosted)
    }

    #[test]
    fn formatting_and_mentions_become_matrix_html_and_pills() {
        let out = render(r#"<p>Hi <at id="0">Bob Smith</at>, see <b>this</b> &amp; <at id="1">General</at></p>"#);
        assert_eq!(
            out.text.html.as_deref(),
            Some(
                r#"<p>Hi <a href="https://matrix.to/#/@teams_t_aad-bob:hub.example">Bob Smith</a>, see <b>this</b> &amp; General</p>"#
            )
        );
        assert_eq!(out.text.body, "Hi Bob Smith, see this & General");
    }

    #[test]
    fn plain_messages_have_no_html() {
        let out = render("<p>just words</p>");
        assert_eq!(out.text.body, "just words");
        assert_eq!(out.text.html.as_deref(), Some("<p>just words</p>"));
        let text = teams_to_matrix("  a < b  ", false, &[], &|_| None, &|_| false);
        assert_eq!(text.text, Text::plain("a < b"));
        assert!(render("words only").text.html.is_none());
    }

    #[test]
    fn hosted_images_are_taken_out_for_upload_and_others_dropped() {
        let src = "https://graph.microsoft.com/v1.0/chats/19:a@thread.v2/messages/1/hostedContents/aWQ=/$value";
        let out = render(&format!(
            r#"<p>look<img src="{src}" alt="image"><img src="https://tracker.example/p.gif" alt="pixel"></p>"#
        ));
        assert_eq!(out.images, vec![src.to_owned()]);
        let html = out.text.html.unwrap();
        assert!(!html.contains("img") && !html.contains("tracker"), "{html}");
        assert_eq!(out.text.body, "lookpixel");
    }

    #[test]
    fn hostile_html_never_reaches_matrix() {
        let hostile = r#"<div onclick="alert(1)">x<script>alert(2)</script><style>*{}</style>
            <a href="javascript:alert(3)">click</a><a href="JaVaScRiPt:alert(4)">c2</a>
            <img src="x" onerror="alert(5)"><iframe src="https://evil.example"></iframe>
            <svg><script>alert(6)</script></svg><at id="0" onmouseover="alert(7)">Bob<script>x()</script></at>
            <a href="https://ok.example" style="color:red" onfocus="alert(8)">ok</a>
            <form action="https://evil.example"><input value="x"></form><!-- <script> -->
            <p data-x="1" class="c">&lt;script&gt;alert(9)&lt;/script&gt;</p></div>"#;
        let out = render(hostile);
        let html = out.text.html.unwrap();
        for bad in [
            "<script",
            "onclick",
            "onerror",
            "onmouseover",
            "onfocus",
            "javascript",
            "iframe",
            "style",
            "<svg",
            "<form",
            "<input",
            "alert(1)",
            "alert(2)",
            "data-x",
            "class=",
        ] {
            assert!(!html.to_lowercase().contains(bad), "{bad} in {html}");
        }
        assert!(html.contains(r#"<a href="https://ok.example">ok</a>"#), "{html}");
        assert!(html.contains("&lt;script&gt;alert(9)"), "{html}");
        assert!(html.contains(r#"<a href="https://matrix.to/#/@teams_t_aad-bob:hub.example">Bob</a>"#), "{html}");
    }

    #[test]
    fn forged_mentions_cannot_inject_markup() {
        let out = render(r#"<at id="0">"><script>alert(1)</script></at><at id="9">x"y</at><at id="zz">q</at>"#);
        let html = out.text.html.unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains(r#"example">"&gt;</a>"#), "{html}");
        assert_eq!(out.text.body, r#"">x"yq"#);
    }
}
