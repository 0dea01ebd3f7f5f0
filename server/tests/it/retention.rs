//! Retention: the purge removes what the policy says, keeps what is young or unfinished, counts
//! without deleting in a dry run, keeps to one open purge, and an interrupted bulk job resumes.

use std::time::Duration;

use futures::StreamExt;

use app::{
    db::entities::{activity_log, attempts, deliveries, events, jobs},
    models::{DeliveryStatus, RetentionPolicy},
};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait,
    QueryFilter,
};
use serde_json::json;

use crate::{
    both_databases,
    common::{receiver::Receiver, *},
};

both_databases!(
    purge_removes_old_finished_rows_and_keeps_the_rest,
    an_interrupted_bulk_job_resumes_at_its_cursor,
    purging_200k_attempts_runs_in_batches_while_deliveries_go_on,
    retention_settings_purge_on_demand_and_the_activity_log_through_the_api,
    a_long_purge_keeps_its_lease_so_no_other_process_takes_it,
);

/// A job row as a process would have left it: `owner` holds its lease until `lease_until`.
fn job_row(
    kind: &str,
    status: &str,
    params: String,
    owner: &str,
    lease_until: chrono::DateTime<chrono::Utc>,
    at: chrono::DateTime<chrono::Utc>,
) -> jobs::ActiveModel {
    jobs::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        kind: Set(kind.into()),
        status: Set(status.into()),
        params: Set(params),
        progress_done: Set(0),
        progress_total: Set(None),
        cursor: Set(None),
        error: Set(None),
        lease_owner: Set(Some(owner.into())),
        lease_expires_at: Set(Some(lease_until)),
        created_by: Set(Some("test".into())),
        created_at: Set(at),
        started_at: Set(Some(at)),
        finished_at: Set((status == "succeeded" || status == "failed").then_some(at)),
    }
}

/// `n` successful attempts of one delivery, all started at `at`, inserted 1000 at a time.
async fn seed_attempts(
    db: &sea_orm::DatabaseConnection,
    delivery: uuid::Uuid,
    webhook: uuid::Uuid,
    n: usize,
    at: chrono::DateTime<chrono::Utc>,
) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let rows = chunk.iter().map(|i| attempts::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            delivery_id: Set(delivery),
            webhook_id: Set(webhook),
            attempt_number: Set(*i as i32 + 2),
            trigger: Set(app::models::AttemptTrigger::Automatic),
            started_at: Set(at),
            duration_ms: Set(12),
            request_url: Set("https://example.com/hook".into()),
            request_method: Set("POST".into()),
            request_headers: Set(r#"{"content-type":"application/json"}"#.into()),
            request_body: Set(Some(r#"{"n":1}"#.into())),
            response_status: Set(Some(200)),
            response_headers: Set(Some("{}".into())),
            response_body: Set(Some("ok".into())),
            response_body_truncated: Set(false),
            outcome: Set(app::models::Outcome::Success),
            error: Set(None),
            sent_by: Set(None),
        });
        attempts::Entity::insert_many(rows).exec_without_returning(db).await.unwrap();
    }
}

async fn counts(db: &sea_orm::DatabaseConnection) -> (u64, u64, u64) {
    (
        events::Entity::find().count(db).await.unwrap(),
        deliveries::Entity::find().count(db).await.unwrap(),
        attempts::Entity::find().count(db).await.unwrap(),
    )
}

async fn purge_removes_old_finished_rows_and_keeps_the_rest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    // (Not `*`: Herald's own `webhook.failing` event, emitted when `failing` first fails, is an
    // event with no delivery here, and old with the others.)
    let types = json!(["x.*", "keep.*"]);
    api.webhook(json!({"name": "ok", "url": rx.url("/ok"), "event_types": types})).await;
    api.webhook(json!({"name": "off", "url": rx.url("/ok"), "event_types": types, "enabled": false})).await;
    let (failing, _) = api
        .webhook(json!({"name": "failing", "url": rx.url("/status/500"), "event_types": ["keep.*"],
                        "retry_schedule": [0, 3600]}))
        .await;
    let old_gone = api.event("x.old", json!({"n": 1})).await;
    let old_kept = api.event("keep.old", json!({"n": 2})).await;
    eventually("old deliveries settled", Duration::from_secs(20), || async {
        let rows = deliveries::Entity::find().all(&app.db).await.unwrap();
        let settled = rows.iter().all(|d| d.status != DeliveryStatus::Pending && d.lease_owner.is_none());
        (rows.len() == 5 && settled).then_some(())
    })
    .await;
    assert_eq!(api.deliveries_of(&failing).await[0]["status"], "retrying", "unfinished: retried in an hour");

    // Everything so far happened 40 days ago.
    let old = app::db::now() - chrono::Duration::days(40);
    events::Entity::update_many()
        .col_expr(events::Column::CreatedAt, Expr::value(old))
        .exec(&app.db)
        .await
        .unwrap();
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::CreatedAt, Expr::value(old))
        .col_expr(deliveries::Column::LastAttemptAt, Expr::value(old))
        .exec(&app.db)
        .await
        .unwrap();
    attempts::Entity::update_many()
        .col_expr(attempts::Column::StartedAt, Expr::value(old))
        .exec(&app.db)
        .await
        .unwrap();
    let young = api.event("x.new", json!({"n": 3})).await;
    eventually("young deliveries settled", Duration::from_secs(20), || async {
        let rows = deliveries::Entity::find()
            .filter(deliveries::Column::EventId.eq(young.parse::<uuid::Uuid>().unwrap()))
            .all(&app.db)
            .await
            .unwrap();
        (rows.len() == 2 && rows.iter().all(|d| d.status != DeliveryStatus::Pending)).then_some(())
    })
    .await;
    for (finished_days_ago, status) in [(10, "succeeded"), (1, "succeeded"), (10, "running")] {
        let at = app::db::now() - chrono::Duration::days(finished_days_ago);
        let lease_until = app::db::now() + chrono::Duration::hours(1);
        job_row("bulk_retry", status, "{}".into(), "elsewhere", lease_until, at)
            .insert(&app.db)
            .await
            .unwrap();
    }

    let settings = herald_server::jobs::JobSettings {
        retention: RetentionPolicy::default(),
        purge_interval: None,
        purge_batch: 2,
    };
    let before = counts(&app.db).await;
    let dry = herald_server::jobs::run_purge(&app.db, &settings, true, "test").await.unwrap();
    assert_eq!(counts(&app.db).await, before, "a dry run deletes nothing");
    // Old: the `ok` and `off` deliveries of both events (4) and the `ok` attempts (2), the event
    // `x.old` and the `webhook.failing` event. Kept: the retrying delivery, its attempt and its
    // event. Young: everything.
    assert_eq!((dry.deliveries, dry.attempts, dry.events, dry.jobs), (4, 2, 2, 1), "{dry:?}");

    let report = herald_server::jobs::run_purge(&app.db, &settings, false, "test").await.unwrap();
    assert_eq!((report.deliveries, report.attempts, report.events, report.jobs), (4, 2, 2, 1), "{report:?}");
    assert!(report.batches >= 4, "batches of at most 2 rows: {report:?}");
    let remaining = deliveries::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(remaining.len(), 3, "the retrying one and the two young ones");
    assert!(remaining
        .iter()
        .any(|d| d.status == DeliveryStatus::Retrying && d.event_id.to_string() == old_kept));
    let event_ids: Vec<String> =
        events::Entity::find().all(&app.db).await.unwrap().iter().map(|e| e.id.to_string()).collect();
    assert!(event_ids.contains(&old_kept) && event_ids.contains(&young) && !event_ids.contains(&old_gone));
    assert_eq!(jobs::Entity::find().count(&app.db).await.unwrap(), 2, "the young and the running job stay");
    let logged = activity_log::Entity::find()
        .filter(activity_log::Column::Kind.eq("job.purge"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(logged.len(), 2, "the dry run and the purge are both in the activity log");
    assert!(logged
        .iter()
        .any(|l| l.rows_affected == Some(9) && l.detail.as_deref().unwrap_or_default().contains("ended_at")));

    // One open purge at a time, whichever process asks.
    let first = app::db::jobs::queue_purge(&app.db, "test").await.unwrap();
    let second = app::db::jobs::queue_purge(&app.db, "test").await.unwrap();
    assert!(first.is_some() && second.is_none(), "a second purge is not queued while one is open");
    app.stop().await;
}

async fn an_interrupted_bulk_job_resumes_at_its_cursor(backend: Backend) {
    let (app, api, rx, id) = shop_behind_a_receiver_down(backend, 10).await;
    eventually("ten failed or held deliveries", Duration::from_secs(20), || async {
        let rows = api.deliveries_of(&id).await;
        let done = rows.len() == 10 && rows.iter().all(|d| d["status"] == "failed" || d["status"] == "held");
        done.then_some(())
    })
    .await;
    api.post(&format!("/webhooks/{id}/reactivate"), json!({})).await;
    rx.set_down(false);

    // A process took the job, re-queued the first 4 deliveries, and died holding its lease.
    let filter = app::models::BulkRetryFilter {
        status: Some(vec![DeliveryStatus::Failed, DeliveryStatus::Held]),
        ..Default::default()
    };
    let lease_until = app::db::now() + chrono::Duration::minutes(5);
    let params = serde_json::to_string(&filter).unwrap();
    let mut row = job_row("bulk_retry", "running", params, "dead-process", lease_until, app::db::now());
    row.progress_total = Set(Some(10));
    let job = row.insert(&app.db).await.unwrap();
    let lease = chrono::Duration::minutes(5);
    let first = app::db::jobs::bulk_retry_step(&app.db, &job, "dead-process", 4, lease).await.unwrap();
    assert_eq!(first, Some(4));
    jobs::Entity::update_many()
        .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(app::db::now() - chrono::Duration::seconds(1)))
        .filter(jobs::Column::Id.eq(job.id))
        .exec(&app.db)
        .await
        .unwrap();

    // A live process takes it over at its cursor and finishes it.
    let done = eventually("the job to finish", Duration::from_secs(30), || async {
        let j = api.get(&format!("/jobs/{}", job.id)).await;
        (j["status"] == "succeeded").then_some(j)
    })
    .await;
    assert_eq!(done["progress_done"], 10, "4 before the crash and 6 after, none twice: {done}");
    eventually("all ten delivered", Duration::from_secs(20), || async {
        let rows = api.deliveries_of(&id).await;
        rows.iter().all(|d| d["status"] == "succeeded").then_some(())
    })
    .await;
    let bulk = attempts::Entity::find()
        .filter(attempts::Column::Trigger.eq(app::models::AttemptTrigger::Bulk))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(bulk.len(), 10, "each delivery re-sent once");
    app.stop().await;
}

/// Posts `n` events to the `/ok` webhook with 8 in flight; returns deliveries per second until
/// all `expected` deliveries succeeded.
async fn delivery_run(app: &TestApp, api: &Api, n: usize, expected: u64) -> f64 {
    let start = std::time::Instant::now();
    let posts = (0..n).map(|i| {
        let api = api.clone();
        async move { api.event("load.tick", json!({"i": i})).await }
    });
    futures::stream::iter(posts).buffer_unordered(8).collect::<Vec<_>>().await;
    eventually("the load's deliveries", Duration::from_secs(120), || async {
        let done = deliveries::Entity::find()
            .filter(deliveries::Column::Status.eq(DeliveryStatus::Succeeded))
            .filter(deliveries::Column::EventType.eq("load.tick"))
            .count(&app.db)
            .await
            .unwrap();
        (done >= expected).then_some(())
    })
    .await;
    n as f64 / start.elapsed().as_secs_f64()
}

async fn purging_200k_attempts_runs_in_batches_while_deliveries_go_on(backend: Backend) {
    const OLD: usize = 200_000;
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    api.webhook(json!({"name": "load", "url": rx.url("/ok"), "event_types": ["load.*"]})).await;
    let (old_webhook, _) =
        api.webhook(json!({"name": "old", "url": rx.url("/ok"), "event_types": ["old.*"]})).await;
    api.event("old.one", json!({})).await;
    let old_delivery = eventually("the old delivery", Duration::from_secs(20), || async {
        let rows = api.deliveries_of(&old_webhook).await;
        rows.first()
            .filter(|d| d["status"] == "succeeded")
            .map(|d| d["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap())
    })
    .await;

    // 200,000 attempts 40 days old, as many as a busy week leaves.
    let old = app::db::now() - chrono::Duration::days(40);
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::CreatedAt, Expr::value(old))
        .col_expr(deliveries::Column::LastAttemptAt, Expr::value(old))
        .exec(&app.db)
        .await
        .unwrap();
    attempts::Entity::update_many()
        .col_expr(attempts::Column::StartedAt, Expr::value(old))
        .exec(&app.db)
        .await
        .unwrap();
    let seeding = std::time::Instant::now();
    seed_attempts(&app.db, old_delivery, old_webhook.parse().unwrap(), OLD, old).await;
    println!("seeded {OLD} old attempts in {:.1} s", seeding.elapsed().as_secs_f64());

    let baseline = delivery_run(&app, &api, 200, 200).await;
    let settings = herald_server::jobs::JobSettings {
        retention: RetentionPolicy::default(),
        purge_interval: None,
        purge_batch: 2000,
    };
    let purge_db = app.db.clone();
    let purge = tokio::spawn(async move {
        let start = std::time::Instant::now();
        let report = herald_server::jobs::run_purge(&purge_db, &settings, false, "test").await.unwrap();
        (report, start.elapsed().as_secs_f64())
    });
    let during = delivery_run(&app, &api, 200, 400).await;
    let (report, purge_secs) = purge.await.unwrap();
    assert_eq!(report.attempts as usize, OLD + 1, "{report:?}");
    assert_eq!(report.deliveries, 1);
    assert!(report.batches >= (OLD / 2000) as u64, "bounded batches of 2000: {report:?}");
    assert_eq!(
        attempts::Entity::find()
            .filter(attempts::Column::StartedAt.lt(old + chrono::Duration::days(1)))
            .count(&app.db)
            .await
            .unwrap(),
        0
    );
    println!(
        "{backend:?}: purged {} attempts in {} batches in {purge_secs:.1} s ({:.0} rows/s); \
         delivery rate {baseline:.0}/s before, {during:.0}/s while purging (200 events each, 8 posting at once)",
        report.attempts,
        report.batches,
        report.attempts as f64 / purge_secs
    );
    app.stop().await;
}

async fn retention_settings_purge_on_demand_and_the_activity_log_through_the_api(backend: Backend) {
    use reqwest::Method;
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let defaults = api.get("/settings/retention").await;
    assert_eq!(
        defaults,
        json!({"deliveries_days": 30, "events_days": 30, "jobs_days": 7, "bodies_days": null})
    );

    // Bad input: a clear problem naming the field, and the stored policy stays as it was.
    for (bad, field) in [
        (json!({"deliveries_days": 0, "events_days": 30, "jobs_days": 7}), Some("deliveries_days")),
        (
            json!({"deliveries_days": 30, "events_days": 30, "jobs_days": 7, "bodies_days": 99999}),
            Some("bodies_days"),
        ),
        (json!({"deliveries_days": 30, "events_days": 30, "jobs_days": 7, "keep": true}), None),
        (json!({"deliveries_days": "a month", "events_days": 30, "jobs_days": 7}), None),
    ] {
        let (status, problem) = api.call(Method::PUT, "/settings/retention", Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad} -> {problem}");
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{problem}");
        }
        assert!(!problem["detail"].as_str().unwrap_or_default().is_empty(), "{problem}");
    }
    assert_eq!(api.get("/settings/retention").await, defaults, "nothing was stored");

    let policy = json!({"deliveries_days": 10, "events_days": 12, "jobs_days": 3, "bodies_days": 2});
    let (status, saved) = api.call(Method::PUT, "/settings/retention", Some(policy.clone())).await;
    assert_eq!((status.as_u16(), &saved), (200, &policy));
    assert_eq!(api.get("/settings/retention").await, policy);

    // Webhook changes are in the activity log with who made them.
    let (id, _) =
        api.webhook(json!({"name": "audit", "url": "https://example.com/hook", "event_types": ["*"]})).await;
    api.post(&format!("/webhooks/{id}/rotate-secret"), json!({})).await;
    let (status, _) = api.call(Method::DELETE, &format!("/webhooks/{id}"), None).await;
    assert_eq!(status, 204);

    // A dry run counts; a purge is a job that finishes and is logged.
    let (status, dry) = api.call(Method::POST, "/purge?dry_run=true", None).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["attempts"], 0);
    let (status, job) = api.call(Method::POST, "/purge", None).await;
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();
    eventually("the purge job", Duration::from_secs(20), || async {
        (api.get(&format!("/jobs/{job_id}")).await["status"] == "succeeded").then_some(())
    })
    .await;
    let (status, problem) = api.call(Method::POST, "/purge?dry_run=maybe", None).await;
    assert_eq!(status, 422, "{problem}");

    let webhook_lines = api.get("/activity?kind=webhook.").await;
    let kinds: Vec<&str> =
        webhook_lines["items"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["webhook.deleted", "webhook.secret_rotated", "webhook.created"], "newest first");
    assert!(webhook_lines["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["subject"] == id.as_str() && l["actor"].as_str().unwrap().starts_with("api key ")));
    let settings = api.get("/activity?kind=settings.retention").await;
    assert_eq!(settings["items"].as_array().unwrap().len(), 1, "only the valid change was recorded");
    let purges = api.get("/activity?kind=job.purge").await;
    let purge_lines = purges["items"].as_array().unwrap();
    assert_eq!(purge_lines.len(), 1, "the purge (a dry run through the API only reads): {purges}");
    assert!(purge_lines[0]["detail"].as_str().unwrap().contains("ended_at"), "{purges}");
    assert!(purge_lines[0]["actor"].as_str().unwrap().starts_with("api key "), "who asked for it: {purges}");

    // Paging: two at a time through everything, no line twice.
    let mut seen = std::collections::HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = api.get(&format!("/activity?limit=2&cursor={cursor}")).await;
        for line in page["items"].as_array().unwrap() {
            assert!(seen.insert(line["id"].as_str().unwrap().to_owned()), "repeated: {line}");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert!(seen.len() >= 5, "{seen:?}");
    let (status, _) = api.call(Method::GET, "/activity?limit=0", None).await;
    assert_eq!(status, 422);
    app.stop().await;
}

async fn a_long_purge_keeps_its_lease_so_no_other_process_takes_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.purge_interval_secs = 0).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let (webhook, _) = api.webhook(json!({"name": "old", "url": rx.url("/ok"), "event_types": ["*"]})).await;
    api.event("old.one", json!({})).await;
    let delivery = eventually("the delivery", Duration::from_secs(20), || async {
        let rows = api.deliveries_of(&webhook).await;
        rows.first()
            .filter(|d| d["status"] == "succeeded")
            .map(|d| d["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap())
    })
    .await;
    let old = app::db::now() - chrono::Duration::days(40);
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::CreatedAt, Expr::value(old))
        .col_expr(deliveries::Column::LastAttemptAt, Expr::value(old))
        .exec(&app.db)
        .await
        .unwrap();
    seed_attempts(&app.db, delivery, webhook.parse().unwrap(), 20_000, old).await;

    // Worker A runs the purge with a lease far shorter than the purge (100-row batches). The
    // server's own job runner is a second worker that would take over an expired lease too.
    let lease = chrono::Duration::milliseconds(300);
    let job = job_row("purge", "running", "{}".into(), "worker-a", app::db::now() + lease, app::db::now())
        .insert(&app.db)
        .await
        .unwrap();
    let settings = herald_server::jobs::JobSettings {
        retention: RetentionPolicy::default(),
        purge_interval: None,
        purge_batch: 100,
    };
    let db = app.db.clone();
    let started = std::time::Instant::now();
    let run = tokio::spawn(async move {
        herald_server::jobs::purge::run_job(
            &db,
            &job,
            &settings,
            "worker-a",
            lease,
            &herald_server::metrics::Metrics::new(0),
        )
        .await;
    });
    let mut checks = 0;
    while !run.is_finished() {
        tokio::time::sleep(Duration::from_millis(400)).await;
        if run.is_finished() {
            break;
        }
        let stolen = app::db::jobs::claim(&app.db, "worker-b", lease).await.unwrap();
        assert!(stolen.is_none(), "worker B took over a purge that was still running: {stolen:?}");
        checks += 1;
    }
    run.await.unwrap();
    println!(
        "purge of 20,001 attempts in 100-row batches took {:.1} s; {checks} takeover attempts refused",
        started.elapsed().as_secs_f64()
    );
    assert!(checks >= 2, "the purge outlived its lease several times over ({checks} checks)");
    assert_eq!(attempts::Entity::find().count(&app.db).await.unwrap(), 0);
    let finished = jobs::Entity::find().all(&app.db).await.unwrap();
    assert!(finished.iter().all(|j| j.status == "succeeded"), "{finished:?}");
    app.stop().await;
}
