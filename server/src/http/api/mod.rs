//! The integrators' JSON API under `/api/v1`: Bearer API keys, problem+json errors.

mod deliveries;
mod events;
mod jobs;
pub mod openapi;
mod settings;
mod webhooks;

use app::state::AppState;
use axum::{
    extract::{Request, State},
    http::header,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::json;

use super::problem::Problem;

/// The API key that authenticated a request, for handlers that record who did what.
#[derive(Clone, Debug)]
pub struct ApiPrincipal {
    pub key_id: uuid::Uuid,
    pub name: String,
}

impl ApiPrincipal {
    /// How the activity log names this caller.
    pub fn actor(&self) -> String {
        format!("api key {}", self.name)
    }
}

pub fn router(state: AppState) -> Router<AppState> {
    let authenticated = Router::new()
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::get).patch(webhooks::update).delete(webhooks::delete))
        .route("/webhooks/{id}/secret", get(webhooks::secret))
        .route("/webhooks/{id}/rotate-secret", post(webhooks::rotate_secret))
        .route("/webhooks/{id}/usage", get(webhooks::usage))
        .route("/webhooks/{id}/reactivate", post(webhooks::reactivate))
        .route("/webhooks/{id}/line/skip", post(webhooks::skip_blocked))
        .route("/events", get(events::list).post(events::create))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/retry", post(deliveries::bulk_retry))
        .route("/deliveries/{id}", get(deliveries::get))
        .route("/deliveries/{id}/retry", post(deliveries::retry))
        .route("/jobs/{id}", get(jobs::get))
        .route("/settings/retention", get(settings::retention).put(settings::set_retention))
        .route("/purge", post(settings::purge))
        .route("/activity", get(settings::activity))
        .fallback(|| async { Problem::not_found("No such API route; see /api/v1/openapi.json.") })
        .layer(middleware::from_fn_with_state(state, require_api_key));
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi::document))
        .merge(authenticated)
}

async fn require_api_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Problem::unauthorized(
            "Send `Authorization: Bearer <api key>`; create keys with `herald api-key create`.",
        )
        .into_response();
    };
    let Some(key) = crate::http::auth::bearer(value) else {
        return Problem::unauthorized("The Authorization header must be `Bearer <api key>`.").into_response();
    };
    match state.api_keys.find(&state.db, key).await {
        Ok(Some(found)) => {
            if let Err(e) = state.api_keys.touch(&state.db, &found).await {
                tracing::warn!(error = %e, "cannot record API key use");
            }
            req.extensions_mut().insert(ApiPrincipal { key_id: found.id, name: found.name });
            next.run(req).await
        }
        Ok(None) => Problem::unauthorized("This API key is unknown or has been revoked.").into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}

/// Whether Herald can accept and deliver events: the database answers a read now, and took
/// this process's last write (its heartbeat, written every second, and every commit of events
/// and attempts). Needs no key, for load balancers and monitors; answers within about a second.
#[utoipa::path(get, operation_id = "health", path = "/health", tag = "health", security(()),
    responses((status = 200, description = "Herald can read and write its database"), (status = 503, description = "The database cannot be read or written; `detail` says why", body = Problem)))]
async fn health(State(state): State<AppState>) -> Response {
    match app::db::health::check(&state.db, &state.db_health).await {
        Ok(()) => Json(json!({"status": "ok", "database": "ok", "version": env!("CARGO_PKG_VERSION")}))
            .into_response(),
        Err(why) => Problem::unavailable(why).into_response(),
    }
}
