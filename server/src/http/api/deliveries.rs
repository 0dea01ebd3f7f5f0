use app::{
    db::deliveries,
    models::{DeliveryQuery, DeliveryRow, Page},
    state::AppState,
};
use axum::{extract::State, Json};

use crate::http::problem::{check_limit, ApiQuery, Problem};

/// `GET /api/v1/deliveries`: the delivery log, newest first, keyset-paginated.
#[utoipa::path(get, operation_id = "list_deliveries", path = "/deliveries", tag = "deliveries", params(DeliveryQuery),
    responses((status = 200, description = "OK", body = Page<DeliveryRow>), (status = 422, description = "Invalid input; `field` names what is wrong", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<Page<DeliveryRow>>, Problem> {
    check_limit(query.limit, deliveries::DEFAULT_PAGE_SIZE, deliveries::MAX_PAGE_SIZE)?;
    Ok(Json(deliveries::list(&state.db, &query).await?))
}

/// `GET /api/v1/deliveries/{id}`: one delivery with its payload and every attempt.
#[utoipa::path(get, operation_id = "get_delivery", path = "/deliveries/{id}", tag = "deliveries", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = app::models::DeliveryDetailBody), (status = 404, description = "No such resource", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<app::models::DeliveryDetailBody>, Problem> {
    let missing = || Problem::not_found(format!("No delivery has the id `{id}`."));
    let parsed: app::models::DeliveryId = id.parse().map_err(|_| missing())?;
    deliveries::detail(&state.db, parsed).await?.map(|d| Json(d.into())).ok_or_else(missing)
}

fn parse_delivery_id(raw: &str) -> Result<app::models::DeliveryId, Problem> {
    raw.parse().map_err(|_| Problem::not_found(format!("No delivery has the id `{raw}`.")))
}

/// `POST /api/v1/deliveries/{id}/retry`: re-send one delivery that did not succeed. 202: the
/// engine sends it at once; `GET /api/v1/deliveries/{id}` shows the new attempt.
#[utoipa::path(post, operation_id = "retry_delivery", path = "/deliveries/{id}/retry", tag = "deliveries", params(("id" = String, Path)),
    responses((status = 202, description = "Accepted", body = DeliveryRow), (status = 404, description = "No such resource", body = Problem), (status = 409, description = "Conflicts with its current state; `detail` says why", body = Problem)))]
pub async fn retry(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::response::Response, Problem> {
    use app::db::deliveries::RetryError;
    use axum::{http::StatusCode, response::IntoResponse};

    let parsed = parse_delivery_id(&id)?;
    match deliveries::retry(&state.db, parsed, app::models::AttemptTrigger::Manual).await {
        Ok(row) => {
            state.wakeup.notify_one();
            Ok((StatusCode::ACCEPTED, Json(row)).into_response())
        }
        Err(RetryError::NotFound) => Err(Problem::not_found(format!("No delivery has the id `{id}`."))),
        Err(RetryError::Db(e)) => Err(e.into()),
        Err(e) => Err(Problem::conflict(e.to_string())),
    }
}

/// `POST /api/v1/deliveries/retry`: re-send every delivery matching a filter, as a background
/// job. With `"dry_run": true` only counts. 202 with the job; `GET /api/v1/jobs/{id}` follows it.
#[utoipa::path(post, operation_id = "bulk_retry_deliveries", path = "/deliveries/retry", tag = "deliveries", request_body = BulkRetryRequest,
    responses((status = 202, description = "Accepted", body = app::models::BulkRetryAccepted), (status = 200, description = "Dry run", body = app::models::BulkRetryAccepted), (status = 409, description = "Conflicts with its current state; `detail` says why", body = Problem), (status = 422, description = "Invalid input; `field` names what is wrong", body = Problem)))]
pub async fn bulk_retry(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<super::ApiPrincipal>,
    crate::http::problem::ApiJson(request): crate::http::problem::ApiJson<BulkRetryRequest>,
) -> Result<axum::response::Response, Problem> {
    use axum::{http::StatusCode, response::IntoResponse};

    use app::db::jobs::{start_bulk_retry, BulkRetryError};

    let accepted = start_bulk_retry(&state.db, &request.filter, request.dry_run, &principal.actor())
        .await
        .map_err(|e| match e {
            BulkRetryError::Invalid(f) => f.into(),
            BulkRetryError::Inactive(m) => Problem::conflict(m),
            BulkRetryError::Db(e) => e.into(),
        })?;
    if accepted.job.is_none() {
        return Ok(Json(accepted).into_response());
    }
    state.jobs_wakeup.notify_one();
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRetryRequest {
    #[serde(flatten)]
    filter: app::models::BulkRetryFilter,
    #[serde(default)]
    dry_run: bool,
}
