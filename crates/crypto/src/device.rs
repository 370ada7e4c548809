//! One bridge user's device: its Olm machine over its own encrypted store,
//! and the requests the machine asks the homeserver for.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use matrix_sdk_common::ruma::api::client::{
    device::update_device, keys::claim_keys, keys::get_keys, keys::upload_signatures, message::send_message_event,
    to_device::send_event_to_device,
};
use matrix_sdk_common::ruma::{OwnedDeviceId, OwnedRoomId, OwnedUserId, TransactionId, UserId};
use matrix_sdk_crypto::OlmMachine;
use matrix_sdk_crypto::types::requests::{AnyOutgoingRequest, KeysQueryRequest, ToDeviceRequest};
use matrix_sdk_sqlite::{SqliteCryptoStore, SqliteStoreConfig};

use crate::CryptoError;
use crate::homeserver::{Homeserver, call};

/// A user's device and what serialises work on it.
pub(crate) struct Device {
    pub(crate) machine: OlmMachine,
    /// One flush of outgoing requests at a time: a second would send the
    /// same key upload twice.
    flushing: tokio::sync::Mutex<()>,
    /// One room key share per room at a time.
    rooms: Mutex<HashMap<OwnedRoomId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Device {
    /// Opens (or creates) the device's store, makes sure the homeserver
    /// knows the device (MSC4190) and uploads its keys.
    pub(crate) async fn open(
        homeserver: &dyn Homeserver,
        dir: &Path,
        key: &[u8; 32],
        user: OwnedUserId,
        device_id: OwnedDeviceId,
    ) -> Result<Self, CryptoError> {
        std::fs::create_dir_all(dir).map_err(|e| CryptoError::Store(format!("cannot create the crypto store: {e}")))?;
        let config = SqliteStoreConfig::with_low_memory_config(dir).key(Some(key));
        let store = SqliteCryptoStore::open_with_config(&config)
            .await
            .map_err(|e| CryptoError::Store(format!("cannot open the crypto store: {e}")))?;
        let machine = OlmMachine::with_store(&user, &device_id, store, None).await.map_err(CryptoError::store)?;
        // Device lists may have changed while this machine was not loaded.
        machine.mark_all_tracked_users_as_dirty().await.map_err(CryptoError::store)?;
        let mut request = update_device::v3::Request::new(device_id.clone());
        request.display_name = Some("brygga bridge".to_owned());
        call(homeserver, "create device", request, &user, None).await?;
        let device = Self { machine, flushing: tokio::sync::Mutex::new(()), rooms: Mutex::default() };
        device.flush(homeserver).await?;
        Ok(device)
    }

    pub(crate) fn user_id(&self) -> &UserId {
        self.machine.user_id()
    }

    /// The lock serialising key shares of one room.
    pub(crate) fn room_lock(&self, room: &OwnedRoomId) -> Arc<tokio::sync::Mutex<()>> {
        let mut rooms = self.rooms.lock().expect("room locks poisoned");
        rooms.entry(room.clone()).or_default().clone()
    }

    /// Sends every request the machine has queued (key uploads, key
    /// queries, to-device messages) and hands it the answers.
    pub(crate) async fn flush(&self, homeserver: &dyn Homeserver) -> Result<(), CryptoError> {
        let _one = self.flushing.lock().await;
        // Answers can queue new requests (a key query after an upload);
        // a few rounds settle it.
        for _ in 0..4 {
            let requests = self.machine.outgoing_requests().await.map_err(CryptoError::store)?;
            if requests.is_empty() {
                return Ok(());
            }
            for request in requests {
                self.send(homeserver, request.request_id(), request.request()).await?;
            }
        }
        Ok(())
    }

    async fn send(
        &self,
        homeserver: &dyn Homeserver,
        id: &TransactionId,
        request: &AnyOutgoingRequest,
    ) -> Result<(), CryptoError> {
        match request {
            AnyOutgoingRequest::KeysUpload(r) => {
                let answer = self.call(homeserver, "upload keys", r.clone()).await?;
                self.mark(id, &answer).await
            }
            AnyOutgoingRequest::KeysQuery(r) => self.query_keys(homeserver, id, r).await,
            AnyOutgoingRequest::KeysClaim(r) => {
                let answer = self.call(homeserver, "claim keys", r.clone()).await?;
                self.mark(id, &answer).await
            }
            AnyOutgoingRequest::ToDeviceRequest(r) => self.send_to_device(homeserver, r).await,
            AnyOutgoingRequest::SignatureUpload(r) => {
                let answer: upload_signatures::v3::Response =
                    self.call(homeserver, "upload signatures", r.clone()).await?;
                self.mark(id, &answer).await
            }
            AnyOutgoingRequest::RoomMessage(r) => {
                // In-room verification requests: the bridge's devices do not
                // verify interactively; answering would only mislead.
                tracing::debug!(room = %r.room_id, "not sending an in-room verification message");
                let answer = send_message_event::v3::Response::new("$not-sent:invalid".try_into().expect("valid id"));
                self.mark(id, &answer).await
            }
        }
    }

    /// Answers a key query.
    pub(crate) async fn query_keys(
        &self,
        homeserver: &dyn Homeserver,
        id: &TransactionId,
        request: &KeysQueryRequest,
    ) -> Result<(), CryptoError> {
        let mut ruma_request = get_keys::v3::Request::new();
        ruma_request.device_keys = request.device_keys.clone();
        ruma_request.timeout = request.timeout;
        let answer = self.call(homeserver, "query keys", ruma_request).await?;
        self.mark(id, &answer).await
    }

    /// Sends a to-device request (room keys, key requests) and marks it sent.
    pub(crate) async fn send_to_device(
        &self,
        homeserver: &dyn Homeserver,
        request: &ToDeviceRequest,
    ) -> Result<(), CryptoError> {
        let ruma_request = send_event_to_device::v3::Request::new_raw(
            request.event_type.clone(),
            request.txn_id.clone(),
            request.messages.clone(),
        );
        let answer = self.call(homeserver, "send to-device", ruma_request).await?;
        self.mark(&request.txn_id, &answer).await
    }

    /// Claims one-time keys and opens the Olm sessions.
    pub(crate) async fn claim_keys(
        &self,
        homeserver: &dyn Homeserver,
        id: &TransactionId,
        request: claim_keys::v3::Request,
    ) -> Result<(), CryptoError> {
        let answer = self.call(homeserver, "claim keys", request).await?;
        self.mark(id, &answer).await
    }

    async fn call<R>(
        &self,
        homeserver: &dyn Homeserver,
        what: &str,
        request: R,
    ) -> Result<R::IncomingResponse, CryptoError>
    where
        R: matrix_sdk_common::ruma::api::OutgoingRequest,
        for<'a> R::Authentication: matrix_sdk_common::ruma::api::auth_scheme::AuthScheme<
                Input<'a> = matrix_sdk_common::ruma::api::auth_scheme::SendAccessToken<'a>,
            >,
        R::PathBuilder: crate::homeserver::PathInput,
    {
        call(homeserver, what, request, self.machine.user_id(), Some(self.machine.device_id())).await
    }

    async fn mark<'a, A>(&self, id: &TransactionId, answer: &'a A) -> Result<(), CryptoError>
    where
        &'a A: Into<matrix_sdk_crypto::types::requests::AnyIncomingResponse<'a>>,
    {
        self.machine.mark_request_as_sent(id, answer).await.map_err(|e| CryptoError::Olm(e.to_string()))
    }
}
