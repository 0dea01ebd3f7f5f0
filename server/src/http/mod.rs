//! Routers: the admin app (pages and server functions), sign-in, and the JSON API.

pub mod api;
pub mod auth;
pub mod problem;
pub mod security;

use app::{shell, state::AppState, App};
use std::sync::Arc;

use axum::{
    middleware,
    routing::{get, post},
    Router,
};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;

use crate::metrics::{Metrics, MetricsEndpoint};

/// The whole HTTP surface; `/metrics` only when `endpoint` is given (`HERALD_METRICS=on`).
pub fn router(state: AppState, metrics: Arc<Metrics>, endpoint: Option<MetricsEndpoint>) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let api = api::router(state.clone())
        .layer(middleware::from_fn_with_state(metrics, crate::metrics::count_ingest));
    let metrics_route = match endpoint {
        Some(endpoint) => Router::new().route("/metrics", get(crate::metrics::endpoint)).with_state(endpoint),
        None => Router::new().route(
            "/metrics",
            get(|| async { (axum::http::StatusCode::NOT_FOUND, "Metrics are off (HERALD_METRICS=off).\n") }),
        ),
    };
    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .nest("/api/v1", api)
        .merge(metrics_route)
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(state.clone(), auth::page_guard))
        .layer(middleware::from_fn(security::refuse_cross_site))
        .layer(middleware::from_fn(security::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
