use reqwest::{header::AUTHORIZATION, Response};
use serde_json::Value;

use crate::{both_databases, common::*};

both_databases!(api_refuses_requests_without_a_valid_key);

async fn assert_problem(res: Response, status: u16) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

async fn api_refuses_requests_without_a_valid_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let deliveries = app.url("/api/v1/deliveries");

    let res = app.client.get(&deliveries).send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_problem(res, 401).await;
    for bad in ["Basic YWRtaW46cGFzcw==", "Bearer ", "Bearer hrld_not-a-real-key"] {
        let res = app.client.get(&deliveries).header(AUTHORIZATION, bad).send().await.unwrap();
        assert_problem(res, 401).await;
    }
    // Unknown routes do not reveal themselves to callers without a key.
    let res = app.client.get(app.url("/api/v1/no-such-thing")).send().await.unwrap();
    assert_problem(res, 401).await;

    let key = app.api_key().await;
    let bearer = format!("Bearer {key}");
    let res = app.client.get(&deliveries).header(AUTHORIZATION, &bearer).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"], serde_json::json!([]));

    let res =
        app.client.get(app.url("/api/v1/no-such-thing")).header(AUTHORIZATION, &bearer).send().await.unwrap();
    assert_problem(res, 404).await;
    let res = app
        .client
        .get(format!("{deliveries}?status=done"))
        .header(AUTHORIZATION, &bearer)
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("status"), "{body}");
    let res = app
        .client
        .get(format!("{deliveries}?limit=1000"))
        .header(AUTHORIZATION, &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(assert_problem(res, 422).await["field"], "limit");

    // A key revoked in the admin app stops working at once, though this process had just
    // found it live.
    use app::db::entities::api_keys;
    use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
    let key = api_keys::Entity::find().filter(api_keys::Column::Name.eq("test")).one(&app.db).await;
    let id = key.unwrap().expect("the test key").id.to_string();
    let cookie = app.sign_in().await;
    assert_eq!(rpc(&app, &cookie, "revoke_api_key", &[("id", &id)]).await.0, 200);
    let res = app.client.get(&deliveries).header(AUTHORIZATION, &bearer).send().await.unwrap();
    assert_problem(res, 401).await;

    // One revoked by another process sharing the database (here, in the database itself) stops
    // working once this process's trust in it runs out (`LiveKeys::TRUST`).
    let (_, other) = app::db::api_keys::create(&app.db, "other", None, "test").await.unwrap();
    let other = format!("Bearer {other}");
    let res = app.client.get(&deliveries).header(AUTHORIZATION, &other).send().await.unwrap();
    assert_eq!(res.status(), 200);
    api_keys::Entity::update_many()
        .col_expr(api_keys::Column::RevokedAt, Expr::value(app::db::now()))
        .filter(api_keys::Column::Name.eq("other"))
        .exec(&app.db)
        .await
        .unwrap();
    tokio::time::sleep(app::db::api_keys::LiveKeys::TRUST + std::time::Duration::from_millis(50)).await;
    let res = app.client.get(&deliveries).header(AUTHORIZATION, &other).send().await.unwrap();
    assert_problem(res, 401).await;
    app.stop().await;
}
