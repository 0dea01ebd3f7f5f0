//! Configuration: embedded defaults, then an optional `herald.toml`, then `HERALD_*` variables.
//! Validated once at start so a bad value stops Herald with one clear line.

use std::{net::SocketAddr, path::Path};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// `sqlite://path?mode=rwc` (default, file created on first start) or `postgres://user@host/db`.
    pub database_url: String,
    /// Maximum database connections in this process's pool.
    pub database_max_connections: u32,
    /// Address of the HTTP server (UI and API).
    pub listen: String,
    /// Log filter, `tracing` syntax: `info`, `herald_server=debug,info`, ...
    pub log: String,
    /// `text` (for people) or `json` (one object per line, for log shippers).
    pub log_format: String,
    /// Folder holding the built browser bundle (`pkg/`) and `favicon.ico`.
    pub site_root: String,
    /// First admin created when the database has no user; password printed once when not given.
    pub admin_email: String,
    pub admin_password: Option<String>,
    pub session_ttl_hours: u32,
    /// Set when Herald is served over HTTPS (behind a proxy): session cookies get `Secure`.
    pub secure_cookies: bool,
    /// Largest event body `POST /api/v1/events` accepts, in bytes.
    pub max_payload_bytes: usize,
    /// Seconds before each automatic attempt: `0,30,3600,...` (the first is the first attempt).
    #[serde(deserialize_with = "list::deserialize", serialize_with = "list::serialize")]
    pub retry_schedule: Vec<u32>,
    /// Destinations the SSRF guard lets through although they are private, as CIDRs.
    #[serde(deserialize_with = "list::deserialize", serialize_with = "list::serialize")]
    pub destination_allowlist: Vec<String>,
    /// Largest response body kept in an attempt, in bytes.
    pub response_body_max_bytes: usize,
    /// Requests in flight to one webhook at a time (across all processes). 32 by default: a
    /// webhook's rate is this divided by its receiver's response time, so it is what bounds
    /// draining a backlog after downtime (at 100 ms a response: 320 deliveries/s, where 10 gave
    /// 100/s), and at 10 one webhook fell behind 32 clients posting to it on two cores
    /// (BENCHMARKS.md, "One webhook keeps pace"). A receiver that takes less gets a rate limit,
    /// and a failing one gets one request at a time whatever this is.
    pub webhook_concurrency: u32,
    /// Requests in flight in this process.
    pub max_in_flight: u32,
    /// Requests per second to a webhook without its own `rate_limit`, across all processes
    /// (0: no limit).
    pub webhook_rate_limit: u32,
    /// How often the engine looks for due deliveries that no local event announced.
    pub poll_interval_ms: u64,
    /// Group commit: how long an accepted event, or a finished attempt, may wait for others to
    /// share its transaction, while they arrive as a stream (0: never wait). At a steady 1,000
    /// events/s, 5 ms roughly halved the CPU per delivery on both databases (BENCHMARKS.md).
    pub group_commit_ms: u64,
    /// A claimed delivery stays claimed for its webhook's timeout plus this margin; after a
    /// crash, another process takes it over once the lease expires.
    pub lease_margin_secs: u64,
    /// Quick retries for transient failures (408, 409, 429, 504, timeouts, connection errors).
    pub quick_retries: u32,
    pub quick_retry_delay_secs: u32,
    /// Longest `Retry-After` Herald honours; longer requests are cut to this.
    pub retry_after_max_secs: u32,
    /// On shutdown, how long in-flight requests may finish before their claims are released.
    pub shutdown_grace_secs: u64,
    /// `smtp://user:pass@host:587` or `smtps://...`; without it, emails stay in the outbox.
    pub smtp_url: Option<String>,
    pub smtp_from: String,
    /// Where people reach the admin app (`https://herald.example.com`): links in emails and in
    /// operational events point there. Without it they say the path only.
    pub public_url: Option<String>,
    /// At most one "webhook is failing" email per webhook in this many minutes.
    pub failure_notice_minutes: u32,
    /// Retention defaults; the admin app's settings override them.
    pub retention_deliveries_days: u32,
    pub retention_events_days: u32,
    pub retention_jobs_days: u32,
    pub retention_bodies_days: Option<u32>,
    /// How often a retention purge is queued (0: never automatically; `herald purge` still works).
    pub purge_interval_secs: u64,
    /// Rows per purge batch; each batch is its own short transaction.
    pub purge_batch: u64,
    /// PostgreSQL: vacuum the deliveries table when it holds more dead row versions than this
    /// (and than 2% of its rows); 0 leaves it to autovacuum.
    pub vacuum_dead_rows: u64,
    /// `on` (default) serves Prometheus metrics at `GET /metrics`; `off` answers 404 there.
    pub metrics: String,
    /// When set, `/metrics` asks for `Authorization: Bearer <this token>`.
    pub metrics_token: Option<String>,
    /// Webhooks with their own series (the ones with the most attempts); 0 for none.
    pub metrics_webhooks: u32,
    /// OpenTelemetry traces go to this OTLP/HTTP endpoint (`http://collector:4318/v1/traces`),
    /// and receivers get a `traceparent` header; none when absent.
    pub otlp_endpoint: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://data/herald.db?mode=rwc".into(),
            database_max_connections: 10,
            listen: "127.0.0.1:3000".into(),
            log: "info".into(),
            log_format: "text".into(),
            site_root: "target/site".into(),
            admin_email: "admin@localhost".into(),
            admin_password: None,
            session_ttl_hours: 24 * 7,
            secure_cookies: false,
            max_payload_bytes: 1024 * 1024,
            retry_schedule: vec![0, 30, 3600, 6 * 3600, 12 * 3600, 24 * 3600],
            destination_allowlist: Vec::new(),
            response_body_max_bytes: 64 * 1024,
            webhook_concurrency: 32,
            max_in_flight: 256,
            webhook_rate_limit: 0,
            poll_interval_ms: 250,
            group_commit_ms: 5,
            lease_margin_secs: 30,
            quick_retries: 3,
            quick_retry_delay_secs: 5,
            retry_after_max_secs: 3600,
            shutdown_grace_secs: 10,
            smtp_url: None,
            smtp_from: "Herald <herald@localhost>".into(),
            public_url: None,
            failure_notice_minutes: 60,
            retention_deliveries_days: 30,
            retention_events_days: 30,
            retention_jobs_days: 7,
            retention_bodies_days: None,
            purge_interval_secs: 3600,
            purge_batch: 2000,
            vacuum_dead_rows: 10_000,
            metrics: "on".into(),
            metrics_token: None,
            metrics_webhooks: 20,
            otlp_endpoint: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults < `file` (if it exists; an explicitly named file must exist) < environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!("config file {} does not exist", path.display())));
            }
            Some(path) => figment = figment.merge(Toml::file(path)),
            None => figment = figment.merge(Toml::file("herald.toml")),
        }
        let config: Config = figment
            .merge(Env::prefixed("HERALD_").ignore(&["config"]))
            .extract()
            .map_err(|e| ConfigError(one_line(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |var: &str, msg: String| Err(ConfigError(format!("HERALD_{var}: {msg}")));
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad("LISTEN", format!("`{}` is not an address like 127.0.0.1:3000", self.listen));
        }
        if let Err(msg) = check_database_url(&self.database_url) {
            return bad("DATABASE_URL", msg);
        }
        if self.database_max_connections == 0 {
            return bad("DATABASE_MAX_CONNECTIONS", "must be at least 1".into());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            return bad("LOG", format!("`{}` is not a log filter: {e}", self.log));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return bad("LOG_FORMAT", format!("`{}` is not a log format: use text or json", self.log_format));
        }
        if self.webhook_rate_limit > app::models::MAX_RATE_LIMIT {
            return bad(
                "WEBHOOK_RATE_LIMIT",
                format!("must be at most {} (0: no limit)", app::models::MAX_RATE_LIMIT),
            );
        }
        if !matches!(self.metrics.as_str(), "on" | "off") {
            return bad("METRICS", format!("`{}` is not a setting: use on or off", self.metrics));
        }
        if self
            .metrics_token
            .as_deref()
            .is_some_and(|t| t.len() < 16 || t.chars().any(|c| !c.is_ascii_graphic()))
        {
            return bad(
                "METRICS_TOKEN",
                "must be at least 16 printable ASCII characters, without spaces".into(),
            );
        }
        if let Some(url) = &self.otlp_endpoint {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url::Url::parse(url).is_err() {
                return bad(
                    "OTLP_ENDPOINT",
                    format!("`{}` must be an http:// or https:// URL", redact_url(url)),
                );
            }
        }
        if self.metrics_webhooks > 1000 {
            return bad("METRICS_WEBHOOKS", "must be at most 1000 (each webhook adds three series)".into());
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_payload_bytes) {
            return bad("MAX_PAYLOAD_BYTES", "must be between 1024 and 67108864".into());
        }
        if self.session_ttl_hours == 0 {
            return bad("SESSION_TTL_HOURS", "must be at least 1".into());
        }
        if let Err(msg) = app::models::validate_retry_schedule(&self.retry_schedule) {
            return bad("RETRY_SCHEDULE", msg.message);
        }
        if let Err(msg) = self.allowlist() {
            return bad("DESTINATION_ALLOWLIST", msg);
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.response_body_max_bytes) {
            return bad("RESPONSE_BODY_MAX_BYTES", "must be between 1024 and 16777216".into());
        }
        if self.webhook_concurrency == 0 || self.max_in_flight == 0 {
            return bad("WEBHOOK_CONCURRENCY / HERALD_MAX_IN_FLIGHT", "must be at least 1".into());
        }
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return bad("POLL_INTERVAL_MS", "must be between 10 and 60000".into());
        }
        if self.group_commit_ms > 100 {
            return bad("GROUP_COMMIT_MS", "must be between 0 and 100".into());
        }
        if let Err(e) = self.retention().validate() {
            return bad(&format!("RETENTION_{}", e.field.to_ascii_uppercase()), e.message);
        }
        if !(100..=100_000).contains(&self.purge_batch) {
            return bad("PURGE_BATCH", "must be between 100 and 100000".into());
        }
        if let Some(url) = &self.smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return bad("SMTP_URL", format!("`{}` must start with smtp:// or smtps://", redact_url(url)));
            }
        }
        if let Some(pw) = &self.admin_password {
            if pw.chars().count() < 10 {
                return bad("ADMIN_PASSWORD", "must be at least 10 characters".into());
            }
        }
        Ok(())
    }

    /// How long a writer waits for more to share a transaction (`group_commit_ms`).
    pub fn group_commit(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.group_commit_ms)
    }

    /// The retention policy configured (the admin app's settings override it).
    pub fn retention(&self) -> app::models::RetentionPolicy {
        app::models::RetentionPolicy {
            deliveries_days: self.retention_deliveries_days,
            events_days: self.retention_events_days,
            jobs_days: self.retention_jobs_days,
            bodies_days: self.retention_bodies_days,
        }
    }

    /// The allow-list as networks; a bare address is a network of one.
    pub fn allowlist(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.destination_allowlist
            .iter()
            .map(|raw| {
                raw.parse::<ipnet::IpNet>()
                    .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("`{raw}` is not a CIDR like 10.0.0.0/8 or an IP address"))
            })
            .collect()
    }

    pub fn metrics_on(&self) -> bool {
        self.metrics == "on"
    }

    pub fn listen_addr(&self) -> SocketAddr {
        // validate() guarantees this parses.
        self.listen.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 3000)))
    }
}

fn check_database_url(raw: &str) -> Result<(), String> {
    if raw.starts_with("sqlite:") {
        return if app::db::sqlite_path(raw).is_some() || raw.contains(":memory:") {
            Ok(())
        } else {
            Err(format!("`{raw}` names no file; use sqlite://path/to/herald.db?mode=rwc"))
        };
    }
    let url = url::Url::parse(raw).map_err(|e| format!("`{}` is not a URL: {e}", redact_url(raw)))?;
    match url.scheme() {
        "postgres" | "postgresql" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        "postgres" | "postgresql" => Err(format!("`{}` has no host", redact_url(raw))),
        other => Err(format!(
            "scheme `{other}` is not supported; use sqlite://path/to/herald.db?mode=rwc or postgres://user@host/database"
        )),
    }
}

/// The URL with any password replaced, for messages and logs. Works on malformed URLs too.
pub fn redact_url(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => raw.to_owned(),
    }
}

/// Lists in the environment are comma-separated (`HERALD_RETRY_SCHEDULE=0,5,60`); in
/// `herald.toml` they may also be arrays. A single value is a list of one.
mod list {
    use std::{fmt::Display, str::FromStr};

    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(u64),
        Items(Vec<Item>),
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Text(String),
        Number(u64),
    }

    pub fn deserialize<'de, D, T>(de: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: Display,
    {
        let parse =
            |s: &str| s.trim().parse::<T>().map_err(|e| serde::de::Error::custom(format!("`{s}`: {e}")));
        match Raw::deserialize(de)? {
            Raw::Text(s) => s.split(',').filter(|p| !p.trim().is_empty()).map(parse).collect(),
            Raw::Number(n) => Ok(vec![parse(&n.to_string())?]),
            Raw::Items(items) => items
                .into_iter()
                .map(|i| match i {
                    Item::Text(s) => parse(&s),
                    Item::Number(n) => parse(&n.to_string()),
                })
                .collect(),
        }
    }

    pub fn serialize<S: Serializer, T: Display>(items: &[T], ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&items.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return its error type
mod tests {
    use figment::Jail;

    use super::*;

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file("herald.toml", "listen = \"127.0.0.1:4000\"\nlog = \"debug\"")?;
            jail.set_env("HERALD_LOG", "warn");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.listen, "127.0.0.1:4000");
            assert_eq!(config.log, "warn");
            assert_eq!(config.database_url, Config::default().database_url);
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_named_in_one_line() {
        Jail::expect_with(|jail| {
            jail.set_env("HERALD_DATABASE_URL", "mysql://root@localhost/herald");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.starts_with("configuration: HERALD_DATABASE_URL: scheme `mysql`"), "{err}");
            jail.set_env("HERALD_DATABASE_URL", "postgres://u:secret@");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("HERALD_DATABASE_URL") && !err.contains("secret"), "{err}");
            jail.set_env("HERALD_DATABASE_URL", "sqlite://x.db");
            jail.set_env("HERALD_LISTEN", "localhost");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("HERALD_LISTEN: `localhost`"), "{err}");
            jail.set_env("HERALD_LISTEN", "127.0.0.1:0");
            jail.set_env("HERALD_SESSION_TTL_HOURS", "soon");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("SESSION_TTL_HOURS") && !err.contains("\n"), "{err}");
            jail.set_env("HERALD_SESSION_TTL_HOURS", "24");
            jail.set_env("HERALD_GROUP_COMMIT_MS", "250");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("HERALD_GROUP_COMMIT_MS: must be between 0 and 100"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn lists_come_comma_separated_or_as_arrays() {
        Jail::expect_with(|jail| {
            jail.set_env("HERALD_RETRY_SCHEDULE", "0, 2,5");
            jail.set_env("HERALD_DESTINATION_ALLOWLIST", "127.0.0.0/8,::1");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.retry_schedule, vec![0, 2, 5]);
            assert_eq!(config.allowlist().map_err(|e| e.to_string())?.len(), 2);
            jail.set_env("HERALD_RETRY_SCHEDULE", "7");
            assert_eq!(Config::load(None).map_err(|e| e.to_string())?.retry_schedule, vec![7]);
            jail.set_env("HERALD_RETRY_SCHEDULE", "0,soon");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("RETRY_SCHEDULE") && err.contains("`soon`"), "{err}");
            jail.set_env("HERALD_RETRY_SCHEDULE", "0,5");
            jail.set_env("HERALD_DESTINATION_ALLOWLIST", "10.0.0.0/33");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("HERALD_DESTINATION_ALLOWLIST: `10.0.0.0/33`"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn passwords_are_hidden_even_in_malformed_urls() {
        assert_eq!(redact_url("postgres://u:secret@db:5432/h?x=1"), "postgres://u:***@db:5432/h?x=1");
        assert_eq!(redact_url("postgres://u:secret@"), "postgres://u:***@");
        assert_eq!(redact_url("postgres://u@db/h"), "postgres://u@db/h");
        assert_eq!(redact_url("sqlite://data/herald.db"), "sqlite://data/herald.db");
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let err = Config::load(Some(Path::new("/nonexistent/herald.toml"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}
