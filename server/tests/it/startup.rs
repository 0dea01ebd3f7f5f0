use app::db::entities::{activity_log, users};
use app::models::Role;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::Value;

use crate::{both_databases, common::*};

both_databases!(starts_on_a_fresh_database_with_a_first_admin);

async fn starts_on_a_fresh_database_with_a_first_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let res = app.client.get(app.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");

    let all = users::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(all.len(), 1, "exactly the first admin");
    assert_eq!(all[0].email, ADMIN_EMAIL);
    assert_eq!(all[0].role, Role::Admin);
    assert_ne!(all[0].password_hash, ADMIN_PASSWORD, "only a hash is stored");
    assert!(all[0].password_hash.starts_with("$argon2id$"));
    assert_eq!(
        activity_log::Entity::find().count(&app.db).await.unwrap(),
        1,
        "the creation is in the activity log"
    );
    app.stop().await;
}
