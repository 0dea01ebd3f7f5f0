use leptos::prelude::*;

use crate::{error::AppError, models::CurrentUser};

/// What every page says at its top: why Herald cannot accept or deliver events right now (the
/// database cannot be read or written: the same check as `GET /api/v1/health`), and, for a
/// signed-in user, the webhooks deactivated after too many errors.
#[server(prefix = "/rpc", endpoint = "health")]
pub async fn get_banners() -> Result<crate::models::Banners, AppError> {
    let state = super::state();
    if let Err(why) = crate::db::health::check(&state.db, &state.db_health).await {
        return Ok(crate::models::Banners { database: Some(why), deactivated: Vec::new() });
    }
    if crate::auth::current_user().await.is_err() {
        return Ok(Default::default());
    }
    Ok(crate::models::Banners {
        database: None,
        deactivated: crate::db::webhooks::deactivated(&state.db).await?,
    })
}

#[server(prefix = "/rpc", endpoint = "current_user")]
pub async fn get_current_user() -> Result<CurrentUser, AppError> {
    crate::auth::current_user().await
}
