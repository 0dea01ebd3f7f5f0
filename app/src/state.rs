use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sea_orm::DatabaseConnection;

/// What every request handler and server function can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: DatabaseConnection,
    /// Stores events from the API in batches (group commit).
    pub ingest: crate::db::events::IngestQueue,
    /// Whether the database can be written, as this process last saw it.
    pub db_health: crate::db::health::DbHealth,
    pub web: WebSettings,
    pub api: ApiSettings,
    /// Tells the delivery engine of this process that deliveries became due (a new event, a
    /// re-send), so it does not wait for its next poll.
    pub wakeup: std::sync::Arc<tokio::sync::Notify>,
    /// The retention policy from configuration, in effect until one is saved in settings.
    pub retention_defaults: crate::models::RetentionPolicy,
    /// Tells this process's job runner that a job was created.
    pub jobs_wakeup: std::sync::Arc<tokio::sync::Notify>,
    /// API keys this process found live lately.
    pub api_keys: crate::db::api_keys::LiveKeys,
}

#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Largest accepted event body, in bytes.
    pub max_payload_bytes: usize,
}

#[derive(Clone, Debug)]
pub struct WebSettings {
    pub session_ttl: chrono::Duration,
    /// Mark cookies `Secure` (set when Herald is served over HTTPS).
    pub secure_cookies: bool,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
