//! One-to-one chats: an XMPP contact and a Matrix user, whose puppet is
//! `<escaped mxid>@<component domain>`. This path needs no group chat, so it
//! also serves gateways that carry only one-to-one IM and presence, such as
//! Skype for Business Server's XMPP gateway.
//!
//! The portal's remote room is written `"<contact bare JID> <Matrix user id>"`:
//! neither part can hold a space.

use brygga_core::{MatrixUserId, RemoteRoomId, RemoteUserId};
use tokio_xmpp::jid::BareJid;

/// The remote room of the direct chat between `contact` and `user`.
pub(crate) fn room_id(contact: &BareJid, user: &MatrixUserId) -> Option<RemoteRoomId> {
    RemoteRoomId::new(format!("{contact} {user}")).ok()
}

/// The contact and the Matrix user of a direct chat's room, if it is one.
pub(crate) fn parse(room: &RemoteRoomId) -> Option<(BareJid, MatrixUserId)> {
    let (contact, user) = room.as_str().split_once(' ')?;
    let contact = BareJid::new(contact).ok()?;
    contact.node()?;
    Some((contact, MatrixUserId::new(user).ok()?))
}

/// The contact JID a ghost's remote id names, if a direct chat can reach it:
/// a bare JID of a user, not an occupant of a group chat.
pub(crate) fn contact_of(remote: &RemoteUserId, our_domain: &BareJid) -> Option<BareJid> {
    let jid = BareJid::new(remote.as_str()).ok()?;
    jid.node()?;
    (jid.domain() != our_domain.domain()).then_some(jid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_rooms_round_trip() {
        let contact = BareJid::new("bob@localhost").unwrap();
        let user = MatrixUserId::new("@alice:example.org").unwrap();
        let room = room_id(&contact, &user).unwrap();
        assert_eq!(room.as_str(), "bob@localhost @alice:example.org");
        assert_eq!(parse(&room), Some((contact, user)));
        assert_eq!(parse(&RemoteRoomId::new("lobby@conference.localhost").unwrap()), None);
    }

    #[test]
    fn only_user_jids_outside_our_domain_are_contacts() {
        let ours = BareJid::new("matrix.localhost").unwrap();
        let id = |s: &str| RemoteUserId::new(s).unwrap();
        assert!(contact_of(&id("bob@localhost"), &ours).is_some());
        assert!(contact_of(&id("lobby@conference.localhost/Bob"), &ours).is_none());
        assert!(contact_of(&id("localhost"), &ours).is_none());
        assert!(contact_of(&id("x@matrix.localhost"), &ours).is_none());
    }
}
