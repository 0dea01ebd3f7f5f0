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
    #[schema(rename = "type", min_length = 1, max_length = 200, pattern = "^[a-z0-9_-]+(\\.[a-z0-9_-]+)*$")]
    pub event_type: String,
    /// Any JSON; sent to receivers byte for byte.
    pub payload: serde_json::Value,
    /// A repeated key answers with the original event and stores nothing (1–255 characters);
    /// the same key with another type or payload is refused (422).
    #[schema(min_length = 1, max_length = 255)]
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
        webhooks::secret, webhooks::rotate_secret, webhooks::usage, webhooks::reactivate, webhooks::skip_blocked,
        events::create, events::list,
        deliveries::list, deliveries::get, deliveries::retry, deliveries::bulk_retry,
        jobs::get,
        settings::retention, settings::set_retention, settings::purge, settings::activity,
    ),
    components(schemas(
        crate::http::problem::Problem,
        crate::http::problem::FieldProblem,
        app::models::WebhookAuth,
        app::models::Outcome,
        app::models::DeliverySort,
        app::models::SortOrder,
    )),
    modifiers(&BearerKey, &ProblemResponses),
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

/// Makes every operation declare the errors it can answer, as the server answers them: errors
/// are `application/problem+json`; an operation behind the key can answer 401; one with a body
/// can answer 415 (not JSON) and 422 (invalid); any can answer 503 while the database is away.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        const PROBLEM: &str = "application/problem+json";
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        PROBLEM,
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in operations.into_iter().flatten() {
                let responses = &mut op.responses.responses;
                for (status, response) in responses.iter_mut() {
                    if let (true, RefOr::T(response)) = (status.as_str() >= "400", response) {
                        if let Some(content) = response.content.shift_remove("application/json") {
                            response.content.insert(PROBLEM.to_owned(), content);
                        }
                    }
                }
                let public = op.security.as_ref().is_some_and(|s| {
                    s.iter().all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
                });
                let mut add = |status: &str, description: &str| {
                    responses.entry(status.to_owned()).or_insert_with(|| problem(description));
                };
                if !public {
                    add("401", "No API key, or an unknown or revoked one");
                }
                if op.request_body.is_some() {
                    add("413", "The body is larger than the limit");
                    add("415", "The body is not sent as JSON");
                }
                if op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                    add("422", "Invalid input; `field` names what is wrong");
                }
                add("503", "The database is unavailable; nothing was changed. Try again after `Retry-After`");
            }
        }
    }
}

/// `GET /api/v1/openapi.json`: needs no key, so tools and people can read it first.
pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
