//! The OpenAPI document of `/api/v1`, generated from the handlers and wire types themselves.

use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use super::{deliveries, events, jobs, settings, webhooks};

/// The body of `POST /api/v1/events`.
#[allow(dead_code)] // documentation only: the handler reads the body as raw JSON
#[derive(utoipa::ToSchema)]
pub struct EventInput {
    /// Lowercase dot-separated segments, e.g. `license.assigned`; the first is the category.
    #[schema(rename = "type")]
    pub event_type: String,
    /// Any JSON; sent to receivers byte for byte.
    pub payload: serde_json::Value,
    /// A repeated key answers with the original event and stores nothing (1–255 characters).
    pub idempotency_key: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald API",
        description = "Webhook delivery: post events, manage webhooks, read and re-send deliveries. \
                       Errors are application/problem+json.",
    ),
    servers((url = "/api/v1")),
    paths(
        super::health,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::secret, webhooks::rotate_secret, webhooks::usage, webhooks::reactivate,
        events::create, events::list,
        deliveries::list, deliveries::get, deliveries::retry, deliveries::bulk_retry,
        jobs::get,
        settings::retention, settings::set_retention, settings::purge, settings::activity,
    ),
    components(schemas(
        crate::http::problem::Problem,
        app::models::WebhookAuth,
        app::models::Outcome,
        app::models::DeliverySort,
        app::models::SortOrder,
    )),
    modifiers(&BearerKey),
    security(("api_key" = [])),
)]
pub struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from `herald api-key create`."))
                    .build(),
            ),
        );
    }
}

/// `GET /api/v1/openapi.json`: needs no key, so tools and people can read it first.
pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
