//! How Matrix users appear on XMPP: a JID under the component domain whose
//! local part is the XEP-0106-escaped Matrix id, and a nick from their
//! display name.

use brygga_core::MatrixUserId;
use tokio_xmpp::jid::{BareJid, FullJid};

/// Resource of every puppet session.
const RESOURCE: &str = "matrix";
/// Longest nick we give a puppet, in characters.
const MAX_NICK_CHARS: usize = 64;

/// The puppet JID of a Matrix user: `alice\3aexample.org@domain/matrix`.
pub(crate) fn puppet_jid(domain: &BareJid, user: &MatrixUserId) -> Option<FullJid> {
    let local = escape_node(user.as_str().trim_start_matches('@'));
    FullJid::new(&format!("{local}@{domain}/{RESOURCE}")).ok()
}

/// The Matrix user behind a JID under our domain, if it is a puppet.
pub(crate) fn matrix_user_of(domain: &BareJid, jid: &BareJid) -> Option<MatrixUserId> {
    if jid.domain() != domain.domain() {
        return None;
    }
    let mxid = format!("@{}", unescape_node(jid.node()?.as_str()));
    MatrixUserId::new(mxid).ok()
}

/// A nick for a Matrix user: their display name, else their local part,
/// without control characters and of bounded length.
pub(crate) fn nick_for(user: &MatrixUserId, display_name: Option<&str>) -> String {
    let clean = |s: &str| -> String {
        s.chars().filter(|c| !c.is_control()).take(MAX_NICK_CHARS).collect::<String>().trim().to_owned()
    };
    let nick = display_name.map(clean).unwrap_or_default();
    if nick.is_empty() { clean(user.localpart()) } else { nick }
}

/// XEP-0106 escaping of the characters a JID node cannot hold.
pub(crate) fn escape_node(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 8);
    for c in raw.chars() {
        match c {
            ' ' => out.push_str("\\20"),
            '"' => out.push_str("\\22"),
            '&' => out.push_str("\\26"),
            '\'' => out.push_str("\\27"),
            '/' => out.push_str("\\2f"),
            ':' => out.push_str("\\3a"),
            '<' => out.push_str("\\3c"),
            '>' => out.push_str("\\3e"),
            '@' => out.push_str("\\40"),
            '\\' => out.push_str("\\5c"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_node`].
pub(crate) fn unescape_node(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let code = rest.get(pos + 1..pos + 3);
        let decoded = match code {
            Some("20") => Some(' '),
            Some("22") => Some('"'),
            Some("26") => Some('&'),
            Some("27") => Some('\''),
            Some("2f") => Some('/'),
            Some("3a") => Some(':'),
            Some("3c") => Some('<'),
            Some("3e") => Some('>'),
            Some("40") => Some('@'),
            Some("5c") => Some('\\'),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[pos + 3..];
            }
            None => {
                out.push('\\');
                rest = &rest[pos + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> BareJid {
        BareJid::new("matrix.localhost").unwrap()
    }

    #[test]
    fn puppet_jids_round_trip() {
        let user = MatrixUserId::new("@alice:example.org:8448").unwrap();
        let jid = puppet_jid(&domain(), &user).unwrap();
        assert_eq!(jid.as_str(), "alice\\3aexample.org\\3a8448@matrix.localhost/matrix");
        assert_eq!(matrix_user_of(&domain(), &jid.to_bare()), Some(user));
    }

    #[test]
    fn foreign_domains_are_not_puppets() {
        let jid = BareJid::new("alice\\3aexample.org@elsewhere.localhost").unwrap();
        assert_eq!(matrix_user_of(&domain(), &jid), None);
        assert_eq!(matrix_user_of(&domain(), &domain()), None);
    }

    #[test]
    fn escaping_is_reversible() {
        for raw in ["a b\"c&d'e/f:g<h>i@j\\k", "plain", "\\20 literal"] {
            assert_eq!(unescape_node(&escape_node(raw)), raw);
        }
        assert_eq!(unescape_node("trailing\\"), "trailing\\");
    }

    #[test]
    fn nicks_come_from_display_names_without_control_characters() {
        let user = MatrixUserId::new("@alice:example.org").unwrap();
        assert_eq!(nick_for(&user, Some("Alice \u{7}A.")), "Alice A.");
        assert_eq!(nick_for(&user, Some("  ")), "alice");
        assert_eq!(nick_for(&user, None), "alice");
        assert_eq!(nick_for(&user, Some(&"x".repeat(500))).chars().count(), MAX_NICK_CHARS);
    }
}
