//! The Herald server: HTTP (admin app + JSON API), and, as they arrive, the delivery engine
//! and background jobs, all stopped by one shutdown token.

pub mod bootstrap;
pub mod config;
pub mod http;

use anyhow::Context;
use app::state::{AppState, WebSettings};
use leptos::config::LeptosOptions;
use migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{redact_url, Config};

/// Connects to the configured database and brings its schema up to date.
pub async fn open_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = app::db::connect(&config.database_url, config.database_max_connections)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&config.database_url)))?;
    Migrator::up(&db, None)
        .await
        .with_context(|| format!("cannot migrate the database {}", redact_url(&config.database_url)))?;
    Ok(db)
}

pub fn app_state(config: &Config, db: DatabaseConnection) -> AppState {
    let leptos_options = LeptosOptions::builder()
        .output_name("herald")
        .site_root(config.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(config.listen_addr())
        .build();
    AppState {
        leptos_options,
        db,
        web: WebSettings {
            session_ttl: chrono::Duration::hours(i64::from(config.session_ttl_hours)),
            secure_cookies: config.secure_cookies,
        },
    }
}

/// Runs Herald on `listener` until `shutdown` is cancelled.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let db = open_database(&config).await?;
    if let Some(admin) = bootstrap::ensure_first_admin(&db, &config).await? {
        admin.announce();
    }
    let state = app_state(&config, db);
    let router = http::router(state);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "Herald is listening: http://{addr}/");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("HTTP server failed")?;
    tracing::info!("Herald stopped");
    Ok(())
}
