//! OpenTelemetry traces: with `HERALD_OTLP_ENDPOINT`, a real `herald serve` sends one span per
//! ingest and per attempt to an OTLP/HTTP collector (here a fake one that keeps what it gets),
//! and the receiver gets the attempt's trace context as `traceparent`.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::State, routing::post, Json, Router};
use serde_json::{json, Value};

use crate::{
    both_databases,
    common::{process::HeraldProcess, receiver::Receiver, *},
    engine_processes::api_for,
};

both_databases!(ingest_and_attempts_are_traced_and_the_receiver_joins_the_trace);

type Spans = Arc<Mutex<Vec<Value>>>;

/// Every span in the OTLP/JSON export requests received so far.
async fn collector() -> (String, Spans) {
    let spans: Spans = Arc::default();
    async fn export(State(spans): State<Spans>, Json(body): Json<Value>) -> Json<Value> {
        for resource in body["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                spans.lock().unwrap().extend(scope["spans"].as_array().into_iter().flatten().cloned());
            }
        }
        Json(json!({}))
    }
    let app = Router::new().route("/v1/traces", post(export)).with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"].as_array()?.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

fn string_attribute(span: &Value, key: &str) -> Option<String> {
    attribute(span, key).and_then(|v| v["stringValue"].as_str()).map(str::to_owned)
}

async fn ingest_and_attempts_are_traced_and_the_receiver_joins_the_trace(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let rx = Receiver::start().await;
    let (endpoint, spans) = collector().await;
    let herald = HeraldProcess::start(
        &test_db.url,
        &[("HERALD_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    let db = test_db.connect().await;
    let api = api_for(&herald, &db).await;
    api.webhook(json!({"name": "traced", "url": rx.url("/ok"), "event_types": ["order.*"]})).await;
    let event = api.event("order.placed", json!({"n": 1})).await;

    let (ingest, attempt) = eventually("the ingest and attempt spans", Duration::from_secs(20), || async {
        let spans = spans.lock().unwrap().clone();
        let of = |name: &str| {
            spans
                .iter()
                .find(|s| s["name"] == name && string_attribute(s, "event_id").as_deref() == Some(&event))
                .cloned()
        };
        Some((of("ingest")?, of("attempt")?))
    })
    .await;
    assert_eq!(string_attribute(&ingest, "event_type").as_deref(), Some("order.placed"));
    assert_eq!(string_attribute(&attempt, "outcome").as_deref(), Some("success"));
    let status = attribute(&attempt, "status_code").expect("status code");
    // OTLP/JSON writes 64-bit integers as strings.
    assert!(status["intValue"] == json!("200") || status["intValue"] == json!(200), "{attempt}");
    assert!(
        string_attribute(&attempt, "delivery_id").is_some()
            && string_attribute(&attempt, "webhook_id").is_some()
    );

    // The receiver got the attempt's trace context: same trace, the attempt span as parent.
    let received = rx.received_at("/ok");
    let traceparent = received[0].header("traceparent").to_owned();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    assert_eq!(
        parts[1],
        attempt["traceId"].as_str().unwrap().to_ascii_lowercase(),
        "{traceparent} {attempt}"
    );
    assert_eq!(parts[2], attempt["spanId"].as_str().unwrap().to_ascii_lowercase(), "{traceparent} {attempt}");
    drop(herald);
    db.close().await.ok();
}
