use leptos::prelude::*;

use crate::{
    error::AppError,
    models::{DeliveryQuery, DeliveryRow, Page},
};

#[server(prefix = "/rpc", endpoint = "list_deliveries")]
pub async fn list_deliveries(query: DeliveryQuery) -> Result<Page<DeliveryRow>, AppError> {
    use crate::db::deliveries::{list, ListError};

    crate::auth::current_user().await?;
    let state = expect_context::<crate::state::AppState>();
    list(&state.db, &query).await.map_err(|e| match e {
        ListError::BadCursor => AppError::Invalid { field: "cursor".into(), message: e.to_string() },
        ListError::Db(e) => e.into(),
    })
}
