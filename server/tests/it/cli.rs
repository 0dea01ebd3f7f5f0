//! The `herald` binary itself: subcommands and start-up failures.

use std::process::{Command, Output};

use app::models::Role;

use crate::{both_databases, common::*};

both_databases!(cli_creates_users_and_api_keys);

fn herald(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.args(args).env("HERALD_LOG", "warn").current_dir(std::env::temp_dir());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run herald")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn cli_creates_users_and_api_keys(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let env = [("HERALD_DATABASE_URL", test_db.url.as_str())];

    let out = herald(&["migrate"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = herald(&["user", "create", "--email", "ops@example.test", "--role", "api_user"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let password =
        stdout.lines().find_map(|l| l.strip_prefix("password: ")).expect("generated password printed");

    let out =
        herald(&["user", "create", "--email", "ops@example.test", "--password", "long enough pw"], &env);
    assert!(!out.status.success(), "a duplicate email is refused");
    assert!(text(&out.stderr).contains("already exists"));
    let out = herald(&["user", "create", "--email", "x@example.test", "--role", "owner"], &env);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("admin, viewer, api_user"), "{}", text(&out.stderr));

    let out = herald(&["api-key", "create", "--name", "billing service"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_owned();
    assert!(key.starts_with("hrld_") && key.len() > 40, "{key}");

    let db = test_db.connect().await;
    let user =
        app::db::users::authenticate(&db, "ops@example.test", password).await.unwrap().expect("can sign in");
    assert_eq!(user.role, Role::ApiUser);
    let stored = app::db::api_keys::find_live(&db, &key).await.unwrap().expect("key works");
    assert_eq!(stored.name, "billing service");
    assert_ne!(stored.key_hash, key, "only the hash is stored");

    let out = herald(&["migrate", "down"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    db.close().await.ok();
}

fn assert_one_clear_line(out: &Output, expected: &str) {
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.starts_with("herald: ") && last.contains(expected), "expected `{expected}` in: {stderr}");
}

#[test]
fn malformed_database_url_stops_serve_with_one_line() {
    let out = herald(&["serve"], &[("HERALD_DATABASE_URL", "mysql://root@localhost/herald")]);
    assert_eq!(out.status.code(), Some(2));
    assert_one_clear_line(&out, "HERALD_DATABASE_URL: scheme `mysql` is not supported");
    let out = herald(&["serve"], &[("HERALD_DATABASE_URL", "postgres://herald:s3cret@/herald")]);
    assert_one_clear_line(&out, "HERALD_DATABASE_URL");
    assert!(!text(&out.stderr).contains("s3cret"), "passwords never appear in messages");
    let out = herald(&["serve"], &[("HERALD_LISTEN", "everywhere")]);
    assert_one_clear_line(&out, "HERALD_LISTEN: `everywhere`");
}

#[test]
fn unreachable_postgres_stops_serve_with_one_line() {
    let started = std::time::Instant::now();
    let out = herald(
        &["serve"],
        &[
            ("HERALD_DATABASE_URL", "postgres://herald:s3cret@127.0.0.1:1/herald"),
            ("HERALD_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_one_clear_line(
        &out,
        "cannot reach PostgreSQL at 127.0.0.1:1 (HERALD_DATABASE_URL): Connection refused",
    );
    assert!(!text(&out.stderr).contains("s3cret"));
    assert!(started.elapsed().as_secs() < 30, "gives up in bounded time");
}

both_databases!(first_serve_prints_a_one_time_admin_password);

/// `herald serve` on an empty database creates an admin and prints its password once.
async fn first_serve_prints_a_one_time_admin_password(backend: Backend) {
    use std::io::{BufRead, BufReader};

    let test_db = TestDb::new(backend).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("serve")
        .env("HERALD_DATABASE_URL", &test_db.url)
        .env("HERALD_LISTEN", "127.0.0.1:0")
        .env("HERALD_LOG", "warn")
        .env_remove("HERALD_ADMIN_PASSWORD")
        .env_remove("HERALD_ADMIN_EMAIL")
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start herald serve");
    let stdout = child.stdout.take().expect("stdout");
    // Reads on a thread: a server that never prints must fail the test, not hang it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(pw) = line.trim().strip_prefix("password: ") {
                let _ = tx.send(pw.to_owned());
                return;
            }
        }
    });
    let password = rx.recv_timeout(std::time::Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let password = password.expect("serve printed the first admin's password");
    assert!(password.len() >= 16, "a strong generated password: {password}");

    let db = test_db.connect().await;
    let admin = app::db::users::authenticate(&db, "admin@localhost", &password).await.unwrap();
    assert_eq!(admin.map(|u| u.role), Some(Role::Admin), "the printed password signs the admin in");
    db.close().await.ok();
}

both_databases!(a_backup_taken_while_herald_runs_restores_every_event);

/// The backup the README's Operations section describes, taken while Herald accepts events, and
/// restored: SQLite with `herald backup` (VACUUM INTO), PostgreSQL with `pg_dump` and
/// `pg_restore` into a new database. A Herald started on the restored copy serves every event
/// that was committed before the backup.
async fn a_backup_taken_while_herald_runs_restores_every_event(backend: Backend) {
    let running = TestApp::spawn(backend).await;
    let api = running.api().await;
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(api.event("order.placed", serde_json::json!({"n": n})).await);
    }
    // Events keep arriving while the backup is taken.
    let poster = faults::Poster::start(api.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut restored_db = None;
    let restored_url = match backend {
        Backend::Sqlite => {
            let copy = dir.path().join("copy.db");
            let out = herald(
                &["backup", copy.to_str().unwrap()],
                &[("HERALD_DATABASE_URL", running.database_url.as_str())],
            );
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert!(text(&out.stdout).contains("backed up to"), "{}", text(&out.stdout));
            let again = herald(
                &["backup", copy.to_str().unwrap()],
                &[("HERALD_DATABASE_URL", running.database_url.as_str())],
            );
            assert!(!again.status.success(), "an existing file is never overwritten");
            format!("sqlite://{}?mode=rwc", copy.display())
        }
        Backend::Postgres => {
            let dump = dir.path().join("herald.dump");
            let status = Command::new("pg_dump")
                .args(["--format=custom", "--file"])
                .arg(&dump)
                .arg(&running.database_url)
                .status()
                .expect("pg_dump");
            assert!(status.success());
            let restored = TestDb::new(Backend::Postgres).await;
            let status = Command::new("pg_restore")
                .args(["--no-owner", "--dbname", &restored.url])
                .arg(&dump)
                .status()
                .expect("pg_restore");
            assert!(status.success());
            let url = restored.url.clone();
            restored_db = Some(restored);
            url
        }
    };
    poster.stop().await;
    let copy = TestApp::spawn_on(&restored_url, |_| {}).await;
    let copy_api = Api { base: format!("http://{}", copy.addr), ..api.clone() };
    let page = copy_api.get("/events?limit=250").await;
    let restored: std::collections::HashSet<&str> =
        page["items"].as_array().unwrap().iter().filter_map(|e| e["id"].as_str()).collect();
    for id in &ids {
        assert!(restored.contains(id.as_str()), "event {id} is in the restored copy");
    }
    println!("restored copy serves {} events ({} posted before the backup)", restored.len(), ids.len());
    copy.stop().await;
    running.stop().await;
    drop(restored_db);
}

/// `HERALD_LOG_FORMAT=json`: every log line is one JSON object a log shipper can read; a format
/// Herald does not know stops it with one clear line.
#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/h.db?mode=rwc", dir.path().display());
    let out = herald(
        &["migrate"],
        &[("HERALD_DATABASE_URL", &url), ("HERALD_LOG", "info"), ("HERALD_LOG_FORMAT", "json")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "migrating logs what it applies");
    for line in lines {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(entry["timestamp"].is_string() && entry["level"] == "INFO", "{line}");
        assert!(entry["message"].is_string(), "{line}");
    }
    let out = herald(&["migrate"], &[("HERALD_DATABASE_URL", &url), ("HERALD_LOG_FORMAT", "xml")]);
    assert_eq!(out.status.code(), Some(2));
    assert_one_clear_line(&out, "HERALD_LOG_FORMAT: `xml` is not a log format");
}
