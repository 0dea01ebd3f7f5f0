//! `/api/v1/settings/retention`, `/api/v1/purge` and `/api/v1/activity`: the retention policy,
//! purging on demand, and the system activity log.

use app::{
    db,
    models::{ActivityEntry, Job, Page, PurgeReport, RetentionPolicy},
    state::AppState,
};
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde::Deserialize;

use super::ApiPrincipal;
use crate::http::problem::{check_limit, ApiJson, ApiQuery, Problem};

#[utoipa::path(get, operation_id = "get_retention", path = "/settings/retention", tag = "settings",
    responses((status = 200, description = "The policy in effect: saved in settings, else from configuration", body = RetentionPolicy)))]
pub async fn retention(State(state): State<AppState>) -> Result<Json<RetentionPolicy>, Problem> {
    Ok(Json(db::retention::policy(&state.db, state.retention_defaults).await?))
}

#[utoipa::path(put, operation_id = "set_retention", path = "/settings/retention", tag = "settings", request_body = RetentionPolicy,
    responses((status = 200, description = "Saved; the next purge applies it", body = RetentionPolicy), (status = 422, description = "Invalid input; `field` names what is wrong", body = Problem)))]
pub async fn set_retention(
    State(state): State<AppState>,
    Extension(principal): Extension<ApiPrincipal>,
    ApiJson(policy): ApiJson<RetentionPolicy>,
) -> Result<Json<RetentionPolicy>, Problem> {
    policy.validate()?;
    db::retention::save_policy(&state.db, &policy, &principal.actor()).await?;
    Ok(Json(policy))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PurgeParams {
    /// Only count what the policy would delete.
    #[serde(default)]
    dry_run: bool,
}

/// A dry run answers 200 with the counts; a purge is queued as a job (202), one at a time.
#[utoipa::path(post, operation_id = "purge", path = "/purge", tag = "settings", params(PurgeParams),
    responses((status = 200, description = "Dry run: what a purge would delete", body = PurgeReport), (status = 202, description = "Purge queued as a job", body = Job), (status = 409, description = "A purge is already queued or running", body = Problem)))]
pub async fn purge(
    State(state): State<AppState>,
    Extension(principal): Extension<ApiPrincipal>,
    ApiQuery(params): ApiQuery<PurgeParams>,
) -> Result<Response, Problem> {
    if params.dry_run {
        let policy = db::retention::policy(&state.db, state.retention_defaults).await?;
        let report =
            db::retention::purge(&state.db, &policy, true, u64::MAX >> 1, std::time::Duration::ZERO).await?;
        return Ok(Json(report).into_response());
    }
    match db::jobs::queue_purge(&state.db, &principal.actor()).await? {
        Some(job) => {
            state.jobs_wakeup.notify_one();
            Ok((StatusCode::ACCEPTED, Json(job)).into_response())
        }
        None => Err(Problem::conflict("A purge is already queued or running; watch it in the activity log.")),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActivityParams {
    /// Exact kind (`job.purge`), or a prefix ending in `.` (`webhook.`).
    kind: Option<String>,
    cursor: Option<String>,
    /// Page size, 1 to 250.
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u64>,
}

#[utoipa::path(get, operation_id = "list_activity", path = "/activity", tag = "settings", params(ActivityParams),
    responses((status = 200, description = "Newest first", body = Page<ActivityEntry>), (status = 422, description = "Invalid input; `field` names what is wrong", body = Problem)))]
pub async fn activity(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ActivityParams>,
) -> Result<Json<Page<ActivityEntry>>, Problem> {
    let limit = check_limit(params.limit, 50, 250)?;
    let before = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => {
            Some(c.parse().map_err(|_| Problem::invalid("cursor", "not a cursor this list produced"))?)
        }
        None => None,
    };
    Ok(Json(db::activity::list(&state.db, params.kind.as_deref(), before, limit).await?))
}
