use app::{
    db::deliveries,
    models::{DeliveryQuery, DeliveryRow, Page},
    state::AppState,
};
use axum::{extract::State, Json};

use crate::http::problem::{check_limit, ApiQuery, Problem};

/// `GET /api/v1/deliveries`: the delivery log, newest first, keyset-paginated.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<Page<DeliveryRow>>, Problem> {
    check_limit(query.limit, deliveries::DEFAULT_PAGE_SIZE, deliveries::MAX_PAGE_SIZE)?;
    Ok(Json(deliveries::list(&state.db, &query).await?))
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
