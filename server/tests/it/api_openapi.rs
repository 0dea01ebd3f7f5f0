//! `GET /api/v1/openapi.json`: every route and its schemas, generated from the code.

use serde_json::Value;

use crate::{both_databases, common::*};

both_databases!(openapi_describes_every_route_and_schema);

const ROUTES: &[(&str, &str)] = &[
    ("/health", "get"),
    ("/webhooks", "get"),
    ("/webhooks", "post"),
    ("/webhooks/{id}", "get"),
    ("/webhooks/{id}", "patch"),
    ("/webhooks/{id}", "delete"),
    ("/webhooks/{id}/secret", "get"),
    ("/webhooks/{id}/rotate-secret", "post"),
    ("/webhooks/{id}/usage", "get"),
    ("/webhooks/{id}/reactivate", "post"),
    ("/webhooks/{id}/line/skip", "post"),
    ("/events", "get"),
    ("/events", "post"),
    ("/deliveries", "get"),
    ("/deliveries/{id}", "get"),
    ("/deliveries/{id}/retry", "post"),
    ("/deliveries/retry", "post"),
    ("/jobs/{id}", "get"),
    ("/settings/retention", "get"),
    ("/settings/retention", "put"),
    ("/purge", "post"),
    ("/activity", "get"),
];

async fn openapi_describes_every_route_and_schema(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let res = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200, "readable without an API key");
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, methods) in paths {
        documented += methods.as_object().unwrap().len();
        let _ = path;
    }
    assert_eq!(documented, ROUTES.len(), "no route more or less than the router serves");
    for (path, method) in ROUTES {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has responses");
    }
    // Every documented route is served: with a key, none is the router's "no such route".
    let api = app.api().await;
    for (path, method) in ROUTES {
        let path = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let (status, body) = api.call(method.to_uppercase().parse().unwrap(), &path, None).await;
        assert_ne!(status, 405, "{method} {path}");
        assert!(
            !body["detail"].as_str().unwrap_or_default().contains("No such API route"),
            "{method} {path}"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Webhook",
        "WebhookCreate",
        "WebhookPatch",
        "DeliveryRow",
        "DeliveryDetail",
        "Attempt",
        "Problem",
        "Job",
        "EventInput",
    ] {
        assert!(schemas.contains_key(name), "schema {name} is in the document");
    }
    let status = &schemas["DeliveryStatus"]["enum"];
    assert_eq!(status, &serde_json::json!(["pending", "retrying", "succeeded", "failed", "held"]));
    let create = &schemas["WebhookCreate"];
    assert!(create["required"].as_array().unwrap().contains(&Value::from("url")));
    assert_eq!(doc["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");
    app.stop().await;
}
