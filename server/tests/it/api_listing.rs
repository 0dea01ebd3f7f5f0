use std::collections::HashSet;

use app::{
    db::entities::attempts,
    models::{AttemptTrigger, Outcome},
};
use reqwest::header::AUTHORIZATION;
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use serde_json::{json, Value};

use crate::{both_databases, common::*};

both_databases!(
    event_pages_neither_skip_nor_repeat_while_events_arrive,
    delivery_pages_neither_skip_nor_repeat_while_events_arrive,
    delivery_detail_shows_payload_and_attempts,
    deliveries_sort_by_status_and_response_code_across_pages,
);

async fn call(app: &TestApp, key: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = app.client.request(method, app.url(path)).header(AUTHORIZATION, format!("Bearer {key}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}

async fn post_event(app: &TestApp, key: &str, event_type: &str, n: u32) -> String {
    let body = json!({"type": event_type, "payload": {"n": n}});
    call(app, key, reqwest::Method::POST, "/api/v1/events", Some(body)).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

async fn event_pages_neither_skip_nor_repeat_while_events_arrive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.api_key().await;
    let mut originals = Vec::new();
    for n in 0..7 {
        originals
            .push(post_event(&app, &key, if n % 2 == 0 { "order.placed" } else { "user.created" }, n).await);
    }

    let (mut seen, mut cursor, mut n) = (Vec::new(), None::<String>, 100);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/events?limit=2&cursor={c}"),
            None => "/api/v1/events?limit=2".to_owned(),
        };
        let page = call(&app, &key, reqwest::Method::GET, &path, None).await;
        seen.extend(ids(&page));
        post_event(&app, &key, "audit.logged", n).await; // arrives while the client pages
        n += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() < 100, "paging terminates");
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event is repeated");
    assert_eq!(&seen[..7], &originals[..], "oldest first, none skipped");

    let page =
        call(&app, &key, reqwest::Method::GET, "/api/v1/events?type=order.placed&limit=100", None).await;
    assert_eq!(ids(&page).len(), 4);
    assert_eq!(page["items"][0]["payload"], json!({"n": 0}));

    let third =
        call(&app, &key, reqwest::Method::GET, "/api/v1/events?limit=3", None).await["items"][2].clone();
    let since = third["created_at"].as_str().unwrap().replace('+', "%2B");
    let page =
        call(&app, &key, reqwest::Method::GET, &format!("/api/v1/events?since={since}&limit=250"), None)
            .await;
    assert_eq!(ids(&page)[0], third["id"].as_str().unwrap(), "since is inclusive");
    let page =
        call(&app, &key, reqwest::Method::GET, &format!("/api/v1/events?until={since}&limit=250"), None)
            .await;
    assert!(ids(&page).len() <= 2, "until is exclusive");

    let res = app
        .client
        .get(app.url("/api/v1/events?since=yesterday"))
        .header(AUTHORIZATION, format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    app.stop().await;
}

async fn delivery_pages_neither_skip_nor_repeat_while_events_arrive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.api_key().await;
    // Stopped, so the engine leaves its delivery alone while the test adds an attempt by hand.
    let body = json!({"name": "all", "url": "http://127.0.0.1:9/", "event_types": ["*"], "enabled": false});
    call(&app, &key, reqwest::Method::POST, "/api/v1/webhooks", Some(body)).await;
    for n in 0..9 {
        post_event(&app, &key, if n < 5 { "order.placed" } else { "user.created" }, n).await;
    }
    let (mut seen, mut cursor, mut n) = (Vec::new(), None::<String>, 100);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/deliveries?limit=4&cursor={c}"),
            None => "/api/v1/deliveries?limit=4".to_owned(),
        };
        let page = call(&app, &key, reqwest::Method::GET, &path, None).await;
        seen.extend(ids(&page));
        post_event(&app, &key, "audit.logged", n).await; // newer than every page: must not shift them
        n += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (9, 9), "each of the 9 deliveries exactly once");

    let page =
        call(&app, &key, reqwest::Method::GET, "/api/v1/deliveries?event_type=user.created&limit=250", None)
            .await;
    assert_eq!(ids(&page).len(), 4);
    let page = call(&app, &key, reqwest::Method::GET, "/api/v1/deliveries?q=order&limit=250", None).await;
    assert_eq!(ids(&page).len(), 5, "search matches the event type");
    let page = call(&app, &key, reqwest::Method::GET, "/api/v1/deliveries?q=ORDER.Pl&limit=250", None).await;
    assert_eq!(ids(&page).len(), 5, "search ignores case, on both databases");
    let page = call(&app, &key, reqwest::Method::GET, "/api/v1/deliveries?q=ALL&limit=250", None).await;
    assert_eq!(ids(&page).len() as u32, 9 + n - 100, "search matches the webhook name");
    let page =
        call(&app, &key, reqwest::Method::GET, "/api/v1/deliveries?q=127.0.0.1:9&limit=250", None).await;
    assert_eq!(ids(&page).len() as u32, 9 + n - 100, "search matches the webhook URL");
    let page = call(&app, &key, reqwest::Method::GET, "/api/v1/deliveries?q=nowhere&limit=250", None).await;
    assert_eq!(ids(&page).len(), 0, "a search that matches nothing");
    assert!(page["next_cursor"].is_null());
    let page =
        call(&app, &key, reqwest::Method::GET, "/api/v1/deliveries?category=audit&limit=250", None).await;
    assert_eq!(ids(&page).len() as u32, n - 100);
    // A type names its category: with its own category it finds what the type alone finds, with
    // another, nothing.
    let get = |q: &'static str| call(&app, &key, reqwest::Method::GET, q, None);
    let same = get("/api/v1/deliveries?event_type=user.created&category=User&limit=250").await;
    assert_eq!(ids(&same).len(), 4, "{same}");
    let other = get("/api/v1/deliveries?event_type=user.created&category=order&limit=250").await;
    assert_eq!(ids(&other).len(), 0, "{other}");
    // An id finds that delivery, or every delivery of that event (a second webhook gets it too).
    let body =
        json!({"name": "copy", "url": "http://127.0.0.1:9/", "event_types": ["order.*"], "enabled": false});
    call(&app, &key, reqwest::Method::POST, "/api/v1/webhooks", Some(body)).await;
    let event = post_event(&app, &key, "order.placed", 999).await;
    let page = call(&app, &key, reqwest::Method::GET, &format!("/api/v1/deliveries?q={event}"), None).await;
    let of_event = ids(&page);
    assert_eq!(of_event.len(), 2, "both deliveries of the event: {page}");
    let page =
        call(&app, &key, reqwest::Method::GET, &format!("/api/v1/deliveries?q={}", of_event[0]), None).await;
    assert_eq!(ids(&page), [of_event[0].clone()], "the delivery itself");
    app.stop().await;
}

async fn delivery_detail_shows_payload_and_attempts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.api_key().await;
    // Stopped, so the engine leaves its delivery alone while the test adds an attempt by hand.
    let body = json!({"name": "all", "url": "http://127.0.0.1:9/", "event_types": ["*"], "enabled": false});
    let webhook = call(&app, &key, reqwest::Method::POST, "/api/v1/webhooks", Some(body)).await;
    post_event(&app, &key, "order.placed", 42).await;
    let list = call(&app, &key, reqwest::Method::GET, "/api/v1/deliveries", None).await;
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();

    let detail = call(&app, &key, reqwest::Method::GET, &format!("/api/v1/deliveries/{id}"), None).await;
    assert_eq!(detail["payload"], json!({"n": 42}));
    assert_eq!(detail["status"], "held");
    assert_eq!(detail["webhook_name"], "all");
    assert_eq!(detail["attempts"], json!([]));

    // An attempt as the engine records it shows up with its request and response.
    attempts::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        delivery_id: Set(id.parse().unwrap()),
        webhook_id: Set(webhook["id"].as_str().unwrap().parse().unwrap()),
        attempt_number: Set(1),
        trigger: Set(AttemptTrigger::Automatic),
        started_at: Set(app::db::now()),
        duration_ms: Set(87),
        request_url: Set("http://127.0.0.1:9/".into()),
        request_method: Set("POST".into()),
        request_headers: Set(r#"{"webhook-id":"msg_1"}"#.into()),
        request_body: Set(Some(r#"{"n":42}"#.into())),
        response_status: Set(Some(500)),
        response_headers: Set(Some(r#"{"content-type":"text/plain"}"#.into())),
        response_body: Set(Some("boom".into())),
        response_body_truncated: Set(false),
        outcome: Set(Outcome::ServerError),
        error: Set(None),
        sent_by: Set(None),
    }
    .insert(&app.db)
    .await
    .unwrap();
    let detail = call(&app, &key, reqwest::Method::GET, &format!("/api/v1/deliveries/{id}"), None).await;
    let attempt = &detail["attempts"][0];
    assert_eq!(attempt["outcome"], "server_error");
    assert_eq!(attempt["request"]["headers"]["webhook-id"], "msg_1");
    assert_eq!(attempt["response"]["status"], 500);
    assert_eq!(attempt["response"]["body"], "boom");

    for missing in [uuid::Uuid::now_v7().to_string(), "nope".to_owned()] {
        let res = app
            .client
            .get(app.url(&format!("/api/v1/deliveries/{missing}")))
            .header(AUTHORIZATION, format!("Bearer {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
    app.stop().await;
}

async fn deliveries_sort_by_status_and_response_code_across_pages(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.retry_schedule = vec![0]).await;
    let api = app.api().await;
    let rx = crate::common::receiver::Receiver::start().await;
    for (name, path) in
        [("ok", "/ok"), ("boom", "/status/500"), ("missing", "/status/404"), ("moved", "/redirect")]
    {
        api.webhook(json!({"name": name, "url": rx.url(path), "event_types": ["*"]})).await;
    }
    api.webhook(json!({"name": "off", "url": rx.url("/ok"), "event_types": ["*"], "enabled": false})).await;
    for n in 0..3 {
        api.event("order.placed", json!({"n": n})).await;
    }
    // 15 deliveries; wait until none is pending or retrying.
    let all = eventually("deliveries to settle", std::time::Duration::from_secs(20), || async {
        let page = api.get("/deliveries?limit=250").await;
        let items = page["items"].as_array().unwrap().clone();
        let settled = items.iter().all(|d| !matches!(d["status"].as_str(), Some("pending" | "retrying")));
        (items.len() >= 15 && settled).then_some(items)
    })
    .await;
    let code = |d: &Value| d["last_response_code"].as_i64().unwrap_or(0);
    for (sort, order) in
        [("response_code", "desc"), ("response_code", "asc"), ("status", "asc"), ("time", "asc")]
    {
        let (mut seen, mut cursor) = (Vec::<Value>::new(), None::<String>);
        loop {
            let mut path = format!("/deliveries?sort={sort}&order={order}&limit=4");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = api.get(&path).await;
            seen.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), all.len(), "{sort} {order}: every row once");
        let unique: HashSet<_> = seen.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(unique.len(), seen.len(), "{sort} {order}: none repeated");
        let keys: Vec<String> = seen
            .iter()
            .map(|d| match sort {
                "response_code" => format!("{:03}", code(d)),
                "status" => d["status"].as_str().unwrap().to_owned(),
                _ => d["created_at"].as_str().unwrap().to_owned(),
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        if order == "desc" {
            sorted.reverse();
        }
        assert_eq!(keys, sorted, "{sort} {order}");
    }
    let (status, problem) = api.call(reqwest::Method::GET, "/deliveries?sort=colour", None).await;
    assert_eq!((status.as_u16(), problem["field"].as_str()), (422, Some("query")), "{problem}");
    let first = api.get("/deliveries?sort=status&limit=2").await["next_cursor"].as_str().unwrap().to_owned();
    let (status, _) =
        api.call(reqwest::Method::GET, &format!("/deliveries?sort=response_code&cursor={first}"), None).await;
    assert_eq!(status.as_u16(), 422, "a cursor belongs to its sort");
    app.stop().await;
}
