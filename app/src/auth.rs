//! Who is asking: session cookies for people, bearer keys for integrators.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{error::AppError, models::CurrentUser, state::AppState};

pub const SESSION_COOKIE: &str = "herald_session";

/// A random URL-safe token of `bytes` bytes of entropy.
pub fn new_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Tokens are long random strings, so a plain SHA-256 is enough to store them safely.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The session token carried by a request's Cookie header.
pub fn session_token(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

/// The signed-in user of the current server-function call or page render.
pub async fn current_user() -> Result<CurrentUser, AppError> {
    let state = leptos::prelude::use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from the Leptos context");
        AppError::Internal
    })?;
    let headers: axum::http::HeaderMap = leptos_axum::extract().await.map_err(|e| {
        tracing::error!(error = %e, "cannot read request headers");
        AppError::Internal
    })?;
    let token = session_token(&headers).ok_or(AppError::Unauthorized)?;
    crate::db::sessions::user_for_token(&state.db, &token).await?.ok_or(AppError::Unauthorized)
}

/// Like [`current_user`], for actions that change data.
pub async fn current_admin() -> Result<CurrentUser, AppError> {
    let user = current_user().await?;
    if user.role.can_write() {
        Ok(user)
    } else {
        Err(AppError::Forbidden)
    }
}
