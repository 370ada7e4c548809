//! Which bridge users hold room keys of which room, so an event is decrypted
//! by a device that can. Kept in the bot's store: after a restart, keys
//! received before it are still found.

use std::collections::HashMap;

use matrix_sdk_common::ruma::OwnedUserId;
use tokio::sync::Mutex;

use crate::CryptoError;
use crate::device::Device;

/// The holders of each room's keys, as far as loaded.
#[derive(Default)]
pub(crate) struct Holders(Mutex<HashMap<String, Vec<OwnedUserId>>>);

fn key(room: &str) -> String {
    format!("brygga.holders.{room}")
}

impl Holders {
    /// Notes that `user` received a key of `room`, in `bot`'s store.
    pub(crate) async fn record(&self, bot: &Device, room: &str, user: &OwnedUserId) -> Result<(), CryptoError> {
        let mut map = self.0.lock().await;
        let holders = load(&mut map, bot, room).await?;
        if holders.contains(user) {
            return Ok(());
        }
        holders.push(user.clone());
        let bytes = serde_json::to_vec(holders).map_err(CryptoError::store)?;
        bot.machine.store().set_custom_value(&key(room), bytes).await.map_err(CryptoError::store)
    }

    /// The users known to hold keys of `room`.
    pub(crate) async fn of(&self, bot: &Device, room: &str) -> Result<Vec<OwnedUserId>, CryptoError> {
        let mut map = self.0.lock().await;
        load(&mut map, bot, room).await.map(|holders| holders.clone())
    }
}

async fn load<'a>(
    map: &'a mut HashMap<String, Vec<OwnedUserId>>,
    bot: &Device,
    room: &str,
) -> Result<&'a mut Vec<OwnedUserId>, CryptoError> {
    if !map.contains_key(room) {
        let stored = bot.machine.store().get_custom_value(&key(room)).await.map_err(CryptoError::store)?;
        let holders = stored.and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        map.insert(room.to_owned(), holders);
    }
    Ok(map.get_mut(room).expect("just inserted"))
}
