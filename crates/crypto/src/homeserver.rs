//! The crypto machines' requests, sent as the appservice masquerading as one
//! user's device (MSC3202 `device_id`), through the bridge's own HTTP client.

use std::borrow::Cow;

use async_trait::async_trait;
use matrix_sdk_common::ruma::api::auth_scheme::{AuthScheme, SendAccessToken};
use matrix_sdk_common::ruma::api::path_builder::{PathBuilder, SinglePath, VersionHistory};
use matrix_sdk_common::ruma::api::{
    AppserviceUserIdentity, IncomingResponse, MatrixVersion, OutgoingRequest, OutgoingRequestAppserviceExt,
    SupportedVersions,
};
use matrix_sdk_common::ruma::{DeviceId, UserId};

use crate::CryptoError;

/// The homeserver as the crypto machines need it: the appservice's address,
/// token and a way to send a prepared request (with the bridge's retries).
#[async_trait]
pub trait Homeserver: Send + Sync {
    /// The homeserver's base URL.
    fn base_url(&self) -> &str;

    /// The appservice token (`as_token`).
    fn token(&self) -> &str;

    /// Sends a request; answers any HTTP response, or a transport failure.
    async fn send(&self, what: &str, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, String>;
}

/// Supplies a path builder's input from the versions we target.
pub(crate) trait PathInput: PathBuilder {
    fn input(versions: &SupportedVersions) -> Self::Input<'_>;
}

impl PathInput for VersionHistory {
    fn input(versions: &SupportedVersions) -> Cow<'_, SupportedVersions> {
        Cow::Borrowed(versions)
    }
}

impl PathInput for SinglePath {
    fn input(_: &SupportedVersions) {}
}

/// Sends one ruma request as `user`'s `device` and decodes the answer.
pub(crate) async fn call<R>(
    homeserver: &dyn Homeserver,
    what: &str,
    request: R,
    user: &UserId,
    device: Option<&DeviceId>,
) -> Result<R::IncomingResponse, CryptoError>
where
    R: OutgoingRequest,
    for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    R::PathBuilder: PathInput,
{
    let versions =
        SupportedVersions { versions: [MatrixVersion::V1_11].into_iter().collect(), features: Default::default() };
    let mut identity = AppserviceUserIdentity::new(user);
    identity.device_id = device;
    let http_request = request
        .try_into_http_request_with_identity::<Vec<u8>>(
            homeserver.base_url(),
            SendAccessToken::Always(homeserver.token()),
            identity,
            <R::PathBuilder as PathInput>::input(&versions),
        )
        .map_err(|e| CryptoError::Homeserver(format!("{what}: cannot build request: {e}")))?;
    let response =
        homeserver.send(what, http_request).await.map_err(|e| CryptoError::Homeserver(format!("{what}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        let errcode = serde_json::from_slice::<serde_json::Value>(response.body())
            .ok()
            .and_then(|v| v.get("errcode").and_then(|c| c.as_str()).map(str::to_owned))
            .unwrap_or_default();
        return Err(CryptoError::Homeserver(format!("{what}: HTTP {} {errcode}", status.as_u16())));
    }
    R::IncomingResponse::try_from_http_response(response)
        // The decoder's message may quote key material: keep it out.
        .map_err(|_| CryptoError::Homeserver(format!("{what}: unexpected response")))
}
