//! Ghost user ids and portal aliases in the bridge's exclusive namespace.
//!
//! Remote ids are escaped reversibly into the Matrix localpart alphabet:
//! `a-z 0-9 . -` pass through, `_` becomes `__`, an upper-case letter `X`
//! becomes `_x`, and every other byte becomes `=hh`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ids::{AdapterKind, MatrixUserId, PortalKey, RemoteRoomId, RemoteUserId, TenantId};

/// Escapes any string into a valid localpart fragment.
pub fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => out.push(byte as char),
            b'_' => out.push_str("__"),
            b'A'..=b'Z' => {
                out.push('_');
                out.push(byte.to_ascii_lowercase() as char);
            }
            other => out.push_str(&format!("={other:02x}")),
        }
    }
    out
}

/// Reverses [`escape`]; `None` if the input is not a valid escape.
pub fn unescape(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => {
                let next = *bytes.get(i + 1)?;
                match next {
                    b'_' => out.push(b'_'),
                    b'a'..=b'z' => out.push(next.to_ascii_uppercase()),
                    _ => return None,
                }
                i += 2;
            }
            b'=' => {
                let hex = escaped.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b @ (b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-') => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// A template error, naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid template {template:?}: {reason}")]
pub struct TemplateError {
    template: String,
    reason: &'static str,
}

/// A localpart template such as `{kind}_{tenant}_{id}`.
///
/// `{kind}` and `{tenant}` may appear anywhere before `{id}`, which must be
/// last; every placeholder must be followed by a literal separator so a
/// localpart parses back unambiguously (kinds and tenants contain no `_`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    raw: String,
}

impl Template {
    /// Parses and checks a template.
    pub fn new(raw: &str) -> Result<Self, TemplateError> {
        let err = |reason| TemplateError { template: raw.to_owned(), reason };
        for needed in ["{kind}", "{tenant}", "{id}"] {
            if raw.matches(needed).count() != 1 {
                return Err(err("must contain {kind}, {tenant} and {id} exactly once"));
            }
        }
        if !raw.ends_with("{id}") {
            return Err(err("{id} must come last"));
        }
        if raw.contains("}{") {
            return Err(err("placeholders must be separated by literal text"));
        }
        let literal = raw.replace("{kind}", "").replace("{tenant}", "").replace("{id}", "");
        if literal.contains(['{', '}']) {
            return Err(err("unknown placeholder"));
        }
        if !literal.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.' || b == b'=')
        {
            return Err(err("literal text may only contain a-z, 0-9, '_', '.' and '='"));
        }
        Ok(Self { raw: raw.to_owned() })
    }

    /// The localpart prefix for one adapter of one tenant (everything before `{id}`).
    pub fn prefix(&self, kind: &AdapterKind, tenant: &TenantId) -> String {
        self.raw.trim_end_matches("{id}").replace("{kind}", kind.as_str()).replace("{tenant}", tenant.as_str())
    }

    /// Renders a localpart.
    pub fn render(&self, kind: &AdapterKind, tenant: &TenantId, id: &str) -> String {
        format!("{}{}", self.prefix(kind, tenant), escape(id))
    }

    /// Parses a localpart back into kind, tenant and the unescaped id.
    pub fn parse(&self, localpart: &str) -> Option<(AdapterKind, TenantId, String)> {
        let (kind, tenant, raw) = self.parse_raw(localpart)?;
        Some((kind, tenant, unescape(raw)?))
    }

    /// Parses a localpart into kind, tenant and the id as written (still escaped).
    pub fn parse_raw<'a>(&self, localpart: &'a str) -> Option<(AdapterKind, TenantId, &'a str)> {
        let mut rest = localpart;
        let mut kind = None;
        let mut tenant = None;
        let mut template = self.raw.as_str();
        loop {
            let open = template.find('{').unwrap_or(template.len());
            let literal = &template[..open];
            rest = rest.strip_prefix(literal)?;
            template = &template[open..];
            if template == "{id}" {
                return Some((kind?, tenant?, rest));
            }
            let close = template.find('}')?;
            let name = &template[1..close];
            template = &template[close + 1..];
            let sep_end = template.find('{').unwrap_or(template.len());
            let separator = &template[..sep_end];
            let end = rest.find(separator)?;
            let value = &rest[..end];
            rest = &rest[end..];
            match name {
                "kind" => kind = AdapterKind::new(value).ok(),
                "tenant" => tenant = TenantId::new(value).ok(),
                _ => return None,
            }
        }
    }
}

/// How an adapter writes its room ids in portal aliases, where the generic
/// escaping would be unfriendly to type (e.g. `room_server` for a JID).
pub trait RoomAliasCodec: Send + Sync {
    /// The alias fragment of a room, in the localpart alphabet.
    fn encode(&self, room: &RemoteRoomId) -> Option<String>;
    /// The room behind an alias fragment.
    fn decode(&self, fragment: &str) -> Option<RemoteRoomId>;
}

/// Names ghosts and portal aliases for one homeserver.
#[derive(Clone)]
pub struct Namer {
    server_name: String,
    ghosts: Template,
    aliases: Template,
    codecs: BTreeMap<AdapterKind, Arc<dyn RoomAliasCodec>>,
}

impl std::fmt::Debug for Namer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namer")
            .field("server_name", &self.server_name)
            .field("ghosts", &self.ghosts)
            .field("aliases", &self.aliases)
            .field("codecs", &self.codecs.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Namer {
    /// Builds a namer from user and alias templates.
    pub fn new(server_name: impl Into<String>, ghosts: Template, aliases: Template) -> Self {
        Self { server_name: server_name.into(), ghosts, aliases, codecs: BTreeMap::new() }
    }

    /// Uses an adapter's own spelling of room ids in its portal aliases.
    pub fn with_codec(mut self, kind: AdapterKind, codec: Arc<dyn RoomAliasCodec>) -> Self {
        self.codecs.insert(kind, codec);
        self
    }

    /// The homeserver name.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The Matrix id of a remote user's ghost.
    pub fn ghost_user_id(&self, kind: &AdapterKind, tenant: &TenantId, remote: &RemoteUserId) -> MatrixUserId {
        let local = self.ghosts.render(kind, tenant, remote.as_str());
        MatrixUserId::new(format!("@{local}:{}", self.server_name)).expect("escaped localparts are valid")
    }

    /// The remote user behind a ghost id, if it is one of ours.
    pub fn parse_ghost(&self, user: &MatrixUserId) -> Option<(AdapterKind, TenantId, RemoteUserId)> {
        if user.server_name() != self.server_name {
            return None;
        }
        let (kind, tenant, id) = self.ghosts.parse(user.localpart())?;
        Some((kind, tenant, RemoteUserId::new(id).ok()?))
    }

    /// The alias localpart of a portal room.
    pub fn portal_alias(&self, key: &PortalKey) -> String {
        match self.codecs.get(&key.kind).and_then(|c| c.encode(&key.room)) {
            Some(fragment) => format!("{}{fragment}", self.aliases.prefix(&key.kind, &key.tenant)),
            None => self.aliases.render(&key.kind, &key.tenant, key.room.as_str()),
        }
    }

    /// The portal an alias localpart names, if it is one of ours.
    pub fn portal_of_alias(&self, localpart: &str) -> Option<PortalKey> {
        let (kind, tenant, fragment) = self.aliases.parse_raw(localpart)?;
        let room = match self.codecs.get(&kind) {
            Some(codec) => codec.decode(fragment)?,
            None => RemoteRoomId::new(unescape(fragment)?).ok()?,
        };
        Some(PortalKey::new(tenant, kind, room))
    }

    /// Regex of one adapter's ghosts of one tenant, for the registration file.
    pub fn ghost_namespace(&self, kind: &AdapterKind, tenant: &TenantId) -> String {
        format!("@{}.*:{}", regex_escape(&self.ghosts.prefix(kind, tenant)), regex_escape(&self.server_name))
    }

    /// Regex of one adapter's portal aliases of one tenant.
    pub fn alias_namespace(&self, kind: &AdapterKind, tenant: &TenantId) -> String {
        format!("#{}.*:{}", regex_escape(&self.aliases.prefix(kind, tenant)), regex_escape(&self.server_name))
    }
}

/// Escapes regex metacharacters (for the homeserver's Python `re`).
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namer() -> Namer {
        Namer::new(
            "hub.example",
            Template::new("{kind}_{tenant}_{id}").unwrap(),
            Template::new("{kind}_{tenant}_{id}").unwrap(),
        )
    }

    #[test]
    fn escaping_round_trips() {
        for raw in ["alice", "Alice_B", "anna@xmpp.se/res", "å ä ö", "a=b", "__", "Z", "-.", ""] {
            let escaped = escape(raw);
            assert!(
                escaped.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._=-".contains(&b)),
                "{escaped}"
            );
            assert_eq!(unescape(&escaped).as_deref(), Some(raw), "{raw} -> {escaped}");
        }
        assert_eq!(escape("Bob_1"), "_bob__1");
        assert_eq!(unescape("_"), None);
        assert_eq!(unescape("=zz"), None);
        assert_eq!(unescape("A"), None);
    }

    #[test]
    fn ghost_ids_parse_back() {
        let n = namer();
        let kind = AdapterKind::new("xmpp").unwrap();
        let tenant = TenantId::new("fk-2").unwrap();
        let remote = RemoteUserId::new("Anna@agency.se").unwrap();
        let user = n.ghost_user_id(&kind, &tenant, &remote);
        assert_eq!(user.as_str(), "@xmpp_fk-2__anna=40agency.se:hub.example");
        assert_eq!(n.parse_ghost(&user), Some((kind, tenant, remote)));
        let other = MatrixUserId::new("@xmpp_fk-2_x:other.example").unwrap();
        assert_eq!(n.parse_ghost(&other), None);
        let alice = MatrixUserId::new("@alice:hub.example").unwrap();
        assert_eq!(n.parse_ghost(&alice), None);
    }

    #[test]
    fn templates_are_validated() {
        assert!(Template::new("{kind}{tenant}_{id}").is_err());
        assert!(Template::new("{id}_{kind}_{tenant}").is_err());
        assert!(Template::new("{kind}_{id}").is_err());
        assert!(Template::new("{kind}_{tenant}_{nick}{id}").is_err());
        assert!(Template::new("Bridge_{kind}_{tenant}_{id}").is_err());
        let custom = Template::new("br.{tenant}.{kind}.{id}").unwrap();
        let (k, t, id) = custom.parse("br.fk.xmpp.bob").unwrap();
        assert_eq!((k.as_str(), t.as_str(), id.as_str()), ("xmpp", "fk", "bob"));
    }

    #[test]
    fn namespaces_match_only_their_tenant() {
        let n = namer();
        let ns = n.ghost_namespace(&AdapterKind::new("xmpp").unwrap(), &TenantId::new("fk").unwrap());
        assert_eq!(ns, "@xmpp_fk_.*:hub\\.example");
    }
}

#[cfg(test)]
mod codec_tests {
    use super::*;

    /// Writes `a@b` as `a_b`.
    struct AtAsUnderscore;

    impl RoomAliasCodec for AtAsUnderscore {
        fn encode(&self, room: &RemoteRoomId) -> Option<String> {
            let (node, domain) = room.as_str().split_once('@')?;
            Some(format!("{}_{domain}", escape(node)))
        }
        fn decode(&self, fragment: &str) -> Option<RemoteRoomId> {
            let (node, domain) = fragment.rsplit_once('_')?;
            RemoteRoomId::new(format!("{}@{domain}", unescape(node)?)).ok()
        }
    }

    #[test]
    fn adapters_can_spell_their_rooms_in_aliases() {
        let kind = AdapterKind::new("xmpp").unwrap();
        let namer = Namer::new(
            "hs",
            Template::new("{kind}_{tenant}_{id}").unwrap(),
            Template::new("{kind}_{tenant}_{id}").unwrap(),
        )
        .with_codec(kind.clone(), Arc::new(AtAsUnderscore));
        let key =
            PortalKey::new(TenantId::new("fk").unwrap(), kind, RemoteRoomId::new("my_room@conf.example").unwrap());
        let alias = namer.portal_alias(&key);
        assert_eq!(alias, "xmpp_fk_my__room_conf.example");
        assert_eq!(namer.portal_of_alias(&alias), Some(key));
        let other = PortalKey::new(
            TenantId::new("fk").unwrap(),
            AdapterKind::new("rc").unwrap(),
            RemoteRoomId::new("G@x").unwrap(),
        );
        assert_eq!(namer.portal_of_alias(&namer.portal_alias(&other)), Some(other));
        assert_eq!(namer.portal_of_alias("xmpp_fk_nounderscore"), None);
    }
}
