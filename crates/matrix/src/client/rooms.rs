//! Ghost registration, portal room creation and joins.

use brygga_core::matrix::BRIDGE_STATE_TYPES;
use brygga_core::{BridgeError, BridgeInfo, GhostProfile, MatrixRoomId, MatrixUserId, RoomSpec};
use ruma::api::client::account::register::{self, LoginType};
use ruma::api::client::alias::get_alias;
use ruma::api::client::membership::invite_user::v3::{InvitationRecipient, InviteUserId};
use ruma::api::client::membership::{invite_user, join_room_by_id};
use ruma::api::client::profile::set_profile_field;
use ruma::api::client::room::create_room::{self, v3::RoomPreset};
use ruma::events::AnyInitialStateEvent;
use ruma::profile::ProfileFieldValue;
use ruma::serde::Raw;
use ruma::{OwnedMxcUri, OwnedRoomAliasId, OwnedRoomId, OwnedUserId};
use serde_json::json;

use super::{MatrixClient, Versions, maybe_created, room_id, user_id};

impl MatrixClient {
    pub(super) async fn register_and_profile(
        &self,
        user: &MatrixUserId,
        profile: &GhostProfile,
    ) -> Result<(), BridgeError> {
        if user.server_name() != self.server_name {
            return Err(BridgeError::permanent("ghost is not on this homeserver"));
        }
        let ruma_user = user_id(user)?;
        let mut request = register::v3::Request::new();
        request.username = Some(user.localpart().to_owned());
        request.inhibit_login = true;
        request.login_type = Some(LoginType::ApplicationService);
        match self.http.call("register", request, None, Versions::Modern).await {
            Ok(_) => tracing::debug!(user = %user, "registered ghost"),
            Err(err) if err.errcode() == Some("M_USER_IN_USE") => {}
            Err(err) => return Err(err.into_bridge("register")),
        }

        let previous = self.profiles.lock().unwrap_or_else(|e| e.into_inner()).get(user.as_str()).cloned();
        if let Some(name) = &profile.display_name
            && previous.as_ref().and_then(|p| p.display_name.as_ref()) != Some(name)
        {
            let value = ProfileFieldValue::DisplayName(name.clone());
            self.set_profile(&ruma_user, value, "set displayname").await?;
        }
        if let Some(avatar) = &profile.avatar_mxc
            && previous.as_ref().and_then(|p| p.avatar_mxc.as_ref()) != Some(avatar)
        {
            let mxc = OwnedMxcUri::from(avatar.as_str());
            if mxc.validate().is_err() {
                return Err(BridgeError::permanent("ghost avatar is not an mxc URI"));
            }
            self.set_profile(&ruma_user, ProfileFieldValue::AvatarUrl(mxc), "set avatar_url").await?;
        }
        let mut profiles = self.profiles.lock().unwrap_or_else(|e| e.into_inner());
        let entry = profiles.entry(user.as_str().to_owned()).or_default();
        if profile.display_name.is_some() {
            entry.display_name.clone_from(&profile.display_name);
        }
        if profile.avatar_mxc.is_some() {
            entry.avatar_mxc.clone_from(&profile.avatar_mxc);
        }
        Ok(())
    }

    async fn set_profile(&self, user: &OwnedUserId, value: ProfileFieldValue, what: &str) -> Result<(), BridgeError> {
        let request = set_profile_field::v3::Request::new(user.clone(), value);
        self.http.call(what, request, Some(user), Versions::Modern).await.map(|_| ()).map_err(|e| e.into_bridge(what))
    }

    pub(super) async fn find_or_create_room(&self, spec: &RoomSpec) -> Result<MatrixRoomId, BridgeError> {
        let alias = OwnedRoomAliasId::try_from(format!("#{}:{}", spec.alias_localpart, self.server_name))
            .map_err(|_| BridgeError::permanent("invalid portal alias"))?;
        if !spec.alias_is_free
            && let Some(room) = self.resolve_alias(&alias).await?
        {
            return Ok(room);
        }
        match self.create_room(spec).await {
            Ok(room) => to_core_room(room),
            // Creation is not idempotent but the alias is: if the room may
            // exist (alias taken, or the answer was lost), look it up again.
            Err(err) if maybe_created(&err) => match self.resolve_alias(&alias).await? {
                Some(room) => Ok(room),
                None => Err(err.into_bridge("create room")),
            },
            Err(err) => Err(err.into_bridge("create room")),
        }
    }

    async fn resolve_alias(&self, alias: &OwnedRoomAliasId) -> Result<Option<MatrixRoomId>, BridgeError> {
        let request = get_alias::v3::Request::new(alias.clone());
        match self.http.call("resolve alias", request, None, Versions::Modern).await {
            Ok(response) => to_core_room(response.room_id).map(Some),
            Err(err) if err.status() == Some(404) => Ok(None),
            Err(err) => Err(err.into_bridge("resolve alias")),
        }
    }

    async fn create_room(&self, spec: &RoomSpec) -> Result<OwnedRoomId, super::CallError> {
        let mut request = create_room::v3::Request::new();
        request.room_alias_name = Some(spec.alias_localpart.clone());
        request.name.clone_from(&spec.name);
        request.preset = Some(if spec.public { RoomPreset::PublicChat } else { RoomPreset::PrivateChat });
        request.is_direct = false;
        request.invite = spec.invite.iter().filter_map(|u| OwnedUserId::try_from(u.as_str()).ok()).collect();
        request.initial_state = bridge_state(&spec.bridge, &self.bot)
            .map_err(|_| super::CallError::Invalid("cannot encode bridge state".into()))?;
        if let Some(acl) = server_acl(&spec.allowed_servers, self.bot.server_name()) {
            request.initial_state.push(acl);
        }
        if spec.encrypted {
            request.initial_state.push(encryption_state());
        }
        // A direct chat is the ghost's own room with one Matrix user, as clients expect of a DM.
        let mut creator = self.bot.clone();
        if let Some(direct) = &spec.direct {
            request.preset = Some(RoomPreset::TrustedPrivateChat);
            request.is_direct = true;
            request.invite = OwnedUserId::try_from(direct.peer.as_str()).ok().into_iter().collect();
            creator = direct.ghost.clone();
        }
        let as_user =
            OwnedUserId::try_from(creator.as_str()).map_err(|_| super::CallError::Invalid("bad creator".into()))?;
        let on_behalf = (creator != self.bot).then_some(&*as_user);
        let response = self.http.call("create room", request, on_behalf, Versions::Modern).await?;
        let room = response.room_id;
        if let Ok(core) = to_core_room(room.clone()) {
            self.remember_joined(&core, &creator, true);
        }
        if let (true, Some(e2ee)) = (spec.encrypted, &self.e2ee) {
            e2ee.set_encryption(room.as_str(), brygga_core::RoomEncryption::Encrypted);
        }
        Ok(room)
    }

    pub(super) async fn join(&self, room: &MatrixRoomId, user: &MatrixUserId) -> Result<(), BridgeError> {
        if self.is_joined(room, user) {
            return Ok(());
        }
        let ruma_room = room_id(room)?;
        let ruma_user = user_id(user)?;
        match self.join_once(&ruma_room, &ruma_user).await {
            Ok(()) => {}
            Err(err) if err.errcode() == Some("M_FORBIDDEN") && *user != self.bot => {
                // Portal rooms are invite-only: the bot lets the ghost in.
                let recipient = InvitationRecipient::UserId(InviteUserId::new(ruma_user.clone()));
                let invite = invite_user::v3::Request::new(ruma_room.clone(), recipient);
                match self.http.call("invite", invite, None, Versions::Modern).await {
                    Ok(_) => {}
                    // Already invited or joined is refused too; the join below decides.
                    Err(err @ super::CallError::Refused { .. }) => {
                        tracing::debug!(errcode = err.errcode(), "invite refused; trying to join anyway");
                    }
                    Err(err) => return Err(err.into_bridge("invite")),
                }
                self.join_once(&ruma_room, &ruma_user).await.map_err(|e| e.into_bridge("join"))?;
            }
            Err(err) => return Err(err.into_bridge("join")),
        }
        self.remember_joined(room, user, true);
        Ok(())
    }

    async fn join_once(&self, room: &OwnedRoomId, user: &OwnedUserId) -> Result<(), super::CallError> {
        let request = join_room_by_id::v3::Request::new(room.clone());
        self.http.call("join", request, Some(user), Versions::Modern).await.map(|_| ())
    }
}

fn to_core_room(room: OwnedRoomId) -> Result<MatrixRoomId, BridgeError> {
    MatrixRoomId::new(room.as_str()).map_err(|_| BridgeError::permanent("homeserver returned an invalid room id"))
}

/// MSC2346 bridge info under both its stable and legacy event types.
fn bridge_state(info: &BridgeInfo, bot: &MatrixUserId) -> Result<Vec<Raw<AnyInitialStateEvent>>, serde_json::Error> {
    let state_key = info.state_key();
    let content = info.content(bot);
    BRIDGE_STATE_TYPES
        .iter()
        .map(|kind| {
            let event = json!({ "type": kind, "state_key": state_key, "content": content });
            serde_json::value::to_raw_value(&event).map(Raw::from_json)
        })
        .collect()
}

/// Encryption from the start, so nothing is ever sent in clear.
fn encryption_state() -> Raw<AnyInitialStateEvent> {
    let event = json!({
        "type": "m.room.encryption",
        "state_key": "",
        "content": { "algorithm": crate::e2ee::MEGOLM },
    });
    Raw::from_json(serde_json::value::to_raw_value(&event).expect("a JSON literal serialises"))
}

/// The room's server ACL when the tenant limits federation: its servers
/// and the bridge's own, no IP literals.
fn server_acl(allowed: &[String], own: &str) -> Option<Raw<AnyInitialStateEvent>> {
    if allowed.is_empty() {
        return None;
    }
    let event = json!({
        "type": "m.room.server_acl",
        "state_key": "",
        "content": brygga_core::matrix::server_acl_content(allowed, own),
    });
    serde_json::value::to_raw_value(&event).ok().map(Raw::from_json)
}

#[cfg(test)]
mod tests {
    use brygga_core::{AdapterKind, RemoteRoomId, TenantId};

    use super::*;

    #[test]
    fn bridge_state_escapes_slashes_and_names_both_types() {
        let info = BridgeInfo {
            kind: AdapterKind::new("xmpp").unwrap(),
            tenant: TenantId::new("fk").unwrap(),
            room: RemoteRoomId::new("room/with%slash").unwrap(),
            room_name: Some("Room".into()),
            encrypted: false,
        };
        let bot = MatrixUserId::new("@bot:hs").unwrap();
        let events = bridge_state(&info, &bot).unwrap();
        let values: Vec<serde_json::Value> =
            events.iter().map(|e| serde_json::from_str(e.json().get()).unwrap()).collect();
        assert_eq!(values[0]["type"], "m.bridge");
        assert_eq!(values[1]["type"], "uk.half-shot.bridge");
        assert_eq!(values[0]["state_key"], "xmpp/fk/room%2Fwith%25slash");
        assert_eq!(values[0]["content"]["channel"]["id"], "room/with%slash");
        assert_eq!(values[0]["content"]["bridgebot"], "@bot:hs");
    }
}
