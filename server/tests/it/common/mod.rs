pub mod faults;
pub mod process;
pub mod receiver;

use std::{future::Future, net::SocketAddr, time::Duration};

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
    pub database_url: String,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _test_db: Option<TestDb>,
}

/// The configuration tests run with: loopback receivers allowed, short retry schedules, a
/// fast poll and short leases, so outcomes arrive in seconds.
pub fn test_config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_owned(),
        database_max_connections: 5,
        listen: "127.0.0.1:0".into(),
        admin_email: ADMIN_EMAIL.into(),
        admin_password: Some(ADMIN_PASSWORD.into()),
        log: "warn".into(),
        destination_allowlist: vec!["127.0.0.0/8".into(), "::1".into()],
        retry_schedule: vec![0, 1, 1],
        quick_retries: 0,
        poll_interval_ms: 50,
        lease_margin_secs: 2,
        shutdown_grace_secs: 2,
        ..Config::default()
    }
}

/// Polls `check` until it returns Some, for at most `timeout`; panics naming `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
        let test_db = TestDb::new(backend).await;
        let mut app = Self::spawn_on(&test_db.url, configure).await;
        app._test_db = Some(test_db);
        app
    }

    /// A Herald on a database the test made itself (and cleans up itself).
    pub async fn spawn_on(database_url: &str, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = test_config(database_url);
        configure(&mut config);
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
        let db = app::db::connect(database_url, 5).await.expect("connect to test database");
        TestApp {
            addr,
            db,
            client,
            database_url: database_url.to_owned(),
            shutdown,
            server: Some(server),
            _test_db: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn api_key(&self) -> String {
        app::db::api_keys::create(&self.db, "test", None, "test").await.expect("create api key").1
    }

    /// A JSON API client with a fresh key.
    pub async fn api(&self) -> Api {
        Api { base: format!("http://{}", self.addr), key: self.api_key().await, client: self.client.clone() }
    }

    /// Signs in as the first admin and returns the `Cookie` header value to send.
    pub async fn sign_in(&self) -> String {
        self.sign_in_as(ADMIN_EMAIL, ADMIN_PASSWORD).await.expect("the first admin signs in")
    }

    /// Signs in; the `Cookie` header value to send, or `None` when refused.
    pub async fn sign_in_as(&self, email: &str, password: &str) -> Option<String> {
        let res = self
            .client
            .post(self.url("/auth/login"))
            .form(&[("email", email), ("password", password), ("next", "/")])
            .send()
            .await
            .expect("sign in");
        let cookie = res.headers().get("set-cookie")?.to_str().expect("ascii").to_owned();
        Some(cookie.split(';').next().expect("name=value").to_owned()).filter(|c| !c.ends_with('='))
    }

    /// Stops the server and waits for it, surfacing any error it ended with.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    /// Stops the server but keeps the database, for tests that look at what it left behind.
    pub async fn halt(&mut self) {
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

/// Calls `/api/v1` with a key; answers (status, JSON body or Null).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub key: String,
    pub client: reqwest::Client,
}

impl Api {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut req = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base))
            .header("authorization", format!("Bearer {}", self.key));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("API request");
        let status = res.status();
        let text = res.text().await.expect("API body");
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, answer) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }

    /// Creates a webhook; returns (id, secret).
    pub async fn webhook(&self, body: serde_json::Value) -> (String, String) {
        let created = self.post("/webhooks", body).await;
        (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
    }

    pub async fn event(&self, event_type: &str, payload: serde_json::Value) -> String {
        let body = serde_json::json!({"type": event_type, "payload": payload});
        self.post("/events", body).await["id"].as_str().unwrap().to_owned()
    }

    /// Posts an event body exactly as given (the JSON helpers re-serialise).
    pub async fn event_raw(&self, raw: &str) -> String {
        let res = self
            .client
            .post(format!("{}/api/v1/events", self.base))
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(raw.to_owned())
            .send()
            .await
            .expect("post event");
        assert_eq!(res.status(), 202);
        let body: serde_json::Value = res.json().await.expect("event answer");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Every delivery of a webhook, newest first.
    pub async fn deliveries_of(&self, webhook_id: &str) -> Vec<serde_json::Value> {
        let page = self.get(&format!("/deliveries?webhook_id={webhook_id}&limit=250")).await;
        page["items"].as_array().unwrap().clone()
    }
}

/// Calls a server function as the admin app does: form-encoded, signed in, from its own origin.
pub async fn rpc(app: &TestApp, cookie: &str, name: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let res = app
        .client
        .post(app.url(&format!("/rpc/{name}")))
        .header(reqwest::header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await
        .expect("server function");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// The start of every re-send test: a Herald that makes one attempt per delivery, a receiver
/// that is down, and a webhook "shop" for `order.*` to its `/switch`, to which `events` events
/// (`order.placed`, payload `{"n": n}`) were posted. Answers the webhook's id last.
pub async fn shop_behind_a_receiver_down(
    backend: Backend,
    events: u64,
) -> (TestApp, Api, receiver::Receiver, String) {
    let app = TestApp::spawn_with(backend, |c| c.retry_schedule = vec![0]).await;
    let api = app.api().await;
    let rx = receiver::Receiver::start().await;
    rx.set_down(true);
    let (id, _) = api
        .webhook(serde_json::json!({"name": "shop", "url": rx.url("/switch"), "event_types": ["order.*"]}))
        .await;
    for n in 0..events {
        api.event("order.placed", serde_json::json!({"n": n})).await;
    }
    (app, api, rx, id)
}
