//! A 202 is a promise. Events are posted without pause while the storage fails under Herald
//! (SQLite's files made unwritable, or its disk full; its PostgreSQL server crashed and
//! started again), and the
//! test checks by event id that every event answered 202 is stored and delivered, that the
//! others were refused quickly with 503 problem+json and `Retry-After`, that `/health` told the
//! truth meanwhile, and that Herald recovered by itself within seconds.

use std::time::{Duration, Instant};

use app::db::entities::events;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::common::{
    faults::{Posted, Poster, PrivatePostgres, SmallDisk, Unwritable},
    receiver::Receiver,
    *,
};

/// How long the fault lasts.
const FAULT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_unwritable_then_writable_loses_no_accepted_event() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let file = app::db::sqlite_path(&app.database_url).expect("a SQLite file");
    let fault = |_: &TestApp| Unwritable::sqlite_files(std::path::Path::new(&file));
    through_a_fault(&app, fault, drop).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_then_freed_loses_no_accepted_event() {
    let disk = SmallDisk::mount(24);
    let url = format!("sqlite://{}?mode=rwc", disk.dir.path().join("herald.db").display());
    let app = TestApp::spawn_on(&url, |_| {}).await;
    through_a_fault(&app, |_| disk.fill(), |()| disk.free()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_and_restart_loses_no_accepted_event() {
    let pg = PrivatePostgres::start();
    let app = TestApp::spawn_on(&pg.url(), |_| {}).await;
    through_a_fault(&app, |_| pg.crash(), |()| pg.resume()).await;
    app.stop().await;
}

/// Posts events before, during and after a fault (`begin` starts it, `end` clears it) and
/// checks what every answer promised.
async fn through_a_fault<F>(app: &TestApp, begin: impl FnOnce(&TestApp) -> F, end: impl FnOnce(F)) {
    let rx = Receiver::start().await;
    let api = app.api().await;
    api.webhook(json!({"name": "orders", "url": rx.url("/ok"), "event_types": ["*"]})).await;
    let poster = Poster::start(api.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;

    let fault = begin(app);
    let fault_began = Instant::now();
    tokio::time::sleep(FAULT / 2).await;
    let (status, detail) = health(app).await;
    assert_eq!(status, 503, "/health during the fault: {detail}");
    println!("/health during the fault: 503 {detail}");
    let banner = admin_app_health(app).await;
    assert!(banner.contains("database"), "the admin app's banner has the reason: {banner}");
    tokio::time::sleep(FAULT / 2).await;
    end(fault);
    let fault_ended = Instant::now();

    // Recovery: events are accepted again, by themselves, within seconds.
    let recovered = eventually("events accepted again after the fault", Duration::from_secs(10), || async {
        poster.posted().iter().find(|p| p.at > fault_ended && p.status == 202).map(|p| p.at)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let posted = poster.stop().await;
    let (status, detail) = health(app).await;
    assert_eq!(status, 200, "/health after the fault: {detail}");
    assert_eq!(admin_app_health(app).await, "null", "no banner once the database answers");

    let accepted: Vec<&Posted> = posted.iter().filter(|p| p.status == 202).collect();
    let refused: Vec<&Posted> = posted.iter().filter(|p| p.status != 202).collect();
    for p in &refused {
        assert_eq!(p.status, 503, "a refused event is a 503, not {}: {p:?}", p.status);
        assert_eq!(p.retry_after.as_deref(), Some("2"), "503 with Retry-After: {p:?}");
        assert_eq!(p.content_type.as_deref(), Some("application/problem+json"), "{p:?}");
    }
    let during: Vec<&&Posted> =
        refused.iter().filter(|p| p.at >= fault_began + Duration::from_millis(500)).collect();
    assert!(!during.is_empty(), "events posted during the fault were refused");
    let slowest = refused.iter().map(|p| p.took).max().unwrap_or_default();
    assert!(slowest <= Duration::from_millis(1500), "refused within about a second; slowest {slowest:?}");
    let accepted_during = accepted.iter().filter(|p| p.at > fault_began && p.at < fault_ended).count();
    println!(
        "{} posted: {} accepted ({accepted_during} while the fault lasted), {} refused with 503 \
         (slowest answer {slowest:?}); accepting again {:?} after the fault cleared",
        posted.len(),
        accepted.len(),
        refused.len(),
        recovered - fault_ended
    );

    // Every 202 is stored and delivered.
    for p in &accepted {
        let id: uuid::Uuid = p.id.as_deref().unwrap().parse().expect("event id");
        let stored = events::Entity::find_by_id(id).one(&app.db).await.expect("read events");
        assert!(stored.is_some(), "event {id}, answered 202, is stored");
    }
    let ids: std::collections::HashSet<String> = accepted.iter().map(|p| p.id.clone().unwrap()).collect();
    eventually("every accepted event delivered", Duration::from_secs(60), || async {
        let arrived: std::collections::HashSet<String> =
            rx.received().iter().map(|r| r.header("webhook-id").to_owned()).collect();
        ids.is_subset(&arrived).then_some(())
    })
    .await;
}

/// What the admin app's banner shows (the `health` server function it polls): the reason
/// Herald cannot store events, as JSON, or `null`.
async fn admin_app_health(app: &TestApp) -> String {
    let res = app
        .client
        .post(app.url("/rpc/health"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .expect("rpc/health");
    // The banners' `database` field: the reason, or null.
    let banners: serde_json::Value = res.json().await.unwrap_or_default();
    banners["database"].to_string()
}

async fn health(app: &TestApp) -> (u16, String) {
    let res = app.client.get(app.url("/api/v1/health")).send().await.expect("health");
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    (status, body["detail"].as_str().unwrap_or("ok").to_owned())
}
