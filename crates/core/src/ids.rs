//! Typed identifiers: every id in the bridge says what it identifies.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InvalidId;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $validate:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                let check: fn(&str) -> Result<(), &'static str> = $validate;
                check(&value).map_err(|reason| InvalidId {
                    kind: stringify!($name),
                    value: value.chars().take(80).collect(),
                    reason,
                })?;
                Ok(Self(value))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(value: &str) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Tenant ids and adapter kinds end up in Matrix localparts and SQL keys, so
/// they are kept to a small, unambiguous alphabet.
fn slug(value: &str, extra: &[char]) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > 32 {
        return Err("must be 1 to 32 characters");
    }
    if !value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(&c)) {
        return Err("may only contain a-z, 0-9 (and '-' for tenants)");
    }
    if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a letter a-z");
    }
    Ok(())
}

fn opaque(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("must not be empty");
    }
    if value.len() > 1024 {
        return Err("must be at most 1024 bytes");
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
}

fn sigil(value: &str, sigil: char) -> Result<(), &'static str> {
    let rest = value.strip_prefix(sigil).ok_or("has the wrong sigil")?;
    let (local, server) = rest.split_once(':').ok_or("lacks ':server'")?;
    if server.is_empty() || value.len() > 255 || local.chars().any(char::is_control) {
        return Err("is not a valid Matrix identifier");
    }
    Ok(())
}

string_id!(
    /// An agency served by the bridge.
    TenantId,
    |v| slug(v, &['-'])
);
string_id!(
    /// A kind of remote platform adapter, such as `xmpp` or `teams`.
    AdapterKind,
    |v| slug(v, &[])
);
string_id!(
    /// A room, channel, chat or MUC on the remote platform.
    RemoteRoomId,
    opaque
);
string_id!(
    /// A user on the remote platform.
    RemoteUserId,
    opaque
);
string_id!(
    /// A message on the remote platform.
    RemoteMessageId,
    opaque
);
string_id!(
    /// A Matrix user id, `@local:server`.
    MatrixUserId,
    |v| sigil(v, '@')
);
string_id!(
    /// A Matrix room id: `!opaque:server`, or `!opaque` from room version 12 on.
    MatrixRoomId,
    |v| {
        if v.starts_with('!') && v.len() > 1 && v.len() <= 255 && !v.chars().any(char::is_control) {
            Ok(())
        } else {
            Err("is not a valid Matrix room id")
        }
    }
);
string_id!(
    /// A Matrix event id, `$opaque` (room versions 3+) or `$opaque:server`.
    MatrixEventId,
    |v| {
        if v.starts_with('$') && v.len() > 1 && v.len() <= 255 {
            Ok(())
        } else {
            Err("is not a valid Matrix event id")
        }
    }
);

impl MatrixUserId {
    /// The part between `@` and the first `:`.
    pub fn localpart(&self) -> &str {
        self.0[1..].split_once(':').map_or("", |(l, _)| l)
    }

    /// The server name after the first `:`.
    pub fn server_name(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, s)| s)
    }
}

/// One bridged conversation: a remote room of one adapter of one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortalKey {
    /// The tenant that owns the portal.
    pub tenant: TenantId,
    /// The adapter that serves the remote room.
    pub kind: AdapterKind,
    /// The remote room.
    pub room: RemoteRoomId,
}

impl PortalKey {
    /// Builds a portal key.
    pub fn new(tenant: TenantId, kind: AdapterKind, room: RemoteRoomId) -> Self {
        Self { tenant, kind, room }
    }

    /// The queue of a tenant's adapter for events that belong to no portal
    /// yet (an invitation that opens a direct chat), delivered by whichever
    /// process runs that adapter. No platform's room id starts with a space.
    pub fn lobby(tenant: TenantId, kind: AdapterKind) -> Self {
        Self { tenant, kind, room: RemoteRoomId(LOBBY_ROOM.to_owned()) }
    }

    /// Whether this is a [`PortalKey::lobby`] rather than a portal.
    pub fn is_lobby(&self) -> bool {
        self.room.as_str() == LOBBY_ROOM
    }
}

const LOBBY_ROOM: &str = " lobby";

impl fmt::Display for PortalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.tenant, self.kind, self.room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_slugs() {
        assert!(TenantId::new("fk-1").is_ok());
        assert!(TenantId::new("").is_err());
        assert!(TenantId::new("Upper").is_err());
        assert!(TenantId::new("a_b").is_err());
        assert!(TenantId::new("1abc").is_err());
        assert!(AdapterKind::new("xmpp").is_ok());
        assert!(AdapterKind::new("x-y").is_err());
    }

    #[test]
    fn matrix_ids_are_checked() {
        let user = MatrixUserId::new("@alice:example.org").unwrap();
        assert_eq!(user.localpart(), "alice");
        assert_eq!(user.server_name(), "example.org");
        assert!(MatrixUserId::new("alice").is_err());
        assert!(MatrixRoomId::new("!r:hs").is_ok());
        assert!(MatrixRoomId::new("!hashOnlyRoomV12").is_ok());
        assert!(MatrixRoomId::new("!").is_err());
        assert!(MatrixRoomId::new("#r:hs").is_err());
        assert!(MatrixEventId::new("$abc").is_ok());
        assert!(MatrixEventId::new("abc").is_err());
    }

    #[test]
    fn ids_deserialize_with_validation() {
        let ok: Result<TenantId, _> = serde_json::from_str("\"agency\"");
        assert!(ok.is_ok());
        let bad: Result<TenantId, _> = serde_json::from_str("\"Agency!\"");
        assert!(bad.is_err());
        let err = TenantId::new("Bad").unwrap_err().to_string();
        assert!(err.contains("TenantId"), "{err}");
    }
}
