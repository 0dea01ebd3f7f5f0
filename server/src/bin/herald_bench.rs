//! Herald's benchmarks (see BENCHMARKS.md). Prints figures; asserts nothing.
//!
//! `herald-bench delivery` starts `herald serve` (SQLite, or PostgreSQL with `--postgres`) and a
//! fast local receiver, measures the load generator's raw POST rate against the receiver, then
//! posts events through the public API (one webhook, then fan-out to 10; closed loop with
//! bounded concurrency, then open loop at a fixed rate) and prints ingest rate, delivery rate,
//! end-to-end latency percentiles and Herald's peak RSS.
//!
//! `herald-bench log-query` seeds 1,000,000 attempts over 100 webhooks and times the delivery
//! log's queries (the same query layer the API and the admin app use).
//!
//! `herald-bench bundle` prints what the browser downloads, gzipped, from a release build of
//! the site: the main module, and for each page the chunks it loads on top of it.

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use app::{
    db::entities::{attempts, deliveries, events},
    models::{AttemptTrigger, DeliveryQuery, DeliverySort, DeliveryStatus, Outcome, SortOrder},
};
use axum::{extract::State, http::HeaderMap, routing::post, Router};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde_json::json;

#[derive(Parser)]
#[command(about = "Herald's benchmarks: delivery throughput and latency, log-query speed, bundle size")]
struct Cli {
    /// Use a fresh PostgreSQL database (on `--postgres-server`) instead of a SQLite file.
    #[arg(long, global = true)]
    postgres: bool,
    #[arg(
        long,
        global = true,
        env = "HERALD_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres_server: String,
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Delivery throughput, latency and memory.
    Delivery {
        /// Events per closed-loop run.
        #[arg(long, default_value_t = 2000)]
        events: usize,
        /// Requests in flight in closed-loop runs.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Open-loop rate (events/s) and duration (s); rate 0 skips it.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// The herald binary (default: next to this one).
        #[arg(long)]
        herald: Option<std::path::PathBuf>,
        /// Finished deliveries (each with its event and attempt) in the log before Herald starts.
        #[arg(long, default_value_t = 0)]
        seed_log: usize,
        /// Closed-loop runs to one webhook, one after another on the same database.
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Also a closed loop of `events / 10` to an ordered webhook (one request at a time).
        #[arg(long)]
        ordered: bool,
    },
    /// A backlog after downtime: due deliveries for one webhook seeded before Herald starts,
    /// drained while a second, healthy webhook gets an open loop of fresh events.
    Backlog {
        /// Due deliveries waiting when Herald starts.
        #[arg(long, default_value_t = 100_000)]
        deliveries: usize,
        /// Finished deliveries in the log besides (as `delivery --seed-log`).
        #[arg(long, default_value_t = 0)]
        seed_log: usize,
        /// Events/s to the healthy webhook while the backlog drains.
        #[arg(long, default_value_t = 100)]
        rate: u32,
        #[arg(long)]
        herald: Option<std::path::PathBuf>,
    },
    /// Delivery-log query times over a seeded log.
    LogQuery {
        #[arg(long, default_value_t = 1_000_000)]
        attempts: usize,
        #[arg(long, default_value_t = 100)]
        webhooks: usize,
        /// Runs of each query.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// The browser bundle's gzipped size, first load of each page (after `scripts/build.sh --release`).
    Bundle {
        /// The site directory the build wrote.
        #[arg(long, default_value = "target/site")]
        site: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Bench::Bundle { site } = &cli.command {
        return bundle(&site.join("pkg"));
    }
    let dir = tempfile_dir()?;
    let database_url = if cli.postgres {
        fresh_postgres(&cli.postgres_server).await?
    } else {
        format!("sqlite://{}?mode=rwc", dir.join("bench.db").display())
    };
    println!("database: {}", if cli.postgres { "PostgreSQL" } else { "SQLite" });
    println!("machine: {} CPUs", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let result = match cli.command {
        Bench::Delivery { events, concurrency, rate, duration, herald, seed_log, runs, ordered } => {
            let herald =
                herald.unwrap_or_else(|| std::env::current_exe().expect("own path").with_file_name("herald"));
            if seed_log > 0 {
                let db = app::db::connect(&database_url, 8).await?;
                Migrator::up(&db, None).await?;
                seed(&db, seed_log, 100).await?;
                db.close().await?;
            }
            let shape = Shape { n: events, concurrency, rate, duration, runs, ordered };
            delivery(&herald, &database_url, shape).await
        }
        Bench::Backlog { deliveries, seed_log, rate, herald } => {
            let herald =
                herald.unwrap_or_else(|| std::env::current_exe().expect("own path").with_file_name("herald"));
            backlog(&herald, &database_url, deliveries, seed_log, rate).await
        }
        Bench::LogQuery { attempts, webhooks, runs } => {
            log_query(&database_url, attempts, webhooks, runs).await
        }
        Bench::Bundle { .. } => unreachable!("answered above"),
    };
    // A 1M-attempt run leaves over 1 GB, in the SQLite file or the PostgreSQL database: drop it.
    let _ = std::fs::remove_dir_all(&dir);
    if cli.postgres {
        let admin = sea_orm::Database::connect(format!("{}/postgres", cli.postgres_server)).await?;
        let name = format!("herald_bench_{}", std::process::id());
        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
    }
    result
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("herald-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn fresh_postgres(server: &str) -> anyhow::Result<String> {
    let name = format!("herald_bench_{}", std::process::id());
    let admin = sea_orm::Database::connect(format!("{server}/postgres")).await?;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}")).await?;
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
    Ok(format!("{server}/{name}"))
}

// ---------------------------------------------------------------------------------------------
// Delivery benchmark

/// Arrival times at the receiver, by `webhook-id` (Herald sends the event id there).
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<HashMap<String, Vec<Instant>>>>);

impl Arrivals {
    fn count(&self) -> usize {
        self.0.lock().expect("arrivals").values().map(Vec::len).sum()
    }
}

async fn receive(State(arrivals): State<Arrivals>, headers: HeaderMap) -> &'static str {
    let at = Instant::now();
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("raw").to_owned();
    arrivals.0.lock().expect("arrivals").entry(id).or_default().push(at);
    "ok"
}

async fn start_receiver() -> anyhow::Result<(SocketAddr, Arrivals)> {
    let arrivals = Arrivals::default();
    let app = Router::new().route("/hook", post(receive)).with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, arrivals))
}

struct Herald {
    child: Child,
    base: String,
}

impl Drop for Herald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Herald {
    /// A `/proc/<pid>/status` field in kB, as MiB.
    fn status_mib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }

    /// Peak resident set size (VmHWM), and what the process holds now by kind: its own memory,
    /// and file pages it maps (SQLite's database file, read through `mmap`, and the binary),
    /// which are the kernel's page cache, counted in RSS but shared and reclaimable.
    fn memory(&self) -> String {
        format!(
            "herald peak RSS: {:.1} MiB (at the end: {:.1} MiB its own, {:.1} MiB mapped files)",
            self.status_mib("VmHWM:"),
            self.status_mib("RssAnon:"),
            self.status_mib("RssFile:")
        )
    }
}

fn herald_env(cmd: &mut Command, database_url: &str) {
    cmd.env("HERALD_DATABASE_URL", database_url)
        .env("HERALD_LOG", "warn")
        .env("NO_COLOR", "1")
        .env("HERALD_ADMIN_EMAIL", "bench@example.test")
        .env("HERALD_ADMIN_PASSWORD", "bench-password-1")
        .env("HERALD_DESTINATION_ALLOWLIST", "127.0.0.1")
        .env("HERALD_PURGE_INTERVAL_SECS", "0");
}

fn start_herald(bin: &std::path::Path, database_url: &str) -> anyhow::Result<(Herald, String)> {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new(bin);
    cmd.args(["api-key", "create", "--name", "bench"]);
    herald_env(&mut cmd, database_url);
    let out = cmd.output().with_context(|| format!("run {}", bin.display()))?;
    if !out.status.success() {
        bail!("herald api-key create: {}", String::from_utf8_lossy(&out.stderr));
    }
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();

    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .env("HERALD_LISTEN", "127.0.0.1:0")
        .env("HERALD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    herald_env(&mut cmd, database_url);
    cmd.env("HERALD_LOG", "info");
    let mut child = cmd.spawn()?;
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("Herald is listening: http://").nth(1) {
                let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).context("herald serve did not start")?;
    if std::env::var("HERALD_METRICS").as_deref() != Ok("off") {
        scrape_metrics_every_second(addr.clone());
    }
    Ok((Herald { child, base: format!("http://{addr}") }, key))
}

/// With metrics on (the default), the run pays for them as a deployment does: `/metrics` read
/// every second, as by a Prometheus with a 1 s scrape interval (15 s is usual), until Herald
/// stops answering.
fn scrape_metrics_every_second(addr: String) {
    use std::io::{Read, Write};
    eprintln!("metrics on: /metrics scraped every second (HERALD_METRICS=off to compare)");
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        let Ok(mut conn) = std::net::TcpStream::connect(&addr) else { return };
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        let mut answer = Vec::new();
        if conn.write_all(request.as_bytes()).is_err() || conn.read_to_end(&mut answer).is_err() {
            return;
        }
    });
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| v[(((p / 100.0) * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (at(50.0), at(95.0), at(99.0))
}

/// Posts `bodies` with `concurrency` in flight; answers the accepted event ids with the instant
/// each POST started, and the seconds it all took.
async fn post_all(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    bodies: Vec<serde_json::Value>,
    concurrency: usize,
) -> anyhow::Result<(Vec<(String, Instant)>, f64)> {
    let start = Instant::now();
    let results: Vec<anyhow::Result<(String, Instant)>> = futures::stream::iter(bodies)
        .map(|body| async move { post_event(client, url, key, &body).await })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let secs = start.elapsed().as_secs_f64();
    Ok((results.into_iter().collect::<anyhow::Result<_>>()?, secs))
}

async fn post_event(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &serde_json::Value,
) -> anyhow::Result<(String, Instant)> {
    let sent = Instant::now();
    let res = client.post(url).bearer_auth(key).json(body).send().await?;
    if res.status() != 202 {
        bail!("POST /events answered {}", res.status());
    }
    let v: serde_json::Value = res.json().await?;
    Ok((v["id"].as_str().unwrap_or_default().to_owned(), sent))
}

/// Waits for `expected` arrivals for these events; answers (seconds from `start` to the last
/// arrival, latencies in ms from each POST's start to each arrival).
async fn settle(
    arrivals: &Arrivals,
    accepted: &[(String, Instant)],
    per_event: usize,
    start: Instant,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = {
            let map = arrivals.0.lock().expect("arrivals");
            accepted.iter().all(|(id, _)| map.get(id).is_some_and(|v| v.len() >= per_event))
        };
        if done {
            break;
        }
        if Instant::now() > deadline {
            bail!("deliveries did not all arrive within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let map = arrivals.0.lock().expect("arrivals");
    let mut last = start;
    let mut latencies = Vec::new();
    for (id, sent) in accepted {
        for at in &map[id] {
            last = last.max(*at);
            latencies.push(at.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
        }
    }
    Ok(((last - start).as_secs_f64(), latencies))
}

/// What `delivery` runs.
struct Shape {
    n: usize,
    concurrency: usize,
    rate: u32,
    duration: u64,
    runs: usize,
    ordered: bool,
}

/// CPU seconds (user + system) used so far by Herald and, on PostgreSQL, by every server
/// process, for "CPU per delivery".
fn cpu_seconds(herald: u32) -> (f64, f64) {
    let ticks = |pid: &str| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        n(11) + n(12) // utime, stime (fields 14 and 15 of the whole line)
    };
    let hz = 100.0; // USER_HZ on Linux
    let mut postgres = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid.chars().all(|c| c.is_ascii_digit())
            && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres")
        {
            postgres += ticks(&pid);
        }
    }
    (ticks(&herald.to_string()) / hz, postgres / hz)
}

/// "CPU per delivery" between two readings of `cpu_seconds`.
fn cpu_per_delivery(before: (f64, f64), after: (f64, f64), deliveries: usize) -> String {
    let per = |s: f64| s * 1e6 / deliveries.max(1) as f64;
    format!(
        "CPU per delivery: Herald {:.0} µs, PostgreSQL {:.0} µs",
        per(after.0 - before.0),
        per(after.1 - before.1)
    )
}

async fn delivery(bin: &std::path::Path, database_url: &str, shape: Shape) -> anyhow::Result<()> {
    let Shape { n, concurrency, rate, duration, runs, ordered } = shape;
    let (rx_addr, arrivals) = start_receiver().await?;
    let hook = format!("http://{rx_addr}/hook");
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;

    // The load generator against the receiver alone: the ceiling on this machine (at least
    // 20,000 requests, so the figure is not noise).
    let raw_n = n.max(20_000);
    let raw_start = Instant::now();
    futures::stream::iter(0..raw_n)
        .map(|i| {
            let client = client.clone();
            let hook = hook.clone();
            async move { client.post(&hook).json(&json!({"i": i})).send().await.map(|_| ()) }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let raw_rate = raw_n as f64 / raw_start.elapsed().as_secs_f64();
    println!("raw POST rate, load generator -> receiver: {raw_rate:.0} req/s ({raw_n} requests, {concurrency} in flight)");

    let (herald, key) = start_herald(bin, database_url)?;
    let events_url = format!("{}/api/v1/events", herald.base);
    let webhook = |name: String, types: &str| {
        let client = client.clone();
        let url = format!("{}/api/v1/webhooks", herald.base);
        let key = key.clone();
        let mut body = json!({"name": name, "url": hook, "event_types": [types]});
        if types == "ordered.*" {
            body["ordered"] = json!(true);
        }
        async move {
            let res = client.post(url).bearer_auth(key).json(&body).send().await?;
            anyhow::ensure!(res.status() == 201, "create webhook: {}", res.status());
            anyhow::Ok(())
        }
    };
    webhook("one".into(), "one.*").await?;
    for i in 0..10 {
        webhook(format!("fan-{i}"), "fan.*").await?;
    }
    if ordered {
        webhook("ordered".into(), "ordered.*").await?;
    }
    // Warm-up: connections, statements, caches.
    let warm: Vec<_> = (0..50).map(|i| json!({"type": "one.warm", "payload": {"i": i}})).collect();
    let (accepted, _) = post_all(&client, &events_url, &key, warm, concurrency).await?;
    settle(&arrivals, &accepted, 1, Instant::now()).await?;

    let pid = herald.child.id();
    let mut shapes = vec![("1 webhook", "one.tick", 1usize, n); runs];
    shapes.push(("fan-out to 10 webhooks", "fan.tick", 10, n / 10));
    if ordered {
        shapes.push(("an ordered webhook", "ordered.tick", 1, n / 10));
    }
    for (run, (label, event_type, per_event, count)) in shapes.into_iter().enumerate() {
        let cpu = cpu_seconds(pid);
        let bodies: Vec<_> = (0..count)
            .map(|i| json!({"type": event_type, "payload": {"i": i, "order": {"id": i, "total": 1999}}}))
            .collect();
        let start = Instant::now();
        let (accepted, post_secs) = post_all(&client, &events_url, &key, bodies, concurrency).await?;
        let (deliver_secs, latencies) = settle(&arrivals, &accepted, per_event, start).await?;
        let deliveries = count * per_event;
        let (p50, p95, p99) = percentiles(latencies);
        let delivery_rate = deliveries as f64 / deliver_secs;
        println!(
            "closed loop {}, {label}: {count} events, {concurrency} in flight: ingest {:.0} events/s; \
             delivery {delivery_rate:.0} deliveries/s ({:.0}% of raw); end-to-end p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms; {}",
            run + 1,
            count as f64 / post_secs,
            delivery_rate * 100.0 / raw_rate,
            cpu_per_delivery(cpu, cpu_seconds(pid), deliveries)
        );
    }

    if rate > 0 {
        let cpu = cpu_seconds(pid);
        let total = rate as u64 * duration;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(total as usize);
        for i in 0..total {
            tick.tick().await;
            let client = client.clone();
            let url = events_url.clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                post_event(&client, &url, &key, &json!({"type": "one.open", "payload": {"i": i}})).await
            }));
        }
        let mut accepted = Vec::with_capacity(tasks.len());
        for t in tasks {
            accepted.push(t.await??);
        }
        let offered = total as f64 / start.elapsed().as_secs_f64();
        let (_, latencies) = settle(&arrivals, &accepted, 1, start).await?;
        let (p50, p95, p99) = percentiles(latencies);
        println!(
            "open loop, {rate} events/s for {duration} s (offered {offered:.0}/s): end-to-end p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms; {}",
            cpu_per_delivery(cpu, cpu_seconds(pid), accepted.len())
        );
    }
    println!("{}", herald.memory());
    println!("receiver got {} requests in all", arrivals.count());
    Ok(())
}

/// A backlog after downtime: `n` deliveries to one webhook, due since before Herald starts (as
/// after the receiver or Herald was down), drained while a second, healthy webhook gets `rate`
/// fresh events per second; prints the drain rate and the healthy webhook's latency meanwhile.
async fn backlog(
    bin: &std::path::Path,
    database_url: &str,
    n: usize,
    seed_log: usize,
    rate: u32,
) -> anyhow::Result<()> {
    let (rx_addr, arrivals) = start_receiver().await?;
    let hook = format!("http://{rx_addr}/hook");
    let db = app::db::connect(database_url, 8).await?;
    Migrator::up(&db, None).await?;
    if seed_log > 0 {
        seed(&db, seed_log, 100).await?;
    }
    let webhook = |name: &str, types: &str| app::models::WebhookCreate {
        name: name.into(),
        url: hook.clone(),
        event_types: vec![types.into()],
        ..Default::default()
    };
    let created = app::db::webhooks::create(&db, webhook("backlogged", "backlog.*"), "bench").await?.webhook;
    let backlogged = app::db::entities::webhooks::Entity::find_by_id(created.id.0)
        .one(&db)
        .await?
        .context("the webhook just created")?;
    app::db::webhooks::create(&db, webhook("healthy", "healthy.*"), "bench").await?;
    let seeding = Instant::now();
    let due_since = app::db::now() - chrono::Duration::hours(1);
    let payload = format!(r#"{{"order":{{"id":1,"lines":"{}"}}}}"#, "x".repeat(900));
    let mut backlog_ids = Vec::with_capacity(n);
    for chunk_start in (0..n).step_by(500) {
        let m = 500.min(n - chunk_start);
        let mut evs = Vec::with_capacity(m);
        let mut dels = Vec::with_capacity(m);
        for j in chunk_start..chunk_start + m {
            let at = due_since + chrono::Duration::milliseconds(j as i64 * 3_600_000 / n.max(1) as i64);
            let event_id = uuid::Uuid::now_v7();
            backlog_ids.push(event_id.to_string());
            evs.push(events::ActiveModel {
                id: Set(event_id),
                event_type: Set("backlog.tick".into()),
                category: Set("backlog".into()),
                payload: Set(payload.clone()),
                idempotency_key: Set(None),
                created_at: Set(at),
            });
            dels.push(app::db::events::new_delivery(
                app::models::EventId(event_id),
                "backlog.tick",
                "backlog",
                &backlogged,
                at,
            ));
        }
        events::Entity::insert_many(evs).exec_without_returning(&db).await?;
        deliveries::Entity::insert_many(dels).exec_without_returning(&db).await?;
    }
    if app::db::is_postgres(&db) {
        db.execute_unprepared("ANALYZE").await?;
    } else {
        app::db::optimize(&db).await;
    }
    db.close().await?;
    println!(
        "seeded a backlog of {n} due deliveries to one webhook in {:.0} s",
        seeding.elapsed().as_secs_f64()
    );

    let (herald, key) = start_herald(bin, database_url)?;
    let pid = herald.child.id();
    let cpu = cpu_seconds(pid);
    let start = Instant::now();
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let events_url = format!("{}/api/v1/events", herald.base);
    let backlog_arrived = {
        let arrivals = arrivals.clone();
        let ids = backlog_ids.clone();
        move || {
            let map = arrivals.0.lock().expect("arrivals");
            ids.iter().filter(|id| map.contains_key(*id)).count()
        }
    };
    // The healthy webhook's open loop, until the backlog is drained.
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut last_report = Instant::now();
    let mut i = 0u64;
    // Counting the backlog's arrivals takes the receiver's lock for a pass over every id: done
    // at each tick, it starved the receiver itself (100,000 ids x 100 ticks/s).
    let mut checked = Instant::now();
    loop {
        if checked.elapsed() >= Duration::from_millis(250) {
            checked = Instant::now();
            if backlog_arrived() >= n {
                break;
            }
        }
        tick.tick().await;
        let (client, url, key) = (client.clone(), events_url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            post_event(&client, &url, &key, &json!({"type": "healthy.tick", "payload": {"i": i}})).await
        }));
        i += 1;
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            println!(
                "  {:.0} s: {} of {n} backlog deliveries arrived",
                start.elapsed().as_secs_f64(),
                backlog_arrived()
            );
        }
        if start.elapsed() > Duration::from_secs(900) {
            bail!("the backlog did not drain within 15 minutes");
        }
    }
    let drain_secs = start.elapsed().as_secs_f64();
    let cpu_after = cpu_seconds(pid);
    let mut accepted = Vec::with_capacity(tasks.len());
    for t in tasks {
        accepted.push(t.await??);
    }
    let (_, latencies) = settle(&arrivals, &accepted, 1, start).await?;
    let (p50, p95, p99) = percentiles(latencies);
    println!(
        "backlog of {n} drained in {drain_secs:.1} s: {:.0} deliveries/s; {}",
        n as f64 / drain_secs,
        cpu_per_delivery(cpu, cpu_after, n + accepted.len())
    );
    println!(
        "meanwhile the healthy webhook, {} events at {rate}/s: end-to-end p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms",
        accepted.len()
    );
    println!("{}", herald.memory());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Log-query benchmark

async fn log_query(database_url: &str, n: usize, n_webhooks: usize, runs: usize) -> anyhow::Result<()> {
    let db = app::db::connect(database_url, 8).await?;
    Migrator::up(&db, None).await?;
    let hooks = seed(&db, n, n_webhooks).await?;
    log_query_runs(&db, &hooks, runs).await
}

/// Seeds the log: `n` deliveries with one attempt each over `n_webhooks` webhooks (which it
/// creates, pointing nowhere reachable), ten per event, over the last 30 days; 10% failed, 5%
/// retrying an hour from now, the rest succeeded. Answers the webhooks' ids.
async fn seed(
    db: &sea_orm::DatabaseConnection,
    n: usize,
    n_webhooks: usize,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    let db = db.clone();
    let seeding = Instant::now();
    let now = app::db::now();
    let mut hooks: Vec<uuid::Uuid> = Vec::with_capacity(n_webhooks);
    for i in 0..n_webhooks {
        let input = app::models::WebhookCreate {
            name: format!("{} service {i}", ["billing", "shipping", "crm", "search", "audit"][i % 5]),
            url: format!("https://hooks{i}.example.com/herald"),
            // The seeded log's own types only: the benchmark's events must not also fan out to
            // 100 destinations that cannot be reached (they would be a different benchmark).
            event_types: CATEGORIES.iter().map(|c| format!("{c}.*")).collect(),
            ..Default::default()
        };
        hooks.push(app::db::webhooks::create(&db, input, "bench").await?.webhook.id.0);
    }
    // One delivery per attempt, ten deliveries per event, spread over the last 30 days.
    const CATEGORIES: [&str; 5] = ["license", "order", "invoice", "user", "ticket"];
    const CHUNK: usize = 1000;
    let span = 30 * 24 * 3600;
    let mut i = 0usize;
    while i < n {
        let m = CHUNK.min(n - i);
        let mut evs = Vec::new();
        let mut dels = Vec::new();
        let mut atts = Vec::new();
        for j in i..i + m {
            let at = now - chrono::Duration::seconds((span * (n - j) / n) as i64);
            let category = CATEGORIES[j % 5];
            let event_type = format!("{category}.{}", ["created", "updated", "deleted"][j % 3]);
            let event_id = if j % 10 == 0 {
                let id = uuid::Uuid::now_v7();
                evs.push(events::ActiveModel {
                    id: Set(id),
                    event_type: Set(event_type.clone()),
                    category: Set(category.into()),
                    payload: Set(format!(r#"{{"n":{j}}}"#)),
                    idempotency_key: Set(None),
                    created_at: Set(at),
                });
                id
            } else {
                match evs.last() {
                    Some(e) => e.id.clone().unwrap(),
                    None => dels
                        .last()
                        .map(|d: &deliveries::ActiveModel| d.event_id.clone().unwrap())
                        .unwrap_or_default(),
                }
            };
            let (status, code, outcome) = match j % 20 {
                0 => (DeliveryStatus::Failed, 500, Outcome::ServerError),
                1 => (DeliveryStatus::Failed, 404, Outcome::ClientError),
                2 => (DeliveryStatus::Retrying, 503, Outcome::ServerError),
                _ => (DeliveryStatus::Succeeded, 200, Outcome::Success),
            };
            let webhook_id = hooks[j % hooks.len()];
            let delivery_id = uuid::Uuid::now_v7();
            dels.push(deliveries::ActiveModel {
                id: Set(delivery_id),
                event_id: Set(event_id),
                webhook_id: Set(webhook_id),
                event_type: Set(event_type),
                category: Set(category.into()),
                status: Set(status),
                attempt_count: Set(1),
                quick_retry_count: Set(0),
                next_attempt_at: Set(
                    (status == DeliveryStatus::Retrying).then_some(now + chrono::Duration::hours(1))
                ),
                last_attempt_at: Set(Some(at)),
                last_response_code: Set(Some(code)),
                last_outcome: Set(Some(outcome)),
                last_duration_ms: Set(Some((j % 400) as i32 + 5)),
                lease_owner: Set(None),
                lease_expires_at: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
                retry_slot: Set(1),
                pending_trigger: Set(None),
                line_seq: Set(None),
            });
            atts.push(attempts::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                delivery_id: Set(delivery_id),
                webhook_id: Set(webhook_id),
                attempt_number: Set(1),
                trigger: Set(AttemptTrigger::Automatic),
                started_at: Set(at),
                duration_ms: Set((j % 400) as i32 + 5),
                request_url: Set("https://hooks.example.com/herald".into()),
                request_method: Set("POST".into()),
                request_headers: Set(r#"{"content-type":"application/json"}"#.into()),
                request_body: Set(Some(format!(r#"{{"n":{j}}}"#))),
                response_status: Set(Some(code)),
                response_headers: Set(Some("{}".into())),
                response_body: Set(Some("ok".into())),
                response_body_truncated: Set(false),
                outcome: Set(outcome),
                error: Set(None),
                sent_by: Set(None),
            });
        }
        if !evs.is_empty() {
            events::Entity::insert_many(evs).exec_without_returning(&db).await?;
        }
        deliveries::Entity::insert_many(dels).exec_without_returning(&db).await?;
        attempts::Entity::insert_many(atts).exec_without_returning(&db).await?;
        i += m;
    }
    // The state a log that grew over weeks is in. On SQLite: fresh statistics, what Herald runs
    // at start and after each purge. On PostgreSQL: what autovacuum has done to such a log long
    // before (PostgreSQL 13+ vacuums after inserts too), vacuumed, analysed, its pages marked
    // all-visible, and checkpointed. Right after a bulk insert none of that has happened: the
    // first vacuum has every page of the 1,000,000 rows to visit, and the first change to a page
    // after a checkpoint writes the whole page to the WAL; neither is what a user with a month
    // of log sees.
    if app::db::is_postgres(&db) {
        db.execute_unprepared("VACUUM (ANALYZE)").await?;
        db.execute_unprepared("CHECKPOINT").await?;
    } else {
        app::db::optimize(&db).await;
    }
    println!(
        "seeded {n} deliveries with one attempt each ({} events) over {n_webhooks} webhooks in {:.0} s",
        n / 10,
        seeding.elapsed().as_secs_f64()
    );
    Ok(hooks)
}

async fn log_query_runs(
    db: &sea_orm::DatabaseConnection,
    hooks: &[uuid::Uuid],
    runs: usize,
) -> anyhow::Result<()> {
    let db = db.clone();
    let now = app::db::now();

    let base = DeliveryQuery { limit: Some(50), ..Default::default() };
    // A deep page: the cursor after 20 pages of the default view.
    let mut deep = base.clone();
    for _ in 0..20 {
        let page = app::db::deliveries::list(&db, &deep).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        deep.cursor = page.next_cursor;
    }
    let cases: Vec<(&str, DeliveryQuery)> = vec![
        ("default view (newest 50)", base.clone()),
        ("status = failed", DeliveryQuery { status: Some(DeliveryStatus::Failed), ..base.clone() }),
        ("status = retrying", DeliveryQuery { status: Some(DeliveryStatus::Retrying), ..base.clone() }),
        ("one webhook", DeliveryQuery { webhook_id: Some(app::models::WebhookId(hooks[7])), ..base.clone() }),
        ("event category", DeliveryQuery { category: Some("invoice".into()), ..base.clone() }),
        ("event type", DeliveryQuery { event_type: Some("order.deleted".into()), ..base.clone() }),
        ("search `billing`", DeliveryQuery { q: Some("billing".into()), ..base.clone() }),
        ("search, rare `hooks77.`", DeliveryQuery { q: Some("hooks77.".into()), ..base.clone() }),
        ("search, no match `zzz`", DeliveryQuery { q: Some("zzz".into()), ..base.clone() }),
        (
            "failed + category + type",
            DeliveryQuery {
                status: Some(DeliveryStatus::Failed),
                category: Some("order".into()),
                event_type: Some("order.deleted".into()),
                ..base.clone()
            },
        ),
        (
            "the same, matching nothing",
            DeliveryQuery {
                status: Some(DeliveryStatus::Failed),
                category: Some("user".into()),
                event_type: Some("user.updated".into()),
                ..base.clone()
            },
        ),
        ("last 24 h", DeliveryQuery { since: Some(now - chrono::Duration::hours(24)), ..base.clone() }),
        (
            "sort by response code",
            DeliveryQuery {
                sort: Some(DeliverySort::ResponseCode),
                order: Some(SortOrder::Desc),
                ..base.clone()
            },
        ),
        ("sort by status", DeliveryQuery { sort: Some(DeliverySort::Status), ..base.clone() }),
        ("page 21 (keyset cursor)", deep),
    ];
    // The page alone (the JSON API), and the page with its match count (the admin app's log,
    // which counts up to `COUNT_CAP` and says "more than" beyond).
    println!(
        "{:<32} {:>10} {:>10} {:>16} {:>16} {:>8}",
        "query", "p50 ms", "p95 ms", "+count p50 ms", "+count p95 ms", "count"
    );
    let cap = app::api::deliveries::COUNT_CAP;
    for (label, query) in cases {
        let mut times = Vec::with_capacity(runs);
        let mut counted_times = Vec::with_capacity(runs);
        let mut counted = String::new();
        for _ in 0..runs {
            let t = Instant::now();
            let page = app::db::deliveries::list(&db, &query).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            std::hint::black_box(page);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            let (page, (n, more)) = app::db::deliveries::list_counted(&db, &query, cap)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            std::hint::black_box(page);
            counted_times.push(t.elapsed().as_secs_f64() * 1000.0);
            counted = if more { format!(">{n}") } else { n.to_string() };
        }
        let (p50, p95, _) = percentiles(times);
        let (c50, c95, _) = percentiles(counted_times);
        println!("{label:<32} {p50:>10.1} {p95:>10.1} {c50:>16.1} {c95:>16.1} {counted:>8}");
    }
    // The log's pickers: the event types Herald has seen (a loose index scan over `events`).
    let mut times = Vec::with_capacity(runs);
    let mut types = 0;
    for _ in 0..runs {
        let t = Instant::now();
        types = app::db::deliveries::known_event_types(&db).await?.len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (p50, p95, _) = percentiles(times);
    println!("{:<32} {p50:>10.1} {p95:>10.1}   ({types} types)", "event types seen (pickers)");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bundle size

/// The goal for what one page downloads first (BENCHMARKS.md): gzipped WASM of at most 400 KiB.
const BUNDLE_GOAL: u64 = 400 * 1024;

/// A marker for a first load over [`BUNDLE_GOAL`], so it stands out in the test log.
fn over_goal(bytes: u64) -> String {
    if bytes > BUNDLE_GOAL {
        format!("  OVER THE 400 KiB GOAL by {} B", bytes - BUNDLE_GOAL)
    } else {
        String::new()
    }
}

/// Prints the gzipped sizes `scripts/build.sh --release` left in `pkg`: the main module, and
/// for each page (a lazy function in the split manifest) the chunks it loads on top of it.
fn bundle(pkg: &std::path::Path) -> anyhow::Result<()> {
    let missing = |path: &std::path::Path| {
        format!("{}: build the site with scripts/build.sh --release first", path.display())
    };
    let gz = |file: &str| -> anyhow::Result<u64> {
        let path = pkg.join(format!("{file}.gz"));
        Ok(std::fs::metadata(&path).with_context(|| missing(&path))?.len())
    };
    let manifest_path = pkg.join("__wasm_split_manifest.json");
    let manifest: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_str(
        &std::fs::read_to_string(&manifest_path).with_context(|| missing(&manifest_path))?,
    )?;
    let main = gz("herald_bg.wasm")?;
    let js = gz("herald.js")? + gz("__wasm_split.______________________.js")?;
    let mut chunks = 0;
    let mut chunk_bytes = 0;
    for entry in std::fs::read_dir(pkg)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wasm") && name != "herald_bg.wasm" {
            chunks += 1;
            chunk_bytes += gz(&name)?;
        }
    }
    println!("browser bundle, gzipped as served (the .gz files), in {}", pkg.display());
    println!("  main module {main} B ({:.0} KiB); JS glue {js} B", main as f64 / 1024.0);
    println!("  chunks: {chunks} files, {chunk_bytes} B in all; all WASM {} B", main + chunk_bytes);
    println!("  {:<24} {:>6} {:>12} {:>22}", "page", "files", "its chunks B", "first load (WASM) B");
    println!(
        "  {:<24} {:>6} {:>12} {main:>13} ({:>3.0} KiB)",
        "main module's pages",
        1,
        0,
        main as f64 / 1024.0
    );
    let mut worst = main;
    for (function, files) in manifest.iter().filter(|(name, _)| !name.starts_with("chunk_")) {
        let own = files.iter().map(|f| gz(&format!("{f}.wasm"))).sum::<anyhow::Result<u64>>()?;
        // `__delivery_log_route_view_8887015352491840230` -> `delivery_log`
        let page = function.trim_start_matches('_');
        let page = page.rsplit_once('_').map_or(page, |(name, _hash)| name);
        let page = page.trim_end_matches("_view");
        let first = main + own;
        worst = worst.max(first);
        println!(
            "  {page:<24} {:>6} {own:>12} {first:>13} ({:>3.0} KiB){}",
            files.len() + 1, // its chunks and the main module
            first as f64 / 1024.0,
            over_goal(first)
        );
    }
    println!(
        "largest first load: {worst} B ({:.0} KiB) of WASM, plus {js} B of JS{}",
        worst as f64 / 1024.0,
        over_goal(worst)
    );
    Ok(())
}
