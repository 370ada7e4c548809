//! Certificate credentials: a client assertion (`private_key_jwt`) checked
//! as the identity platform does, answering its `invalid_client` errors.

use crate::certs::{public_key, x5t, x5t_s256};
use crate::error::IdentityError;
use crate::model::AppRegistration;
use std::collections::HashMap;

/// The only `client_assertion_type` the identity platform accepts.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew allowed on `nbf` and `exp`.
const SKEW_SECS: i64 = 300;

fn invalid(aadsts: u32, description: &str) -> IdentityError {
    IdentityError::invalid_client(aadsts, description)
}

/// Checks the form's client assertion for `client_id` at the token endpoint `audience`.
pub fn check(
    app: &AppRegistration,
    client_id: &str,
    audience: &str,
    form: &HashMap<String, String>,
    assertion: &str,
) -> Result<(), IdentityError> {
    if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(IdentityError::new(
            "invalid_request",
            50027,
            format!("Invalid client_assertion_type: it must be '{JWT_BEARER}'."),
        ));
    }
    let Some(token) = crate::jwt::parse(assertion) else {
        return Err(invalid(50027, "JWT token is invalid or malformed."));
    };
    let by_s256 = token.header.get("x5t#S256").and_then(|v| v.as_str());
    let by_sha1 = token.header.get("x5t").and_then(|v| v.as_str());
    let registered = app.certificates.iter().find(|der| {
        by_s256.is_some_and(|t| t == x5t_s256(der)) || (by_s256.is_none() && by_sha1.is_some_and(|t| t == x5t(der)))
    });
    let Some(der) = registered else {
        return Err(invalid(
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on application.",
        ));
    };
    let key = public_key(der).ok_or_else(|| invalid(700027, "Client assertion failed signature validation."))?;
    if !token.verifies(&key) {
        return Err(invalid(700027, "Client assertion failed signature validation."));
    }
    if token.claim("iss") != Some(client_id) || token.claim("sub") != Some(client_id) {
        return Err(invalid(700021, "Client assertion application identifier doesn't match 'client_id' parameter."));
    }
    if token.claim("aud") != Some(audience) {
        return Err(invalid(700023, "Client assertion audience claim does not match Realm issuer."));
    }
    if token.claim("jti").is_none_or(str::is_empty) {
        return Err(invalid(50027, "JWT token is invalid or malformed: no 'jti' claim."));
    }
    let now = crate::time::now().timestamp();
    let (Some(exp), nbf) = (token.time("exp"), token.time("nbf")) else {
        return Err(invalid(50027, "JWT token is invalid or malformed: no 'exp' claim."));
    };
    if exp + SKEW_SECS < now || nbf.is_some_and(|nbf| nbf - SKEW_SECS > now) {
        return Err(invalid(700024, "Client assertion is not within its valid time range."));
    }
    Ok(())
}
