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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://data/herald.db?mode=rwc".into(),
            database_max_connections: 10,
            listen: "127.0.0.1:3000".into(),
            log: "info".into(),
            site_root: "target/site".into(),
            admin_email: "admin@localhost".into(),
            admin_password: None,
            session_ttl_hours: 24 * 7,
            secure_cookies: false,
            max_payload_bytes: 1024 * 1024,
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
        if !(1024..=64 * 1024 * 1024).contains(&self.max_payload_bytes) {
            return bad("MAX_PAYLOAD_BYTES", "must be between 1024 and 67108864".into());
        }
        if self.session_ttl_hours == 0 {
            return bad("SESSION_TTL_HOURS", "must be at least 1".into());
        }
        if let Some(pw) = &self.admin_password {
            if pw.chars().count() < 10 {
                return bad("ADMIN_PASSWORD", "must be at least 10 characters".into());
            }
        }
        Ok(())
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
