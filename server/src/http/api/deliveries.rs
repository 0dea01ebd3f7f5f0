use app::{
    db::deliveries::{self, ListError},
    models::{DeliveryQuery, DeliveryRow, Page},
    state::AppState,
};
use axum::{extract::State, Json};

use crate::http::problem::{ApiQuery, Problem};

/// `GET /api/v1/deliveries`: the delivery log, newest first, keyset-paginated.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<Page<DeliveryRow>>, Problem> {
    if query.limit.is_some_and(|l| l == 0 || l > deliveries::MAX_PAGE_SIZE) {
        return Err(Problem::invalid(
            "limit",
            format!("limit must be between 1 and {}", deliveries::MAX_PAGE_SIZE),
        ));
    }
    deliveries::list(&state.db, &query).await.map(Json).map_err(|e| match e {
        ListError::BadCursor => Problem::invalid("cursor", e.to_string()),
        ListError::Db(e) => e.into(),
    })
}

/// `GET /api/v1/deliveries/{id}`: one delivery with its payload and every attempt.
pub async fn get(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<app::models::DeliveryDetail>, Problem> {
    let missing = || Problem::not_found(format!("No delivery has the id `{id}`."));
    let parsed: app::models::DeliveryId = id.parse().map_err(|_| missing())?;
    deliveries::detail(&state.db, parsed).await?.map(Json).ok_or_else(missing)
}
