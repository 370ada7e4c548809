//! The adapter's background work: logging the bot in (until it works),
//! running the realtime sessions, keeping the watched rooms in step with the
//! portals, and saving how far each room was seen.

use brygga_core::Health;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::adapter::{Identity, Shared};
use crate::config::{BotAuth, PuppetMode};
use crate::puppets::Puppets;
use crate::rest::{Creds, Rest, RestError};
use crate::{api, ids, session};

/// How often the portal list is re-read, so rooms linked at run time are watched.
const PORTAL_REFRESH: Duration = Duration::from_secs(5);
/// How often seen points are written to the adapter state.
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// Logs the bot in (password login exchanges for a token) and learns its username.
pub(crate) async fn log_in(rest: &Rest, auth: &BotAuth) -> Result<Identity, RestError> {
    let creds = match auth {
        BotAuth::Token { user_id, token } => Creds { user_id: user_id.clone(), token: token.clone() },
        BotAuth::Password { username, password } => api::login(rest, username, password).await?,
    };
    let username = api::me(rest, &creds).await?;
    Ok(Identity { username, creds, owner: None })
}

/// Logs in (until it works), then runs the bot's session, keeps the watched
/// rooms in step with the portals and saves seen points.
pub(crate) async fn supervise(shared: Arc<Shared>, first: Option<Identity>, cancel: CancellationToken) {
    let mut backoff = brygga_core::Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
    let mut identity = first;
    shared.status.report(Health::Connecting, None);
    while identity.is_none() {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
        match log_in(&shared.rest, &shared.config().auth).await {
            Ok(id) => identity = Some(id),
            Err(RestError::Unauthorized(_)) => shared.bot_refused(),
            Err(err) => {
                tracing::warn!(tenant = %shared.tenant, error = %err, "Rocket.Chat login failed; retrying");
                shared.status.report(Health::TransientError, Some(&format!("login failed: {err}")));
            }
        }
    }
    let bot = identity.expect("loop ends with an identity");
    tracing::info!(tenant = %shared.tenant, bot = %bot.username, "Rocket.Chat bot logged in");
    *shared.bot.write().expect("bot poisoned") = Some(bot.clone());
    refresh_portals(&shared).await;
    tokio::spawn(session::run(shared.clone(), bot, cancel.child_token()));
    start_puppet_sessions(&shared).await;
    let mut refresh = tokio::time::interval(PORTAL_REFRESH);
    let mut save = tokio::time::interval(SAVE_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = refresh.tick() => refresh_portals(&shared).await,
            _ = save.tick() => save_seen(&shared).await,
        }
    }
}

/// In `users` mode every puppet listens, so a person can open a direct chat with one.
async fn start_puppet_sessions(shared: &Arc<Shared>) {
    if shared.config().puppet_mode != PuppetMode::Users {
        return;
    }
    let (Ok(users), Ok(bot)) = (Puppets::index(shared.state.as_ref()).await, shared.bot()) else { return };
    for user in users {
        match shared.puppets.ensure(&shared.rest, shared.state.as_ref(), &bot.creds, &user, None).await {
            Ok(puppet) => shared.ensure_puppet_session(Identity {
                username: puppet.username.clone(),
                creds: puppet.creds(),
                owner: Some(user),
            }),
            Err(err) => tracing::warn!(error = %err, "a puppet could not be loaded"),
        }
    }
}

/// Watches every portal's room: channels and groups by the bot, direct chats by their puppet.
pub(crate) async fn refresh_portals(shared: &Arc<Shared>) {
    let portals = match shared.portals.rooms().await {
        Ok(rooms) => rooms,
        Err(err) => {
            tracing::warn!(error = %err, "listing Rocket.Chat portals failed");
            return;
        }
    };
    let mut added = false;
    for portal in portals {
        match ids::parse_direct(&portal) {
            Some((_, user)) => {
                let rid = match shared.state.get(&format!("dm-rid:{portal}")).await {
                    Ok(Some(rid)) => rid,
                    _ => continue, // Opened from Matrix and not used yet.
                };
                added |= shared.rooms.lock().expect("rooms poisoned").watch(&rid, portal.clone());
                if let Ok(bot) = shared.bot()
                    && let Ok(puppet) =
                        shared.puppets.ensure(&shared.rest, shared.state.as_ref(), &bot.creds, &user, None).await
                {
                    let identity =
                        Identity { username: puppet.username.clone(), creds: puppet.creds(), owner: Some(user) };
                    shared.ensure_puppet_session(identity);
                }
            }
            None if ids::is_room_id(portal.as_str()) => {
                added |= shared.rooms.lock().expect("rooms poisoned").watch(portal.as_str(), portal.clone());
            }
            None => tracing::warn!(portal = %portal, "portal room is not a Rocket.Chat room id"),
        }
    }
    if added {
        shared.rooms_changed.send_modify(|g| *g += 1);
    }
}

/// Writes changed seen points to the adapter state.
pub(crate) async fn save_seen(shared: &Shared) {
    let dirty = shared.rooms.lock().expect("rooms poisoned").take_dirty();
    for (rid, ts) in dirty {
        if let Err(err) = shared.state.put(&format!("seen:{rid}"), Some(&ts.to_string())).await {
            tracing::warn!(error = %err, "saving a Rocket.Chat catch-up point failed");
        }
    }
}
