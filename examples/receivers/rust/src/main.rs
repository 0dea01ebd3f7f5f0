//! A minimal webhook receiver for Herald, in Rust with the `standardwebhooks` crate.
//!
//! ```sh
//! WEBHOOK_SECRET=whsec_... PORT=4000 cargo run -p herald-receiver-example
//! ```
//!
//! It verifies every request's signature (and that its timestamp is within five minutes),
//! answers 400 to anything that does not verify, skips a `webhook-id` it has already seen
//! (Herald delivers at least once), and answers 204 at once, handing the work to a task so that
//! Herald never waits on it. `GET /received` lists the ids processed so far (for the test).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

struct Receiver {
    verifier: standardwebhooks::Webhook,
    seen: Mutex<HashSet<String>>,
    processed: Arc<Mutex<Vec<String>>>,
    work: mpsc::UnboundedSender<(String, Value)>,
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = rx.verifier.verify(&body, &headers) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response();
    }
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if !rx.seen.lock().unwrap().insert(id.clone()) {
        return (StatusCode::OK, Json(json!({"duplicate": true}))).into_response();
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = rx.work.send((id, event));
    StatusCode::NO_CONTENT.into_response()
}

async fn received(State(rx): State<Arc<Receiver>>) -> Json<Vec<String>> {
    Json(rx.processed.lock().unwrap().clone())
}

#[tokio::main]
async fn main() {
    let secret = std::env::var("WEBHOOK_SECRET").expect("WEBHOOK_SECRET");
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(4000);
    let (work, mut jobs) = mpsc::unbounded_channel::<(String, Value)>();
    let processed = Arc::new(Mutex::new(Vec::new()));
    let done = processed.clone();
    tokio::spawn(async move {
        while let Some((id, _event)) = jobs.recv().await {
            // The real work goes here: update a database, call another service, ...
            done.lock().unwrap().push(id);
        }
    });
    let state = Arc::new(Receiver {
        verifier: standardwebhooks::Webhook::new(&secret).expect("a whsec_ secret"),
        seen: Mutex::default(),
        processed,
        work,
    });
    let app = Router::new().route("/", post(receive).get(received)).with_state(state);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap().port());
    axum::serve(listener, app).await.unwrap();
}
