//! Resolving references through the message map, and reaction identities.

use crate::error::BridgeError;
use crate::ids::RemoteMessageId;

/// The message-map key of one user's reaction with one key on one message.
///
/// Platforms rarely give reactions ids of their own, so the router names
/// them by what they are; length prefixes keep the encoding unambiguous.
/// Fails (permanently) for keys no platform could carry: control
/// characters or absurd lengths, which only a hostile client sends.
pub fn reaction_identity(target: &RemoteMessageId, sender: &str, key: &str) -> Result<RemoteMessageId, BridgeError> {
    let target = target.as_str();
    RemoteMessageId::new(format!("reaction:{}:{target}{}:{sender}{key}", target.len(), sender.len()))
        .map_err(|e| BridgeError::permanent(format!("unusable reaction key: {}", e.reason)))
}

/// Splits a reaction identity into target message, sender and key.
pub fn parse_reaction_identity(id: &RemoteMessageId) -> Option<(RemoteMessageId, String, String)> {
    let rest = id.as_str().strip_prefix("reaction:")?;
    let (target, rest) = take_prefixed(rest)?;
    let (sender, key) = take_prefixed(rest)?;
    Some((RemoteMessageId::new(target).ok()?, sender.to_owned(), key.to_owned()))
}

fn take_prefixed(s: &str) -> Option<(&str, &str)> {
    let (len, rest) = s.split_once(':')?;
    let len: usize = len.parse().ok()?;
    Some((rest.get(..len)?, rest.get(len..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaction_identities_round_trip() {
        let target = RemoteMessageId::new("msg:1:2").unwrap();
        let id = reaction_identity(&target, "@a:b", "👍:x").unwrap();
        let (t, s, k) = parse_reaction_identity(&id).unwrap();
        assert_eq!((t, s.as_str(), k.as_str()), (target.clone(), "@a:b", "👍:x"));
        assert!(parse_reaction_identity(&RemoteMessageId::new("plain").unwrap()).is_none());
        assert!(reaction_identity(&target, "@a:b", "evil\nkey").is_err());
        assert!(reaction_identity(&target, "@a:b", &"x".repeat(2000)).is_err());
        assert!(parse_reaction_identity(&RemoteMessageId::new("reaction:99:x").unwrap()).is_none());
    }
}
