//! `/api/v1/webhooks`: create, read, update, delete, rotate the secret, usage.

use app::{
    db,
    models::{Page, Webhook, WebhookCreate, WebhookId, WebhookPatch, WebhookUsage},
    state::AppState,
};
use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ApiPrincipal;
use crate::http::problem::{check_limit, optional_json, ApiJson, ApiQuery, Problem};

const MAX_LIMIT: u64 = 250;

fn parse_id(raw: &str) -> Result<WebhookId, Problem> {
    raw.parse().map_err(|_| Problem::not_found(format!("No webhook has the id `{raw}`.")))
}

fn missing(id: WebhookId) -> Problem {
    Problem::not_found(format!("No webhook has the id `{id}`."))
}

#[utoipa::path(post, operation_id = "create_webhook", path = "/webhooks", tag = "webhooks", request_body = WebhookCreate,
    responses((status = 201, description = "Created; the only answer that shows the secret with the webhook", body = app::models::CreatedWebhookBody), (status = 422, description = "Invalid input: `errors` lists every invalid field, `field` names the first", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<ApiPrincipal>,
    ApiJson(input): ApiJson<WebhookCreate>,
) -> Result<Response, Problem> {
    Problem::check_all(input.problems())?;
    let created = db::webhooks::create(&state.db, input, &principal.actor()).await?;
    let location = format!("/api/v1/webhooks/{}", created.webhook.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(app::models::CreatedWebhookBody::from(created)),
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    /// Page size, 1 to 250.
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u64>,
}

#[utoipa::path(get, operation_id = "list_webhooks", path = "/webhooks", tag = "webhooks", params(ListParams),
    responses((status = 200, description = "OK", body = Page<Webhook>), (status = 422, description = "Invalid input; `field` names what is wrong", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<Webhook>>, Problem> {
    let limit = check_limit(params.limit, 50, MAX_LIMIT)?;
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => {
            Some(c.parse().map_err(|_| Problem::invalid("cursor", "not a cursor this list produced"))?)
        }
        None => None,
    };
    Ok(Json(db::webhooks::list(&state.db, after, limit).await?))
}

#[utoipa::path(get, operation_id = "get_webhook", path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = Webhook), (status = 404, description = "No such resource", body = Problem)))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Webhook>, Problem> {
    let id = parse_id(&id)?;
    let found = db::webhooks::find(&state.db, id).await?.ok_or_else(|| missing(id))?;
    Ok(Json((&found).into()))
}

#[utoipa::path(patch, operation_id = "update_webhook", path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)), request_body = WebhookPatch,
    responses((status = 200, description = "OK", body = Webhook), (status = 404, description = "No such resource", body = Problem), (status = 422, description = "Invalid input: `errors` lists every invalid field, `field` names the first", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(principal): Extension<ApiPrincipal>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> Result<Json<Webhook>, Problem> {
    let id = parse_id(&id)?;
    Problem::check_all(patch.problems())?;
    let updated = db::webhooks::update(&state.db, id, patch, &principal.actor()).await?;
    updated.map(Json).ok_or_else(|| missing(id))
}

#[utoipa::path(delete, operation_id = "delete_webhook", path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted with its deliveries"), (status = 404, description = "No such resource", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<ApiPrincipal>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = parse_id(&id)?;
    if db::webhooks::delete(&state.db, id, &principal.actor()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(missing(id))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Secret {
    secret: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<DateTime<Utc>>,
}

#[utoipa::path(get, operation_id = "get_webhook_secret", path = "/webhooks/{id}/secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = Secret), (status = 404, description = "No such resource", body = Problem)))]
pub async fn secret(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Secret>, Problem> {
    let id = parse_id(&id)?;
    let found = db::webhooks::find(&state.db, id).await?.ok_or_else(|| missing(id))?;
    let expires = found.previous_secret_expires_at.filter(|t| *t > db::now());
    Ok(Json(Secret { secret: found.secret, previous_secret_expires_at: expires }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateParams {
    /// How long the old secret keeps signing beside the new one (default 24 h, at most 7 days).
    #[schema(maximum = 604800)]
    grace_period_secs: Option<u32>,
}

#[utoipa::path(post, operation_id = "rotate_webhook_secret", path = "/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)), request_body(content = Option<RotateParams>, description = "Optional: an empty body takes the defaults"),
    responses((status = 200, description = "OK", body = Secret), (status = 404, description = "No such resource", body = Problem)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Extension(principal): Extension<ApiPrincipal>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Secret>, Problem> {
    let id = parse_id(&id)?;
    let params: RotateParams = optional_json(&body)?;
    let grace = params.grace_period_secs.unwrap_or(24 * 3600);
    if grace > 7 * 24 * 3600 {
        return Err(Problem::invalid("grace_period_secs", "must be at most 604800 (7 days)"));
    }
    let grace = chrono::Duration::seconds(i64::from(grace));
    let secret = db::webhooks::rotate_secret(&state.db, id, grace, &principal.actor())
        .await?
        .ok_or_else(|| missing(id))?;
    Ok(Json(Secret { secret, previous_secret_expires_at: Some(db::now() + grace) }))
}

#[utoipa::path(get, operation_id = "get_webhook_usage", path = "/webhooks/{id}/usage", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = WebhookUsage), (status = 404, description = "No such resource", body = Problem)))]
pub async fn usage(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WebhookUsage>, Problem> {
    let id = parse_id(&id)?;
    db::webhooks::usage(&state.db, id).await?.map(Json).ok_or_else(|| missing(id))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactivateParams {
    /// Queue the held and failed deliveries created since this time (RFC 3339) again.
    recover_since: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Reactivated {
    #[serde(flatten)]
    webhook: Webhook,
    recovered_deliveries: u64,
}

#[utoipa::path(post, operation_id = "reactivate_webhook", path = "/webhooks/{id}/reactivate", tag = "webhooks", params(("id" = String, Path)), request_body(content = Option<ReactivateParams>, description = "Optional: an empty body recovers nothing"),
    responses((status = 200, description = "OK", body = Reactivated), (status = 404, description = "No such resource", body = Problem)))]
pub async fn reactivate(
    State(state): State<AppState>,
    Extension(principal): Extension<ApiPrincipal>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Reactivated>, Problem> {
    let id = parse_id(&id)?;
    let params: ReactivateParams = optional_json(&body)?;
    let (webhook, recovered) =
        db::webhooks::reactivate(&state.db, id, params.recover_since, &principal.actor())
            .await?
            .ok_or_else(|| missing(id))?;
    Ok(Json(Reactivated { webhook, recovered_deliveries: recovered }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkipRequest {
    /// The failed delivery that blocks the line, as `GET /webhooks/{id}/usage` names it
    /// (`line_blocked_by`): a skip never lets the line past a delivery the caller did not see.
    delivery_id: app::models::DeliveryId,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Skipped {
    skipped: app::models::DeliveryId,
    /// Deliveries in the line behind it, now on their way.
    waiting: u64,
}

/// `POST /api/v1/webhooks/{id}/line/skip`: an ordered webhook's line goes on past the failed
/// delivery that blocks it. The delivery stays failed and can still be re-sent; the activity log
/// records who skipped it.
#[utoipa::path(post, operation_id = "skip_blocked_delivery", path = "/webhooks/{id}/line/skip", tag = "webhooks", params(("id" = String, Path)), request_body = SkipRequest,
    responses((status = 200, description = "Skipped", body = Skipped), (status = 404, description = "No such resource", body = Problem), (status = 409, description = "The webhook is not ordered, or that delivery does not block its line; `detail` says which", body = Problem), (status = 422, description = "Invalid input", body = Problem)))]
pub async fn skip_blocked(
    State(state): State<AppState>,
    Extension(principal): Extension<ApiPrincipal>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<SkipRequest>,
) -> Result<Json<Skipped>, Problem> {
    use db::lines::SkipRefused;
    let id = parse_id(&id)?;
    match db::lines::skip(&state.db, id, request.delivery_id, &principal.actor()).await? {
        Ok(waiting) => {
            state.wakeup.notify_one();
            Ok(Json(Skipped { skipped: request.delivery_id, waiting }))
        }
        Err(SkipRefused::NoWebhook) => Err(missing(id)),
        Err(refused) => Err(Problem::conflict(refused.describe(request.delivery_id))),
    }
}
