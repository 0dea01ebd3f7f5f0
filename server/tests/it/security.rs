//! What an attacker tries: cross-site requests with an admin's cookie, redirects through
//! sign-in, credentials read back, input PostgreSQL cannot store, payloads that cannot be read
//! back, and the headers that keep the app out of frames and sniffers.

use reqwest::{
    header::{AUTHORIZATION, CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE},
    Method, StatusCode,
};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, PaginatorTrait};
use serde_json::{json, Value};

use crate::{
    both_databases,
    common::{receiver::Receiver, *},
};

both_databases!(
    cross_site_requests_with_a_session_are_refused,
    every_server_function_refuses_other_sites,
    sign_in_redirects_only_to_paths_of_this_origin,
    pages_carry_security_headers_and_a_nonce_policy,
    input_postgresql_cannot_store_is_refused_naming_the_field,
    payloads_that_cannot_be_read_back_are_refused_at_the_door,
    credentials_in_webhook_urls_are_refused_and_never_shown,
    idempotency_keys_reused_with_another_request_are_refused,
    webhooks_have_bounded_lists,
);

async fn api_key_count(app: &TestApp) -> u64 {
    app::db::entities::api_keys::Entity::find().count(&app.db).await.unwrap()
}

async fn cross_site_requests_with_a_session_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_in().await;
    let host = app.addr.to_string();
    let create_key = |headers: Vec<(&'static str, String)>| {
        let mut req =
            app.client.post(app.url("/rpc/create_api_key")).header(COOKIE, &cookie).form(&[("name", "x")]);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let before = api_key_count(&app).await;

    // Another site, another port of the same host (same-site), or an Origin that is not this
    // one: refused before the server function runs.
    for headers in [
        vec![("sec-fetch-site", "cross-site".to_owned()), ("origin", "http://evil.example".to_owned())],
        vec![("sec-fetch-site", "same-site".to_owned()), ("origin", "http://127.0.0.1:1".to_owned())],
        vec![("origin", "http://127.0.0.1:1".to_owned())],
        vec![("origin", "null".to_owned())],
    ] {
        let res = create_key(headers.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{headers:?}");
    }
    assert_eq!(api_key_count(&app).await, before, "no key was created by a refused request");

    // The app's own requests pass: fetch metadata from this origin, or its Origin.
    let res = create_key(vec![("sec-fetch-site", "same-origin".to_owned())]).await.unwrap();
    assert_eq!(res.status(), 200);
    let res = create_key(vec![("origin", format!("http://{host}"))]).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(api_key_count(&app).await, before + 2);

    // Login CSRF: a cross-site form must not sign the visitor in as someone else.
    let res = app
        .client
        .post(app.url("/auth/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get(SET_COOKIE).is_none());

    // The JSON API takes keys, never cookies: a browser cannot be made to send one, and an
    // Origin does not matter there.
    let api = app.api().await;
    let res = app
        .client
        .get(app.url("/api/v1/webhooks"))
        .header(AUTHORIZATION, format!("bearer {}", api.key))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the bearer scheme is case-insensitive (RFC 9110)");
    app.stop().await;
}

/// Not only the functions a test names: every server function the app registers is a POST under
/// `/rpc/` (where the cross-site guard stands; a GET one would pass it), and each refuses another
/// site's request made with an admin's cookie. The destructive ones get valid input, so a
/// refusal that came from the function rather than the guard would show as a change.
async fn every_server_function_refuses_other_sites(backend: Backend) {
    use app::db::entities::{users, webhooks};
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_in().await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let (webhook, _) = api.webhook(json!({"name": "kept", "url": rx.url("/ok"), "event_types": ["*"]})).await;
    let admin = users::Entity::find().one(&app.db).await.unwrap().expect("the first admin");

    let mut functions: Vec<(&str, Method)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| (path, Method::from_bytes(method.as_str().as_bytes()).unwrap()))
        .collect();
    functions.sort_by_key(|(path, _)| *path);
    for name in [
        "create_user",
        "set_user_role",
        "set_user_disabled",
        "delete_webhook",
        "update_webhook",
        "rotate_secret",
        "revoke_api_key",
        "create_api_key",
        "send_test_event",
        "recovery_progress",
        "list_deliveries",
        "log_choices",
    ] {
        let path = format!("/rpc/{name}");
        assert!(functions.iter().any(|(p, _)| *p == path), "{path} is registered: {functions:?}");
    }
    let webhook_id = webhook.as_str();
    let admin_id = admin.id.to_string();
    for (path, method) in &functions {
        assert!(path.starts_with("/rpc/"), "{path} is where the guard stands");
        assert_eq!(*method, Method::POST, "{path}: only POST server functions are guarded");
        let form: &[(&str, &str)] = match path.trim_start_matches("/rpc/") {
            "delete_webhook" | "send_test_event" => &[("id", webhook_id)],
            "rotate_secret" => &[("id", webhook_id), ("grace_hours", "0")],
            "create_user" => &[("email", "mallory@example.test"), ("role", "admin")],
            "set_user_role" => &[("id", &admin_id), ("role", "viewer")],
            "set_user_disabled" => &[("id", &admin_id), ("disabled", "true")],
            _ => &[],
        };
        let res = app
            .client
            .post(app.url(path))
            .header(COOKIE, &cookie)
            .header("sec-fetch-site", "cross-site")
            .header("origin", "http://evil.example")
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert!(functions.len() >= 30, "{} server functions", functions.len());

    // Nothing changed: the webhook, its secret, the admin and the users are as they were.
    let kept =
        webhooks::Entity::find_by_id(uuid::Uuid::parse_str(webhook_id).unwrap()).one(&app.db).await.unwrap();
    let kept = kept.expect("the webhook was not deleted");
    assert!(kept.previous_secret.is_none(), "the secret was not rotated");
    let after = users::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(after.len(), 1, "no user was created");
    assert_eq!((after[0].role, after[0].disabled_at), (admin.role, admin.disabled_at));
    assert_eq!(
        app::db::entities::deliveries::Entity::find().count(&app.db).await.unwrap(),
        0,
        "no test event"
    );
    assert!(app.sign_in_as(ADMIN_EMAIL, ADMIN_PASSWORD).await.is_some(), "the admin can still sign in");
    app.stop().await;
}

async fn sign_in_redirects_only_to_paths_of_this_origin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sign_in = |next: &'static str| {
        app.client
            .post(app.url("/auth/login"))
            .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("next", next)])
            .send()
    };
    // Browsers drop tabs and line breaks from URLs and read `\` as `/`: each of these would
    // land on another host. A newline would also have been a header injection (a 500).
    for hostile in
        ["/\t/127.0.0.2:4759/x", "/\n/evil.example", "/\nX-Injected: 1", "/\\evil.example", "//evil"]
    {
        let res = sign_in(hostile).await.unwrap();
        assert_eq!(res.status(), 303, "{hostile:?}");
        assert_eq!(res.headers()[LOCATION], "/", "{hostile:?}");
        assert!(res.headers().get("x-injected").is_none());
    }
    let res = sign_in("/webhooks?x=%09").await.unwrap();
    assert_eq!(res.headers()[LOCATION], "/webhooks?x=%09", "a real path keeps its query");

    // HEAD is a GET without a body: it is kept out of pages the same way.
    let res = app.client.head(app.url("/settings")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/login?next=%2Fsettings");
    app.stop().await;
}

async fn pages_carry_security_headers_and_a_nonce_policy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cookie = app.sign_in().await;
    let res = app.client.get(app.url("/webhooks")).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce =
        csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a nonce").to_owned();
    let html = res.text().await.unwrap();
    let inline_scripts = html.matches("<script").count();
    let with_nonce = html.matches(&format!("nonce=\"{nonce}\"")).count();
    assert!(inline_scripts > 0 && with_nonce >= inline_scripts, "every script carries the response's nonce");

    // Another response, another nonce.
    let again = app.client.get(app.url("/webhooks")).header(COOKIE, &cookie).send().await.unwrap();
    assert_ne!(again.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap(), csp);

    // API answers and the sign-in page get the strict defaults too.
    for path in ["/api/v1/health", "/login", "/api/v1/openapi.json"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.headers()["x-frame-options"], "DENY", "{path}");
        assert!(res.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().contains("frame-ancestors 'none'"));
    }
    app.stop().await;
}

async fn input_postgresql_cannot_store_is_refused_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let hook = json!({"name": "ok", "url": "http://127.0.0.1:9/x", "event_types": ["*"]});
    let with = |field: &str, value: Value| {
        let mut body = hook.clone();
        body[field] = value;
        body
    };
    for (body, field) in [
        (with("name", json!("a\u{0}b")), "name"),
        (with("description", json!("a\u{0}b")), "description"),
        (with("headers", json!({"X-A": "a\u{0}b"})), "headers.X-A"),
        (with("auth", json!({"type": "basic", "username": "u", "password": "p\u{0}"})), "auth.password"),
    ] {
        let (status, problem) = api.call(Method::POST, "/webhooks", Some(body)).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    let (_, list) = api.call(Method::GET, "/webhooks", None).await;
    assert_eq!(list["items"], json!([]), "nothing was stored");

    let (status, problem) = api
        .call(
            Method::POST,
            "/events",
            Some(json!({"type": "a.b", "payload": {}, "idempotency_key": "k\u{0}"})),
        )
        .await;
    assert_eq!((status.as_u16(), problem["field"].as_str()), (422, Some("idempotency_key")), "{problem}");
    // A NUL inside the payload is JSON like any other (`\u0000`): stored and delivered as sent.
    let id = api.event_raw(r#"{"type": "a.b", "payload": {"s": "x\u0000y"}}"#).await;
    let events = api.get("/events?type=a.b").await;
    assert_eq!(events["items"][0]["id"], id.as_str());
    assert_eq!(events["items"][0]["payload"]["s"], "x\u{0}y");

    for (path, field) in [
        ("/deliveries?event_type=a%00b", "event_type"),
        ("/deliveries?category=a%00", "category"),
        ("/deliveries?q=%00", "q"),
        ("/events?type=a%00b", "type"),
    ] {
        let (status, problem) = api.call(Method::GET, path, None).await;
        assert_eq!(status, 422, "{path}: {problem}");
        assert_eq!(problem["field"], field, "{path}");
    }

    // The admin app's search box: no stored delivery can match a NUL, and it is no server error.
    let cookie = app.sign_in().await;
    let res = app
        .client
        .post(app.url("/rpc/list_deliveries"))
        .header(COOKIE, cookie)
        .form(&[("query[q]", "a\u{0}b"), ("query[category]", "\u{0}")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["items"], json!([]));

    // Signing in with a NUL is a wrong password, not an outage.
    let res = app
        .client
        .post(app.url("/auth/login"))
        .form(&[("email", "admin\u{0}@example.test"), ("password", ADMIN_PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert!(res.headers()[LOCATION].to_str().unwrap().starts_with("/login?error=invalid"));
    app.stop().await;
}

async fn payloads_that_cannot_be_read_back_are_refused_at_the_door(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let post = |raw: String| {
        app.client
            .post(app.url("/api/v1/events"))
            .header(AUTHORIZATION, format!("Bearer {}", api.key))
            .header("content-type", "application/json")
            .body(raw)
            .send()
    };
    let nested = |depth: usize| {
        format!(r#"{{"type": "a.b", "payload": {}1{}}}"#, "[".repeat(depth), "]".repeat(depth))
    };
    for raw in [nested(100_000), nested(129), r#"{"type": "a.b", "payload": {"s": "\ud800"}}"#.to_owned()] {
        let res = post(raw.clone()).await.unwrap();
        assert_eq!(res.status(), 422, "{}", &raw[..60.min(raw.len())]);
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["field"], "payload", "{problem}");
    }
    // What is accepted reads back as it was sent: deep but within the limit, and a surrogate pair.
    let deep = post(nested(120)).await.unwrap();
    assert_eq!(deep.status(), 202);
    let pair = post(r#"{"type": "a.b", "payload": {"s": "\ud83d\ude00"}}"#.to_owned()).await.unwrap();
    assert_eq!(pair.status(), 202);
    let events = api.get("/events?type=a.b").await;
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "only the readable events were stored");
    assert!(items.iter().all(|e| !e["payload"].is_null()));
    assert!(items.iter().any(|e| e["payload"]["s"] == "😀"));
    app.stop().await;
}

async fn credentials_in_webhook_urls_are_refused_and_never_shown(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let plain = rx.url("/ok");
    let with_creds = plain.replacen("http://", "http://alice:s3cret@", 1);
    let (status, problem) = api
        .call(Method::POST, "/webhooks", Some(json!({"name": "w", "url": with_creds, "event_types": ["*"]})))
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem["field"], "url");
    assert!(problem["detail"].as_str().unwrap().contains("auth"), "says where credentials go: {problem}");

    // A webhook stored before this rule still sends its credentials, and no read shows them.
    let (id, _) = api.webhook(json!({"name": "w", "url": plain, "event_types": ["*"]})).await;
    let uuid: uuid::Uuid = id.parse().unwrap();
    let mut old: app::db::entities::webhooks::ActiveModel =
        app::db::entities::webhooks::Entity::find_by_id(uuid).one(&app.db).await.unwrap().unwrap().into();
    old.url = Set(with_creds.clone());
    old.update(&app.db).await.unwrap();

    api.event("a.b", json!({})).await;
    let delivered = eventually("the delivery", std::time::Duration::from_secs(10), || async {
        let list = api.deliveries_of(&id).await;
        list.first().filter(|d| d["status"] != "pending").cloned()
    })
    .await;
    assert_eq!(delivered["status"], "succeeded", "{delivered}");
    assert_eq!(rx.received_at("/ok")[0].header("authorization"), "Basic YWxpY2U6czNjcmV0");

    let shown = [
        api.get(&format!("/webhooks/{id}")).await.to_string(),
        api.get("/webhooks").await.to_string(),
        api.get(&format!("/deliveries/{}", delivered["id"].as_str().unwrap())).await.to_string(),
        api.get("/deliveries").await.to_string(),
        api.get("/activity").await.to_string(),
    ];
    for body in &shown {
        assert!(!body.contains("s3cret"), "{body}");
    }
    let detail = api.get(&format!("/deliveries/{}", delivered["id"].as_str().unwrap())).await;
    assert_eq!(detail["attempts"][0]["request"]["url"], plain.replacen("http://", "http://***@", 1));
    app.stop().await;
}

async fn idempotency_keys_reused_with_another_request_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let first = api
        .post("/events", json!({"type": "a.b", "payload": {"n": 1, "m": 2}, "idempotency_key": "k1"}))
        .await;
    // The same request again (other key order, other whitespace) is the same event.
    let again = api.event_raw(r#"{"type":"a.b","payload":{ "m":2,"n":1 },"idempotency_key":"k1"}"#).await;
    assert_eq!(again, first["id"].as_str().unwrap());
    for other in [
        json!({"type": "a.b", "payload": {"n": 2}, "idempotency_key": "k1"}),
        json!({"type": "a.c", "payload": {"n": 1, "m": 2}, "idempotency_key": "k1"}),
    ] {
        let (status, problem) = api.call(Method::POST, "/events", Some(other)).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "idempotency_key");
        assert!(problem["detail"].as_str().unwrap().contains(first["id"].as_str().unwrap()));
    }
    assert_eq!(api.get("/events").await["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

async fn webhooks_have_bounded_lists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let types: Vec<String> = (0..101).map(|i| format!("t.e{i}")).collect();
    let headers: serde_json::Map<String, Value> = (0..33).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    for (body, field) in [
        (json!({"name": "w", "url": "http://127.0.0.1:9/", "event_types": types}), "event_types"),
        (
            json!({"name": "w", "url": "http://127.0.0.1:9/", "event_types": ["*"], "headers": headers}),
            "headers",
        ),
    ] {
        let (status, problem) = api.call(Method::POST, "/webhooks", Some(body)).await;
        assert_eq!((status.as_u16(), problem["field"].as_str()), (422, Some(field)), "{problem}");
    }
    let types: Vec<String> = (0..100).map(|i| format!("t.e{i}")).collect();
    api.webhook(json!({"name": "w", "url": "http://127.0.0.1:9/", "event_types": types})).await;
    app.stop().await;
}
