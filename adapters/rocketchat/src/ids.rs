//! Ids the bridge chooses on Rocket.Chat: message ids derived from Matrix
//! events (so a retried send is recognised), puppet usernames, and the
//! notation of direct-chat portals.

use brygga_core::{MatrixUserId, RemoteRoomId, RemoteUserId};
use sha2::{Digest, Sha256};

/// Meteor's `Random.id()` alphabet: no look-alike characters.
const METEOR_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";
/// Length of Meteor ids, as Rocket.Chat creates them.
const METEOR_ID_LEN: usize = 17;

/// The 17-character Meteor-style message id of part `part` of the outbound
/// event with transaction id `txn_id`: the same event always gets the same id.
pub(crate) fn message_id(txn_id: &str, part: usize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"brygga-rocketchat-message\0");
    hasher.update(txn_id.as_bytes());
    hasher.update(part.to_be_bytes());
    let digest = hasher.finalize();
    // 17 of 32 bytes, each reduced to 55 symbols: about 98 bits of the hash survive.
    digest[..METEOR_ID_LEN].iter().map(|b| METEOR_ALPHABET[usize::from(*b) % METEOR_ALPHABET.len()] as char).collect()
}

/// Whether `id` looks like a Rocket.Chat room id (Meteor ids, `GENERAL`, DM ids of two user ids).
pub(crate) fn is_room_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The Rocket.Chat username of a Matrix user's puppet: `prefix` plus the
/// Matrix id without `@`, with `:` written as `.` (`@alice:hs.example` ->
/// `matrix.alice.hs.example`) and characters usernames cannot hold as `-`.
pub(crate) fn puppet_username(prefix: &str, user: &MatrixUserId) -> String {
    let raw = format!("{}.{}", user.localpart(), user.server_name());
    let cleaned: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' }).collect();
    format!("{prefix}{cleaned}")
}

/// Separates the two halves of a direct-chat portal's room id; neither an
/// RC username nor a Matrix id holds a space.
const DIRECT_SEPARATOR: char = ' ';

/// The portal room of the direct chat between RC user `remote` (a username)
/// and Matrix user `matrix`: `"<username> <@matrix:user>"`.
pub(crate) fn direct_room(remote: &RemoteUserId, matrix: &MatrixUserId) -> Option<RemoteRoomId> {
    if remote.as_str().contains(DIRECT_SEPARATOR) {
        return None;
    }
    RemoteRoomId::new(format!("{remote}{DIRECT_SEPARATOR}{matrix}")).ok()
}

/// The RC username and Matrix user of a direct-chat portal, if it is one.
pub(crate) fn parse_direct(room: &RemoteRoomId) -> Option<(RemoteUserId, MatrixUserId)> {
    let (remote, matrix) = room.as_str().split_once(DIRECT_SEPARATOR)?;
    Some((RemoteUserId::new(remote).ok()?, MatrixUserId::new(matrix).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_deterministic_meteor_ids() {
        let a = message_id("brygga.0123", 0);
        assert_eq!(a, message_id("brygga.0123", 0));
        assert_ne!(a, message_id("brygga.0123", 1));
        assert_ne!(a, message_id("brygga.0124", 0));
        assert_eq!(a.len(), 17);
        assert!(a.bytes().all(|b| METEOR_ALPHABET.contains(&b)), "{a}");
        assert!(is_room_id(&a));
    }

    #[test]
    fn room_ids_are_checked() {
        assert!(is_room_id("GENERAL"));
        assert!(is_room_id("abcDEF23456789xyzabcDEF23456789xyzQ"));
        assert!(!is_room_id(""));
        assert!(!is_room_id("#general"));
        assert!(!is_room_id("a b"));
    }

    #[test]
    fn puppet_usernames_are_readable_and_safe() {
        let user = MatrixUserId::new("@alice:hs.example").unwrap();
        assert_eq!(puppet_username("matrix.", &user), "matrix.alice.hs.example");
        let odd = MatrixUserId::new("@a/b=c:hs:8448").unwrap();
        assert_eq!(puppet_username("mx_", &odd), "mx_a-b-c.hs-8448");
    }

    #[test]
    fn direct_rooms_round_trip() {
        let bob = RemoteUserId::new("bob").unwrap();
        let alice = MatrixUserId::new("@alice:hs").unwrap();
        let room = direct_room(&bob, &alice).unwrap();
        assert_eq!(room.as_str(), "bob @alice:hs");
        assert_eq!(parse_direct(&room), Some((bob, alice)));
        assert_eq!(parse_direct(&RemoteRoomId::new("GENERAL").unwrap()), None);
        assert_eq!(direct_room(&RemoteUserId::new("b b").unwrap(), &MatrixUserId::new("@a:h").unwrap()), None);
    }
}
