use leptos::prelude::*;

use crate::{error::AppError, models::CurrentUser};

#[server(prefix = "/rpc", endpoint = "current_user")]
pub async fn get_current_user() -> Result<CurrentUser, AppError> {
    crate::auth::current_user().await
}
