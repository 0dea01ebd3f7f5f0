//! Routers: the admin app (pages and server functions), sign-in, and the JSON API.

pub mod api;
pub mod auth;
pub mod problem;
pub mod security;

use app::{shell, state::AppState, App};
use axum::{middleware, routing::post, Router};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::trace::TraceLayer;

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .nest("/api/v1", api::router(state.clone()))
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(state.clone(), auth::page_guard))
        .layer(middleware::from_fn(security::refuse_cross_site))
        .layer(middleware::from_fn(security::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
