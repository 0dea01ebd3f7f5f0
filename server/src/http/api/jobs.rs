//! `/api/v1/jobs/{id}`: how far a background job (a bulk re-send) got.

use app::{db, models::Job, state::AppState};
use axum::{
    extract::{Path, State},
    Json,
};

use crate::http::problem::Problem;

#[utoipa::path(get, operation_id = "get_job", path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = Job), (status = 404, description = "No such resource", body = Problem)))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, Problem> {
    let missing = || Problem::not_found(format!("No job has the id `{id}`."));
    let parsed = id.parse().map_err(|_| missing())?;
    db::jobs::find(&state.db, parsed).await?.map(Json).ok_or_else(missing)
}
