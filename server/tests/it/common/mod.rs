use std::{net::SocketAddr, time::Duration};

use herald_server::config::Config;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ADMIN_EMAIL: &str = "admin@example.test";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `mod $name { sqlite, postgres }`, each running `async fn $name(Backend)`.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )+};
}

pub fn postgres_admin_url() -> String {
    std::env::var("HERALD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own for one test: a temp SQLite file, or a PostgreSQL database
/// created for the test and dropped after it.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("herald.db").display());
                TestDb { url, _dir: Some(dir), pg_name: None }
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("herald_test_{}", uuid::Uuid::now_v7().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is needed for tests: {e}"));
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin_url);
                TestDb { url: format!("{base}/{name}"), _dir: None, pg_name: Some(name) }
            }
        }
    }

    pub async fn connect(&self) -> DatabaseConnection {
        app::db::connect(&self.url, 5).await.expect("connect to test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                rt.block_on(async {
                    let admin = Database::connect(&postgres_admin_url()).await.ok()?;
                    admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await
                        .ok()?;
                    admin.close().await.ok()
                })
            })
            .join();
        }
    }
}

async fn wait_until_healthy(client: &reqwest::Client, addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(res) = client.get(format!("http://{addr}/api/v1/health")).send().await {
            if res.status().is_success() {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "server did not become healthy within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running Herald with its own database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: DatabaseConnection,
    /// Follows no redirects, keeps no cookies: tests see exactly what the server answered.
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _test_db: TestDb,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        let test_db = TestDb::new(backend).await;
        let config = Config {
            database_url: test_db.url.clone(),
            database_max_connections: 5,
            listen: "127.0.0.1:0".into(),
            admin_email: ADMIN_EMAIL.into(),
            admin_password: Some(ADMIN_PASSWORD.into()),
            log: "warn".into(),
            ..Config::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(herald_server::run(config, listener, shutdown.clone()));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        // Connect only once the server has created and migrated the database.
        wait_until_healthy(&client, addr).await;
        let db = test_db.connect().await;
        TestApp { addr, db, client, shutdown, server: Some(server), _test_db: test_db }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn api_key(&self) -> String {
        app::db::api_keys::create(&self.db, "test", None).await.expect("create api key").1
    }

    /// Signs in as the first admin and returns the `Cookie` header value to send.
    pub async fn sign_in(&self) -> String {
        let res = self
            .client
            .post(self.url("/auth/login"))
            .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("next", "/")])
            .send()
            .await
            .expect("sign in");
        let cookie =
            res.headers().get("set-cookie").expect("session cookie").to_str().expect("ascii").to_owned();
        cookie.split(';').next().expect("name=value").to_owned()
    }

    /// Stops the server and waits for it, surfacing any error it ended with.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ended cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
