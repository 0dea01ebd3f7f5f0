use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use app::{db, models::Role};
use clap::{Parser, Subcommand};
use herald_server::config::Config;
use migration::{Migrator, MigratorTrait};
use tokio_util::sync::CancellationToken;

/// Herald: self-hosted webhook delivery.
#[derive(Parser)]
#[command(name = "herald", version, about)]
struct Cli {
    /// Configuration file (default: ./herald.toml when present).
    #[arg(long, global = true, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (admin app and API), the delivery engine and the jobs.
    Serve,
    /// Apply database migrations (`up`, the default) or roll them back (`down`).
    Migrate {
        #[command(subcommand)]
        direction: Option<MigrateDirection>,
    },
    /// Delete deliveries, attempts, events and jobs older than the retention policy, in batches.
    Purge {
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Manage admin-app users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API keys for integrators.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Copy a SQLite database to FILE while Herald runs (a consistent snapshot, `VACUUM INTO`).
    /// For PostgreSQL, use `pg_dump`.
    Backup {
        /// Where to write the copy; must not exist yet.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum MigrateDirection {
    Up,
    Down {
        /// How many migrations to roll back (default: all).
        #[arg(long)]
        steps: Option<u32>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; prints a generated password when none is given.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, env = "HERALD_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long, default_value = "viewer", value_parser = parse_role)]
        role: Role,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create an API key; the key is printed once and only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("herald: {e}");
            return ExitCode::from(2);
        }
    };
    let traces = init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("herald: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(execute(cli.command, config));
    if let Some(traces) = traces {
        // The spans still queued go out before the process ends.
        let _ = traces.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (text or JSON); with `HERALD_OTLP_ENDPOINT`, also Herald's spans (one per
/// ingest, one per attempt) as OpenTelemetry traces. Answers the trace pipeline, to flush at exit.
fn init_tracing(config: &Config) -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, Layer};
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log).unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // One JSON object per line: timestamp, level, target, message and the event's fields.
    let logs = if config.log_format == "json" {
        logs.json().flatten_event(true).with_current_span(false).boxed()
    } else {
        logs.boxed()
    };
    let traces = config.otlp_endpoint.as_deref().and_then(|endpoint| {
        match herald_server::traces::pipeline(endpoint) {
            Ok(provider) => Some(provider),
            Err(e) => {
                eprintln!("herald: cannot send traces to {endpoint} (HERALD_OTLP_ENDPOINT): {e}");
                None
            }
        }
    });
    let otel = traces.as_ref().map(herald_server::traces::layer);
    tracing_subscriber::registry().with(logs.with_filter(filter)).with(otel).init();
    traces
}

async fn execute(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen_addr())
                .await
                .with_context(|| format!("cannot listen on {} (HERALD_LISTEN)", config.listen))?;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            herald_server::run(config, listener, shutdown).await
        }
        Command::Migrate { direction } => {
            let db = db::connect(&config.database_url, 1).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot open the database {}: {e}",
                    herald_server::config::redact_url(&config.database_url)
                )
            })?;
            match direction.unwrap_or(MigrateDirection::Up) {
                MigrateDirection::Up => {
                    Migrator::up(&db, None).await?;
                    println!("database is up to date");
                }
                MigrateDirection::Down { steps } => {
                    Migrator::down(&db, steps).await?;
                    println!(
                        "rolled back {}",
                        steps.map_or("all migrations".into(), |n| format!("{n} migration(s)"))
                    );
                }
            }
            Ok(())
        }
        Command::Purge { dry_run } => {
            let db = herald_server::open_database(&config).await?;
            let settings = herald_server::jobs::JobSettings::from_config(&config);
            let report = herald_server::jobs::run_purge(&db, &settings, dry_run, "cli").await?;
            let verb = if dry_run { "would delete" } else { "deleted" };
            println!(
                "{verb}: {} attempts, {} deliveries, {} events, {} jobs",
                report.attempts, report.deliveries, report.events, report.jobs
            );
            if report.bodies > 0 {
                println!(
                    "{} attempt bodies {}",
                    report.bodies,
                    if dry_run { "would be emptied" } else { "emptied" }
                );
            }
            Ok(())
        }
        Command::User { command: UserCommand::Create { email, password, role } } => {
            let db = herald_server::open_database(&config).await?;
            let generated = password.is_none().then(|| app::auth::new_token(15));
            let password = password.or_else(|| generated.clone()).unwrap_or_default();
            let user = db::users::create(&db, &email, &password, role).await?;
            db::activity::record(
                &db,
                db::activity::Activity {
                    actor: Some("cli"),
                    kind: "user.created",
                    subject: Some(user.email.clone()),
                    summary: format!("User {} created with role {}", user.email, role.label()),
                },
            )
            .await?;
            println!("created {} user {}", role.label(), user.email);
            if let Some(pw) = generated {
                println!("password: {pw}");
            }
            Ok(())
        }
        Command::Backup { file } => {
            anyhow::ensure!(
                db::sqlite_path(&config.database_url).is_some(),
                "herald backup copies SQLite databases; for PostgreSQL use pg_dump (README, Operations)"
            );
            anyhow::ensure!(!file.exists(), "{} exists already; give a new file", file.display());
            let db = herald_server::open_database(&config).await?;
            let target = file.to_str().context("the backup file's path must be UTF-8")?;
            let started = std::time::Instant::now();
            db::backup_sqlite(&db, target).await.context("backup failed")?;
            let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            println!(
                "backed up to {} ({:.1} MiB in {:.1} s)",
                file.display(),
                bytes as f64 / 1048576.0,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::ApiKey { command: ApiKeyCommand::Create { name } } => {
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            let db = herald_server::open_database(&config).await?;
            let (key, plain) = db::api_keys::create(&db, &name, None, "cli").await?;
            // The key alone on stdout, so scripts can capture it; the note goes to stderr.
            eprintln!("API key `{}` created. It is shown only this once:", key.name);
            println!("{plain}");
            Ok(())
        }
    }
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    shutdown.cancel();
}
