//! Prometheus metrics: what this process did (counters and histograms, kept in memory as it
//! works) and what the shared database holds (queue depth, oldest due delivery, webhooks by
//! state, per-webhook totals), read when `/metrics` is scraped.
//!
//! Two kinds of series, because several processes may share one database:
//! - process series (`herald_deliveries_total`, durations, in flight, ingest, pool): each
//!   process counts its own; sum them across processes.
//! - database series (`herald_queue_*`, `herald_webhooks`, `herald_webhook_*`): every process
//!   reports the same figure; take `max` across processes.
//!
//! Per-webhook series are limited to the `HERALD_METRICS_WEBHOOKS` webhooks with the most
//! attempts (default 20), so 10,000 webhooks do not make 10,000 series.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use app::{db::now, models::Outcome};
use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use subtle::ConstantTimeEq;

use crate::engine::store::Attempted;

/// A `/metrics` scrape reads the database at most this often; scrapes in between get the
/// figures of the last read (a scrape storm does not become a database load).
const DATABASE_READ_EVERY: Duration = Duration::from_secs(1);
/// A database read that takes longer is abandoned: the scrape answers with the last figures.
const DATABASE_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a request was refused: the problem type's last part (`invalid`, `unauthorized`,
/// `too-large`, ...), carried on every problem response for the ingest counter. A fixed set of
/// values, so a bounded set of series.
#[derive(Clone, Debug)]
pub struct RefusedBecause(pub String);

/// Marks a `202` that answered with an earlier event (same idempotency key).
#[derive(Clone, Copy, Debug)]
pub struct DuplicateEvent;

pub struct Metrics {
    registry: Registry,
    /// Webhooks that get their own series.
    webhooks_shown: u32,
    pub deliveries: IntCounterVec,
    pub deliveries_failed: IntCounter,
    pub attempt_duration: Histogram,
    pub delivery_delay: Histogram,
    pub in_flight: IntGauge,
    pub events_accepted: IntCounter,
    pub events_duplicate: IntCounter,
    pub events_refused: IntCounterVec,
    pub claim_duration: Histogram,
    pub record_duration: Histogram,
    pub record_batch: Histogram,
    pub webhooks_deactivated: IntCounter,
    pub purged_rows: IntCounterVec,
    pool: IntGaugeVec,
    pool_max: IntGauge,
    queue: IntGaugeVec,
    oldest_due_age: Gauge,
    webhooks: IntGaugeVec,
    webhooks_paused: IntGauge,
    webhook_attempts: IntCounterVec,
    webhook_errors: IntCounterVec,
    webhook_consecutive_errors: IntGaugeVec,
    database_read_ok: IntGauge,
    /// When the database figures were last read; one scrape reads at a time.
    last_read: tokio::sync::Mutex<Option<Instant>>,
}

impl Metrics {
    pub fn new(webhooks_shown: u32) -> Arc<Self> {
        let registry = Registry::new();
        // Registering can only fail on a name clash between these fixed names: a bug caught by
        // every test that starts Herald.
        fn reg<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
            registry.register(Box::new(c.clone())).expect("metric names are unique");
            c
        }
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(&registry, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let counter =
            |name: &str, help: &str| reg(&registry, IntCounter::new(name, help).expect("valid metric"));
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(&registry, IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            reg(
                &registry,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric"),
            )
        };
        let fast = vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
        let metrics = Metrics {
            deliveries: counter_vec(
                "herald_deliveries_total",
                "Delivery attempts recorded by this process, by outcome (success, client_error, server_error, timeout, connect_error, ...) and trigger (automatic, manual, bulk).",
                &["outcome", "trigger"],
            ),
            deliveries_failed: counter(
                "herald_deliveries_failed_total",
                "Deliveries that failed for good (retries exhausted, or the webhook deactivated), recorded by this process.",
            ),
            attempt_duration: histogram(
                "herald_attempt_duration_seconds",
                "Time from sending a request to a webhook to its answer (or timeout, or connection error).",
                vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0],
            ),
            delivery_delay: histogram(
                "herald_delivery_delay_seconds",
                "Time from an event being accepted to a webhook answering 2xx for it (retries included).",
                vec![
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
                    86400.0,
                ],
            ),
            in_flight: reg(
                &registry,
                IntGauge::new("herald_requests_in_flight", "Requests to webhooks this process is waiting on.")
                    .expect("valid metric"),
            ),
            events_accepted: counter(
                "herald_events_accepted_total",
                "Events accepted (202) by POST /api/v1/events on this process, new ones only.",
            ),
            events_duplicate: counter(
                "herald_events_duplicate_total",
                "POST /api/v1/events answered 202 with an earlier event of the same idempotency key.",
            ),
            events_refused: counter_vec(
                "herald_events_refused_total",
                "POST /api/v1/events refused, by reason (the problem type: invalid, invalid-json, unauthorized, too-large, unsupported-media-type, unavailable, ...).",
                &["reason"],
            ),
            claim_duration: histogram(
                "herald_claim_duration_seconds",
                "Time the engine's claim of due deliveries took (one database transaction).",
                fast.clone(),
            ),
            record_duration: histogram(
                "herald_record_batch_duration_seconds",
                "Time recording one batch of attempts took (one database transaction).",
                fast,
            ),
            record_batch: histogram(
                "herald_record_batch_size",
                "Attempts recorded per transaction.",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            ),
            webhooks_deactivated: counter(
                "herald_webhooks_deactivated_total",
                "Webhooks this process deactivated for failing too long.",
            ),
            purged_rows: counter_vec(
                "herald_purged_rows_total",
                "Rows the retention purge deleted on this process, by table (attempts, deliveries, events, jobs).",
                &["table"],
            ),
            pool: gauge_vec(
                "herald_db_pool_connections",
                "This process's database connections, by state (in_use, idle).",
                &["state"],
            ),
            pool_max: reg(
                &registry,
                IntGauge::new(
                    "herald_db_pool_max_connections",
                    "Most database connections this process opens (HERALD_DATABASE_MAX_CONNECTIONS).",
                )
                .expect("valid metric"),
            ),
            queue: gauge_vec(
                "herald_queue_deliveries",
                "Deliveries waiting in the shared database, by status (pending, retrying, held). The same figure on every process.",
                &["status"],
            ),
            oldest_due_age: reg(
                &registry,
                Gauge::new(
                    "herald_queue_oldest_due_age_seconds",
                    "How long the oldest due delivery (pending or retrying, due now) has been due; 0 when none is due.",
                )
                .expect("valid metric"),
            ),
            webhooks: gauge_vec(
                "herald_webhooks",
                "Webhooks by state (active, stopped, too_many_errors).",
                &["state"],
            ),
            webhooks_paused: reg(
                &registry,
                IntGauge::new(
                    "herald_webhooks_paused",
                    "Webhooks whose receiver asked Herald to wait (429 or 503 with Retry-After, or 429s in a row), now.",
                )
                .expect("valid metric"),
            ),
            webhook_attempts: counter_vec(
                "herald_webhook_attempts_total",
                "Attempts to one webhook, all processes together, for the HERALD_METRICS_WEBHOOKS webhooks with the most attempts.",
                &["webhook_id"],
            ),
            webhook_errors: counter_vec(
                "herald_webhook_attempt_errors_total",
                "Failed attempts to one webhook, all processes together, for the same webhooks as herald_webhook_attempts_total.",
                &["webhook_id"],
            ),
            webhook_consecutive_errors: gauge_vec(
                "herald_webhook_consecutive_errors",
                "Failed attempts to one webhook since its last success, for the same webhooks as herald_webhook_attempts_total.",
                &["webhook_id"],
            ),
            database_read_ok: reg(
                &registry,
                IntGauge::new(
                    "herald_metrics_database_read_ok",
                    "1 when the last read of the database figures (queue, webhooks) succeeded, 0 when they are stale.",
                )
                .expect("valid metric"),
            ),
            registry,
            webhooks_shown,
            last_read: tokio::sync::Mutex::new(None),
        };
        // Every outcome and trigger from the start, at 0: `rate()` and alerts then see the
        // first failure as an increase, not as a series that appears.
        for outcome in Outcome::ALL {
            for trigger in app::models::AttemptTrigger::ALL {
                metrics.deliveries.with_label_values(&[outcome.as_str(), trigger.as_str()]);
            }
        }
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            let _ = metrics.registry.register(Box::new(process));
        }
        Arc::new(metrics)
    }

    /// Counts a request in flight until the returned guard is dropped (also when its task is
    /// aborted at shutdown).
    pub fn request_started(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Counts a batch of attempts once it is committed (so the figures match the log).
    pub fn recorded(&self, batch: &[Attempted], took: Duration, deactivated: usize) {
        self.record_duration.observe(took.as_secs_f64());
        self.record_batch.observe(batch.len() as f64);
        self.webhooks_deactivated.inc_by(deactivated as u64);
        let at = now();
        for a in batch {
            let outcome = a.sent.outcome;
            self.deliveries.with_label_values(&[outcome.as_str(), a.claimed.trigger().as_str()]).inc();
            self.attempt_duration.observe(f64::from(a.sent.duration_ms.max(0)) / 1000.0);
            if outcome == Outcome::Success {
                let delay = (at - a.claimed.event.created_at).num_milliseconds().max(0);
                self.delivery_delay.observe(delay as f64 / 1000.0);
            } else if a.decision.status == app::models::DeliveryStatus::Failed {
                self.deliveries_failed.inc();
            }
        }
    }

    pub fn purged(&self, report: &app::models::PurgeReport) {
        for (table, rows) in [
            ("attempts", report.attempts),
            ("deliveries", report.deliveries),
            ("events", report.events),
            ("jobs", report.jobs),
        ] {
            self.purged_rows.with_label_values(&[table]).inc_by(rows);
        }
    }

    /// The exposition: database figures refreshed (at most once a second), then every series.
    pub async fn render(&self, db: &DatabaseConnection, max_connections: u32) -> String {
        self.read_pool(db, max_connections);
        {
            let mut last = self.last_read.lock().await;
            if last.is_none_or(|at| at.elapsed() >= DATABASE_READ_EVERY) {
                let ok = matches!(
                    tokio::time::timeout(DATABASE_READ_TIMEOUT, self.read_database(db)).await,
                    Ok(Ok(()))
                );
                self.database_read_ok.set(i64::from(ok));
                *last = Some(Instant::now());
            }
        }
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    fn read_pool(&self, db: &DatabaseConnection, max_connections: u32) {
        let (size, idle) = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
            sea_orm::DbBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle() as u32)
            }
            _ => (0, 0),
        };
        self.pool.with_label_values(&["in_use"]).set(i64::from(size.saturating_sub(idle)));
        self.pool.with_label_values(&["idle"]).set(i64::from(idle));
        self.pool_max.set(i64::from(max_connections));
    }

    async fn read_database(&self, db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
        let backend = db.get_database_backend();
        let query = |sql: &str| Statement::from_string(backend, sql.to_owned());
        // Counted in the status index alone, and the oldest due read from the partial index of
        // scheduled deliveries (only they have a `next_attempt_at`): neither reads a row of the
        // log. (Counting by status through the partial index read every scheduled row, each on
        // its own page: with a month of retries in a 1,000,000-row log, most of the SQLite file
        // every second; BENCHMARKS.md.) The oldest is one seek per webhook (the index leads with
        // the webhook), not a walk over every scheduled delivery: 0.2 ms instead of 7.5 with
        // 50,000 retries waiting, and SQLite's memory map no longer pulls ~40 MiB of the file
        // into Herald's RSS at each scrape.
        let rows = db
            .query_all_raw(query(
                "SELECT status, COUNT(*) AS n, NULL AS due FROM deliveries \
                 WHERE status IN ('pending', 'retrying', 'held') GROUP BY status \
                 UNION ALL SELECT 'due' AS status, 0 AS n, \
                 MIN((SELECT MIN(d.next_attempt_at) FROM deliveries d \
                      WHERE d.webhook_id = w.id AND d.next_attempt_at IS NOT NULL)) AS due \
                 FROM webhooks w",
            ))
            .await?;
        for status in ["pending", "retrying", "held"] {
            self.queue.with_label_values(&[status]).set(0);
        }
        let mut oldest: Option<chrono::DateTime<chrono::Utc>> = None;
        for row in rows {
            let status: String = row.try_get("", "status")?;
            if status == "due" {
                oldest = row.try_get("", "due").ok().flatten();
            } else {
                self.queue.with_label_values(&[&status]).set(row.try_get::<i64>("", "n")?);
            }
        }
        let age = oldest.map(|due| (now() - due).num_milliseconds().max(0) as f64 / 1000.0).unwrap_or(0.0);
        self.oldest_due_age.set(age);

        for state in app::models::WebhookState::ALL {
            self.webhooks.with_label_values(&[state.as_str()]).set(0);
        }
        for row in db.query_all_raw(query("SELECT state, COUNT(*) AS n FROM webhooks GROUP BY state")).await?
        {
            let state: String = row.try_get("", "state")?;
            let n: i64 = row.try_get("", "n")?;
            self.webhooks.with_label_values(&[&state]).set(n);
        }

        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let paused = app::db::entities::webhook_usage::Entity::find()
            .filter(app::db::entities::webhook_usage::Column::PausedUntil.gt(now()))
            .count(db)
            .await?;
        self.webhooks_paused.set(paused as i64);

        self.webhook_attempts.reset();
        self.webhook_errors.reset();
        self.webhook_consecutive_errors.reset();
        if self.webhooks_shown > 0 {
            let sql = format!(
                "SELECT webhook_id, total_calls, total_errors, consecutive_errors FROM webhook_usage \
                 ORDER BY total_calls DESC LIMIT {}",
                self.webhooks_shown
            );
            for row in db.query_all_raw(query(&sql)).await? {
                let id: uuid::Uuid = row.try_get("", "webhook_id")?;
                let id = id.to_string();
                let calls: i64 = row.try_get("", "total_calls")?;
                let errors: i64 = row.try_get("", "total_errors")?;
                let consecutive: i32 = row.try_get("", "consecutive_errors")?;
                self.webhook_attempts.with_label_values(&[&id]).inc_by(calls.max(0) as u64);
                self.webhook_errors.with_label_values(&[&id]).inc_by(errors.max(0) as u64);
                self.webhook_consecutive_errors.with_label_values(&[&id]).set(i64::from(consecutive));
            }
        }
        Ok(())
    }
}

pub struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What `GET /metrics` needs.
#[derive(Clone)]
pub struct MetricsEndpoint {
    pub metrics: Arc<Metrics>,
    pub db: DatabaseConnection,
    pub max_connections: u32,
    /// When set, scrapes must send `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// `GET /metrics`: the Prometheus text format. Needs no session or API key (Prometheus has
/// neither); `HERALD_METRICS_TOKEN` asks for a bearer token instead.
pub async fn endpoint(State(endpoint): State<MetricsEndpoint>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &endpoint.token {
        let sent = headers.get(header::AUTHORIZATION).and_then(crate::http::auth::bearer);
        if !sent.is_some_and(|t| bool::from(t.as_bytes().ct_eq(token.as_bytes()))) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"herald-metrics\""))],
                "Send `Authorization: Bearer <HERALD_METRICS_TOKEN>`.\n",
            )
                .into_response();
        }
    }
    let body = endpoint.metrics.render(&endpoint.db, endpoint.max_connections).await;
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], body)
        .into_response()
}

/// Counts what `POST /api/v1/events` answered: accepted, duplicate, or refused and why.
pub async fn count_ingest(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let is_ingest = req.method() == Method::POST && req.uri().path().trim_end_matches('/') == "/events";
    let response = next.run(req).await;
    if is_ingest {
        if response.status().is_success() {
            if response.extensions().get::<DuplicateEvent>().is_some() {
                metrics.events_duplicate.inc();
            } else {
                metrics.events_accepted.inc();
            }
        } else {
            let reason = response.extensions().get::<RefusedBecause>().map_or("other", |r| r.0.as_str());
            metrics.events_refused.with_label_values(&[reason]).inc();
        }
    }
    response
}
