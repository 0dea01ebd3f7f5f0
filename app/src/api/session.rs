use leptos::prelude::*;

use crate::{error::AppError, models::CurrentUser};

/// Why Herald cannot accept or deliver events right now (the database cannot be read or
/// written), or None while all is well: the same check as `GET /api/v1/health`.
#[server(prefix = "/rpc", endpoint = "health")]
pub async fn get_health_problem() -> Result<Option<String>, AppError> {
    let state = super::state();
    Ok(crate::db::health::check(&state.db, &state.db_health).await.err())
}

#[server(prefix = "/rpc", endpoint = "current_user")]
pub async fn get_current_user() -> Result<CurrentUser, AppError> {
    crate::auth::current_user().await
}
