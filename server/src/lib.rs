//! The Herald server: HTTP (admin app + JSON API), and, as they arrive, the delivery engine
//! and background jobs, all stopped by one shutdown token.

pub mod bootstrap;
pub mod config;
pub mod engine;
pub mod http;
pub mod jobs;
pub mod mailer;
pub mod metrics;
pub mod traces;

use anyhow::Context;
use app::state::{ApiSettings, AppState, WebSettings};
use leptos::config::LeptosOptions;
use migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{redact_url, Config};

/// Connects to the configured database and brings its schema up to date.
pub async fn open_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let shown = redact_url(&config.database_url);
    check_postgres_reachable(&config.database_url).await?;
    // DbErr repeats its cause in its source chain: keep its message only, once.
    let db = app::db::connect(&config.database_url, config.database_max_connections)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database {shown}: {e}"))?;
    Migrator::up(&db, None).await.map_err(|e| anyhow::anyhow!("cannot migrate the database {shown}: {e}"))?;
    app::db::optimize(&db).await;
    Ok(db)
}

/// Says "nothing listens there" plainly, where the pool would only report a time-out.
async fn check_postgres_reachable(database_url: &str) -> anyhow::Result<()> {
    let Ok(url) = url::Url::parse(database_url) else { return Ok(()) };
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Ok(());
    }
    let host = url.host_str().unwrap_or("localhost").trim_matches(['[', ']']).to_owned();
    let port = url.port().unwrap_or(5432);
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => anyhow::bail!("cannot reach PostgreSQL at {host}:{port} (HERALD_DATABASE_URL): {e}"),
        Err(_) => anyhow::bail!(
            "cannot reach PostgreSQL at {host}:{port} (HERALD_DATABASE_URL): no answer within 5 s"
        ),
    }
}

pub fn app_state(config: &Config, db: DatabaseConnection) -> AppState {
    let db_health = app::db::health::DbHealth::default();
    let leptos_options = LeptosOptions::builder()
        .output_name("herald")
        .site_root(config.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(config.listen_addr())
        .build();
    AppState {
        leptos_options,
        ingest: app::db::events::IngestQueue::start(db.clone(), db_health.clone(), config.group_commit()),
        db_health,
        db,
        web: WebSettings {
            session_ttl: chrono::Duration::hours(i64::from(config.session_ttl_hours)),
            secure_cookies: config.secure_cookies,
        },
        api: ApiSettings { max_payload_bytes: config.max_payload_bytes },
        wakeup: Default::default(),
        retention_defaults: config.retention(),
        jobs_wakeup: Default::default(),
        api_keys: Default::default(),
    }
}

/// Runs Herald on `listener` until `shutdown` is cancelled.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let db = open_database(&config).await?;
    if let Some(admin) = bootstrap::ensure_first_admin(&db, &config).await? {
        admin.announce();
    }
    let state = app_state(&config, db.clone());
    let metrics = metrics::Metrics::new(config.metrics_webhooks);
    let guard = engine::guard::Guard::new(config.allowlist().map_err(anyhow::Error::msg)?);
    let engine = std::sync::Arc::new(engine::Engine::new(
        db.clone(),
        engine::EngineSettings::from_config(&config),
        guard,
        state.wakeup.clone(),
        state.db_health.clone(),
        metrics.clone(),
    )?);
    state.ingest.hand_off_to(engine.clone());
    // The heartbeat outlives the engine, so no other process takes this one's leases for a
    // dead process's while it finishes its requests on shutdown.
    let heartbeat = engine::heartbeat::Heartbeat {
        db: db.clone(),
        worker: engine.worker().to_owned(),
        health: state.db_health.clone(),
        engine_wakeup: state.wakeup.clone(),
    };
    let started_at = heartbeat.start().await.context("cannot write this process's first heartbeat")?;
    let heartbeat_stop = CancellationToken::new();
    let heartbeat_task = tokio::spawn(heartbeat.run(started_at, heartbeat_stop.clone()));
    let engine_task = tokio::spawn(engine.clone().run(shutdown.clone()));
    let jobs_task = tokio::spawn(
        jobs::JobRunner {
            db: db.clone(),
            worker: engine.worker().to_owned(),
            settings: jobs::JobSettings::from_config(&config),
            engine_wakeup: state.wakeup.clone(),
            wakeup: state.jobs_wakeup.clone(),
            metrics: metrics.clone(),
        }
        .run(shutdown.clone()),
    );
    let vacuum_task = tokio::spawn(jobs::vacuum::run(db.clone(), config.vacuum_dead_rows, shutdown.clone()));
    let mailer_task = tokio::spawn(mailer::run(db.clone(), config.clone(), shutdown.clone()));
    let endpoint = config.metrics_on().then(|| metrics::MetricsEndpoint {
        metrics: metrics.clone(),
        db: db.clone(),
        max_connections: config.database_max_connections,
        token: config.metrics_token.clone(),
    });
    let router = http::router(state, metrics, endpoint);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "Herald is listening: http://{addr}/");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("HTTP server failed")?;
    // The HTTP server stops first; the engine finishes or releases what it has in flight.
    shutdown.cancel();
    engine_task.await.context("delivery engine failed")?;
    heartbeat_stop.cancel();
    heartbeat_task.await.context("heartbeat failed")?;
    mailer_task.await.context("mailer failed")?;
    jobs_task.await.context("job runner failed")?;
    vacuum_task.await.context("vacuum task failed")?;
    tracing::info!("Herald stopped");
    Ok(())
}
