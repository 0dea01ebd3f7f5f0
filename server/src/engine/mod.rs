//! The delivery engine: claims due deliveries, sends them, decides what comes next and records
//! each attempt. `Engine::run` is the long-running loop. Requests go out concurrently; their
//! attempts are recorded by one recorder task, in batches of whatever finished meanwhile, one
//! transaction per batch. A request's slot (its webhook's concurrency, this process's
//! `max_in_flight`) is free as soon as its response is in; recording goes on beside the next
//! requests.

pub mod dispatch;
pub mod flow;
pub mod guard;
pub mod heartbeat;
pub mod lanes;
pub mod policy;
pub mod signing;
pub mod store;

use std::{sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use tokio::{
    sync::{mpsc, Notify},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::{
    guard::Guard,
    lanes::Lanes,
    policy::{AttemptResult, Before, RetryPolicy},
    store::{Answered, Attempted, ClaimLimits, Claimed},
};
use crate::config::Config;

#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub policy: RetryPolicy,
    pub response_body_max_bytes: usize,
    pub webhook_concurrency: usize,
    pub max_in_flight: usize,
    pub poll_interval: Duration,
    pub lease_margin: Duration,
    pub shutdown_grace: Duration,
    pub notices: store::Notices,
    /// Requests per second for webhooks without their own rate limit.
    pub default_rate: Option<u32>,
    /// How long a finished attempt may wait for others to share its record's transaction.
    pub group_commit: Duration,
}

impl EngineSettings {
    pub fn from_config(config: &Config) -> Self {
        EngineSettings {
            policy: RetryPolicy {
                schedule: config.retry_schedule.clone(),
                quick_retries: config.quick_retries,
                quick_retry_delay: Duration::from_secs(u64::from(config.quick_retry_delay_secs)),
                retry_after_max: Duration::from_secs(u64::from(config.retry_after_max_secs)),
            },
            response_body_max_bytes: config.response_body_max_bytes,
            webhook_concurrency: config.webhook_concurrency as usize,
            max_in_flight: config.max_in_flight as usize,
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            lease_margin: Duration::from_secs(config.lease_margin_secs),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
            notices: store::Notices {
                public_url: config.public_url.as_deref().map(|u| u.trim_end_matches('/').to_owned()),
                failing_interval: chrono::Duration::minutes(i64::from(config.failure_notice_minutes)),
            },
            default_rate: (config.webhook_rate_limit > 0).then_some(config.webhook_rate_limit),
            group_commit: config.group_commit(),
        }
    }
}

/// The most attempts one recording transaction takes.
const RECORD_BATCH: usize = 256;

/// Group commit waits for no more once a batch holds this many attempts: their statements and
/// commit are shared already.
const GATHER_ATTEMPTS: usize = 32;

/// How long the recorder waits for an unavailable database before giving up on a batch (its
/// deliveries are then sent again once their leases are taken over: at least once).
const OUTAGE_WAIT: Duration = Duration::from_secs(30);

/// Waits between tries against a failing database: 100 ms, doubling to at most 2 s, so the
/// engine resumes within ~2 s of the database answering again and does not hammer it meanwhile.
#[derive(Default)]
struct Backoff(u32);

impl Backoff {
    async fn wait(&mut self) {
        let delay = Duration::from_millis(100 * 2u64.pow(self.0.min(5))).min(Duration::from_secs(2));
        self.0 += 1;
        tokio::time::sleep(delay).await;
    }
}

pub struct Engine {
    db: DatabaseConnection,
    settings: EngineSettings,
    client: reqwest::Client,
    guard: Guard,
    /// This process, as leases and attempts name it.
    worker: String,
    /// Deliveries became due: claim them.
    wakeup: Arc<Notify>,
    /// The ingest handed deliveries to the lanes: start what has a slot (no claim needed).
    handed: Notify,
    /// Requests that are over and whose attempts wait for the recorder.
    answered: Answered,
    /// Per webhook, deliveries leased ahead and requests in flight.
    lanes: Lanes,
    /// Set once shutdown begins: a finished request no longer hands its slot on.
    stopping: std::sync::atomic::AtomicBool,
    health: app::db::health::DbHealth,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Engine {
    pub fn new(
        db: DatabaseConnection,
        settings: EngineSettings,
        guard: Guard,
        wakeup: Arc<Notify>,
        health: app::db::health::DbHealth,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(guard.clone()))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(settings.webhook_concurrency.max(1))
            .build()?;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "herald".into());
        let worker =
            format!("{host}:{}:{}", std::process::id(), &uuid::Uuid::now_v7().simple().to_string()[24..]);
        Ok(Engine {
            db,
            settings,
            client,
            guard,
            worker,
            wakeup,
            handed: Notify::new(),
            answered: Answered::default(),
            lanes: Lanes::default(),
            stopping: Default::default(),
            health,
            metrics,
        })
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    fn limits(&self, batch: usize) -> ClaimLimits {
        ClaimLimits {
            batch,
            per_webhook: self.settings.webhook_concurrency,
            prefetch: self.settings.webhook_concurrency,
            capacity: self.settings.max_in_flight,
            lease_margin: chrono::Duration::from_std(self.settings.lease_margin).unwrap_or_default(),
            default_rate: self.settings.default_rate,
        }
    }

    /// Sends a claimed delivery, decides what comes next and hands the attempt to the recorder;
    /// then sends the next delivery of the same webhook that waits in its lane, in the slot
    /// the first one held, and so on. Returns when the lane has none (its slot is then free),
    /// once the recorder has taken the last attempt (its queue is bounded), not once it is
    /// recorded; except in an ordered webhook's line, where each waits for its record.
    async fn process(self: Arc<Self>, mut claimed: Claimed, recorder: mpsc::Sender<Attempted>) {
        loop {
            let webhook = claimed.delivery.webhook_id;
            if !self.lease_lasts(&claimed) {
                // It waited in its lane past the point where its request would end within its
                // lease: another process may take it once the lease runs out, so it is not sent
                // from here (its lease, if still this process's, is given back).
                self.lanes.give_up(webhook);
                self.release(vec![claimed.delivery.id]).await;
                self.handed.notify_one(); // the lane's next one may still be good to go
                return;
            }
            if !self.wait_for_its_time(&mut claimed).await {
                // Its new time would outlast its lease: back to the queue, and the slot is free.
                self.lanes.give_up(webhook);
                self.release(vec![claimed.delivery.id]).await;
                return;
            }
            if self.lanes.paused(&webhook) {
                // The receiver asked for a pause after this one was handed on: it waits too.
                self.lanes.give_up(webhook);
                self.release(vec![claimed.delivery.id]).await;
                return;
            }
            let ordered = claimed.place().is_some();
            let mut attempted = self.attempt(claimed).await;
            attempted.pause = self.back_pressure(webhook, &attempted).await;
            let succeeded = attempted.sent.outcome == app::models::Outcome::Success;
            let (unrecorded, recorded) = if ordered {
                // The next one of a line goes only once this one's outcome is committed: after a
                // crash, at most this one is sent again, never one after it before it.
                let (tx, rx) = tokio::sync::oneshot::channel();
                attempted.recorded = Some(tx);
                (None, recorder.send(attempted).await.is_ok() && rx.await.unwrap_or(false))
            } else {
                (Some(attempted), true)
            };
            let usable = |c: &Claimed| self.lease_lasts(c);
            let hand_over = !self.stopping.load(std::sync::atomic::Ordering::SeqCst) && recorded;
            let mut unusable = Vec::new();
            let next = self.lanes.finish(webhook, hand_over, succeeded, usable, &mut unusable);
            self.release(unusable).await;
            if let Some(attempted) = unrecorded {
                // After the lane let go of it: counted as answered only once it is not running.
                self.answered.insert(&attempted.claimed.delivery);
                let delivery = attempted.claimed.delivery.id;
                if recorder.send(attempted).await.is_err() {
                    self.answered.remove([delivery]); // the recorder is gone: only at shutdown
                }
            }
            if self.lanes.running_low(webhook, self.settings.webhook_concurrency) {
                self.wakeup.notify_one();
            }
            match next {
                Some(next) => claimed = next,
                None => return,
            }
        }
    }

    /// Whether a delivery's lease outlasts a request started now and half the margin: only
    /// then is it sent. A lease that runs out lets another process claim it, and the receiver
    /// would get it twice.
    fn lease_lasts(&self, c: &Claimed) -> bool {
        let needed =
            Duration::from_millis(c.webhook.timeout_ms.max(0) as u64) + self.settings.lease_margin / 2;
        let needed = chrono::Duration::from_std(needed).unwrap_or_default();
        c.delivery.lease_expires_at.is_some_and(|e| e > app::db::now() + needed)
    }

    /// Waits for the send time its webhook's rate limit reserved for a delivery. A process whose
    /// timer fires late (busy cores) would send it close to requests reserved after it, by this
    /// process or another, past the limit: it takes a new time from the shared schedule instead
    /// (the old one is wasted, never used twice). False when that time would outlast its lease.
    async fn wait_for_its_time(&self, claimed: &mut Claimed) -> bool {
        /// How late a request may go after its reserved time.
        const LATE: chrono::Duration = chrono::Duration::milliseconds(20);
        let (Some(mut send_at), Some(rate)) = (claimed.send_at, claimed.rate) else { return true };
        let margin = chrono::Duration::from_std(self.settings.lease_margin / 2).unwrap_or_default();
        let latest = claimed
            .delivery
            .lease_expires_at
            .map(|e| e - chrono::Duration::milliseconds(i64::from(claimed.webhook.timeout_ms)) - margin);
        for _ in 0..3 {
            tokio::time::sleep((send_at - app::db::now()).to_std().unwrap_or_default()).await;
            let now = app::db::now();
            if now - send_at <= LATE {
                return true;
            }
            match flow::reserve(&self.db, claimed.delivery.webhook_id, rate, 1, flow::micros(now)).await {
                Ok(times) => send_at = times.first().map_or(now, |t| flow::from_micros(*t)),
                Err(_) => return true, // the database is away: go as reserved
            }
            if latest.is_some_and(|l| send_at > l) {
                return false;
            }
        }
        true
    }

    /// Sends one delivery and decides what comes next.
    async fn attempt(&self, claimed: Claimed) -> Attempted {
        let request = dispatch::Request {
            webhook: &claimed.webhook,
            event: &claimed.event,
            delivery: &claimed.delivery,
            attempt_number: claimed.delivery.attempt_count + 1,
        };
        let span = tracing::info_span!(
            "attempt",
            event_id = %claimed.event.id,
            event_type = %claimed.event.event_type,
            delivery_id = %claimed.delivery.id,
            webhook_id = %claimed.webhook.id,
            attempt = request.attempt_number,
            trigger = %claimed.trigger().as_str(),
            outcome = tracing::field::Empty,
            status_code = tracing::field::Empty,
        );
        let in_flight = self.metrics.request_started();
        let sent = dispatch::send(&self.client, &self.guard, request, self.settings.response_body_max_bytes)
            .instrument(span.clone())
            .await;
        drop(in_flight);
        span.record("outcome", sent.outcome.as_str());
        if let Some(response) = &sent.response {
            span.record("status_code", i64::from(response.status));
        }
        let schedule = app::db::webhooks::retry_schedule_of(&claimed.webhook).unwrap_or_default();
        let decision = self.settings.policy.decide(
            &schedule,
            Before {
                status: claimed.delivery.status,
                retry_slot: claimed.delivery.retry_slot,
                quick_retry_count: claimed.delivery.quick_retry_count,
            },
            AttemptResult {
                outcome: sent.outcome,
                status_code: sent.response.as_ref().map(|r| r.status),
                retry_after: sent.retry_after,
                trigger: claimed.trigger(),
            },
            app::db::now(),
        );
        Attempted { claimed, sent, decision, pause: None, recorded: None }
    }

    /// The receiver's back-pressure: a 429 or 503 with `Retry-After`, or 429s in a row, pause
    /// the whole webhook here at once (what it had leased ahead is released) and, once the
    /// attempt is recorded, in every process.
    async fn back_pressure(
        &self,
        webhook: uuid::Uuid,
        attempted: &Attempted,
    ) -> Option<(chrono::DateTime<chrono::Utc>, String)> {
        let status = attempted.sent.response.as_ref().map(|r| r.status);
        let bare_429 = status == Some(429) && attempted.sent.retry_after.is_none();
        let in_a_row = self.lanes.throttled(webhook, bare_429);
        let (pause, reason) = flow::pause_after(
            status,
            attempted.sent.retry_after,
            in_a_row,
            self.settings.policy.retry_after_max,
        )?;
        let released = self.lanes.pause(webhook, std::time::Instant::now() + pause);
        let until = app::db::now() + chrono::Duration::from_std(pause).unwrap_or_default();
        tracing::info!(webhook = %attempted.claimed.webhook.name, %until, reason, "webhook paused by its receiver");
        self.release(released).await;
        Some((until, reason))
    }

    /// Records attempts until every sender is gone: each batch is what finished while the
    /// previous one was being written, so under load one commit covers many attempts; in a
    /// steady stream an attempt waits up to `group_commit` for others (`gather::Gather`), and
    /// at low rates it is recorded as soon as it finishes.
    async fn record_all(self: Arc<Self>, mut queue: mpsc::Receiver<Attempted>) {
        let mut attempted = Vec::with_capacity(RECORD_BATCH);
        let mut gather =
            app::db::gather::Gather::new(self.settings.group_commit, RECORD_BATCH, GATHER_ATTEMPTS);
        // An ordered webhook's next delivery waits for this record: it goes at once.
        let waited_for = |a: &Attempted| a.recorded.is_some();
        while gather.next(&mut queue, &mut attempted, waited_for).await > 0 {
            let mut recorded = vec![true; attempted.len()];
            if let Err(e) = self.record_when_available(&attempted).await {
                // One attempt the database refuses must not lose the others' records.
                tracing::warn!(error = %e, attempts = attempted.len(), "cannot record attempts together; one by one");
                for (one, recorded) in attempted.chunks(1).zip(recorded.iter_mut()) {
                    let mut tries = 0;
                    while let Err(e) = self.record(one).await {
                        if tries == 5 {
                            // The lease expires and the delivery is sent again: at least once.
                            tracing::error!(error = %e, delivery = %one[0].claimed.delivery.id, "cannot record attempt");
                            *recorded = false;
                            break;
                        }
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                    }
                }
            }
            for (a, recorded) in attempted.iter_mut().zip(recorded) {
                if let Some(waiting) = a.recorded.take() {
                    let _ = waiting.send(recorded);
                }
            }
            self.answered.remove(attempted.drain(..).map(|a| a.claimed.delivery.id));
            // A claim that ran while this batch committed may have counted one of its leases
            // as in flight: claim again now rather than at the next poll, when anything waits.
            if self.lanes.any_backlog() {
                self.wakeup.notify_one();
            }
        }
    }

    /// Records a batch, waiting out an outage of the database for up to `OUTAGE_WAIT`: the
    /// requests went out, and recording them now spares the receiver a second copy. Past
    /// that, or for any other error, the caller decides.
    async fn record_when_available(&self, attempted: &[Attempted]) -> Result<(), sea_orm::DbErr> {
        let started = std::time::Instant::now();
        let mut backoff = Backoff::default();
        loop {
            match self.record(attempted).await {
                Err(e) if self.health.failed(&e) && started.elapsed() < OUTAGE_WAIT => backoff.wait().await,
                other => return other,
            }
        }
    }

    async fn record(&self, attempted: &[Attempted]) -> Result<(), sea_orm::DbErr> {
        let deactivated = {
            let _turn = app::db::sqlite_write_turn(&self.db).await;
            let started = std::time::Instant::now();
            let deactivated =
                store::record(&self.db, &self.worker, &self.settings.notices, attempted).await?;
            self.metrics.recorded(attempted, started.elapsed(), deactivated.len());
            deactivated
        };
        self.health.wrote();
        for d in &deactivated {
            tracing::warn!(webhook = %d.webhook, reason = %d.reason, held = d.held, "webhook deactivated");
            self.release(self.lanes.deactivate(d.webhook_id)).await;
        }
        if !deactivated.is_empty() {
            self.wakeup.notify_one(); // the webhook.deactivated event is due
        }
        Ok(())
    }

    /// Gives back the leases of deliveries leased ahead that will not be sent from here.
    async fn release(&self, ids: Vec<uuid::Uuid>) {
        if ids.is_empty() {
            return;
        }
        if let Err(e) = store::release_ids(&self.db, &self.worker, ids).await {
            if !self.health.failed(&e) {
                tracing::warn!(error = %e, "cannot release deliveries leased ahead; they expire with their lease");
            }
        }
    }

    /// Starts what the lanes hold ready (the hand-off's deliveries, no claim), as far as this
    /// process's `max_in_flight` and each webhook's limit let.
    fn start_ready(self: &Arc<Self>, tasks: &mut JoinSet<()>, recorder: &mpsc::Sender<Attempted>) {
        let room = self.settings.max_in_flight.saturating_sub(tasks.len());
        let (start, _) = self.lanes.fill(Vec::new(), None, self.settings.webhook_concurrency, room);
        for c in start {
            tasks.spawn(self.clone().process(c, recorder.clone()));
        }
    }

    /// Delivers until `shutdown`: claims whenever there is room, wakes on new events, a finished
    /// request or the poll interval, and on shutdown lets in-flight requests finish for a bounded
    /// time before releasing the rest.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        tracing::info!(worker = %self.worker, "delivery engine started");
        // One recorder: concurrent ones would update the same usage rows in different orders
        // and deadlock on PostgreSQL (measured: fan-out fell from 930 to 146 deliveries/s).
        // The queue holds at most one more batch than is being written: a request that finds it
        // full stays among this process's `max_in_flight` until there is room (its webhook's
        // slot is already free), so no more claims start and attempts held in memory stay bounded.
        let (recorder, queue) = mpsc::channel(RECORD_BATCH);
        let recording = tokio::spawn(self.clone().record_all(queue));
        let mut tasks: JoinSet<()> = JoinSet::new();
        let batch = self.settings.max_in_flight.min(100);
        let mut last_sweep = std::time::Instant::now();
        let mut backoff = Backoff::default();
        // Whether to claim on this turn: not when the only news is a hand-off. Whatever the
        // news, a claim runs at least once per poll interval (retries that fell due).
        let mut claim_due = true;
        let mut next_poll = tokio::time::Instant::now();
        loop {
            claim_due |= tokio::time::Instant::now() >= next_poll;
            if claim_due {
                next_poll = tokio::time::Instant::now() + self.settings.poll_interval;
            }
            while tasks.try_join_next().is_some() {}
            if last_sweep.elapsed() >= Duration::from_secs(1) && self.health.outage().is_none() {
                last_sweep = std::time::Instant::now();
                match store::hold_inactive(&self.db).await {
                    Ok((held, inactive)) => {
                        self.release(self.lanes.set_inactive(inactive.into_iter().collect())).await;
                        if held > 0 {
                            tracing::info!(held, "held deliveries of webhooks that are not active");
                        }
                    }
                    Err(e) if self.health.failed(&e) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot hold deliveries of inactive webhooks"),
                }
                if let Err(e) = store::place_newly_ordered(&self.db).await {
                    if !self.health.failed(&e) {
                        tracing::warn!(error = %e, "cannot place deliveries in their webhooks' lines");
                    }
                }
            }
            let room = self.settings.max_in_flight.saturating_sub(tasks.len());
            let mut claimed_full = false;
            let limit = self.settings.webhook_concurrency;
            if room > 0 && !claim_due {
                self.start_ready(&mut tasks, &recorder);
            } else if room > 0 {
                let limits = self.limits(batch);
                let started = std::time::Instant::now();
                let claim = store::claim(&self.db, &self.worker, &limits, &self.answered, &self.lanes);
                tokio::pin!(claim);
                // What the ingest hands over meanwhile starts now, not after the claim: while a
                // backlog drains, a claim waits for SQLite's writer behind the recorder and
                // leases hundreds, and a healthy webhook's new deliveries waited for it.
                let claim = loop {
                    tokio::select! {
                        biased;
                        claim = &mut claim => break claim,
                        _ = self.handed.notified() => self.start_ready(&mut tasks, &recorder),
                    }
                };
                self.metrics.claim_duration.observe(started.elapsed().as_secs_f64());
                let room = self.settings.max_in_flight.saturating_sub(tasks.len());
                match claim {
                    Ok(claim) => {
                        backoff = Backoff::default();
                        // At least a batch (a process alone leases more at once): more may be due.
                        claimed_full = claim.leased.len() >= batch;
                        let counted = lanes::Counted {
                            others: &claim.others,
                            maybe_more: &claim.maybe_more,
                            started,
                            alone: claim.alone,
                        };
                        let (start, blocked) = self.lanes.fill(claim.leased, Some(counted), limit, room);
                        for c in start {
                            tasks.spawn(self.clone().process(c, recorder.clone()));
                        }
                        self.release(blocked).await;
                    }
                    Err(e) => {
                        // An outage is logged once, by `DbHealth`; other errors each time.
                        if !self.health.failed(&e) {
                            tracing::error!(error = %e, "cannot claim deliveries");
                        }
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = backoff.wait() => {}
                        }
                        continue;
                    }
                }
            }
            if claimed_full && tasks.len() < self.settings.max_in_flight {
                continue; // more may be due right now
            }
            // A finished task freed a place among `max_in_flight`: worth a claim only when
            // something waits in the database; otherwise starting what the lanes hold is enough.
            claim_due = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wakeup.notified() => true,
                _ = self.handed.notified() => false,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => self.lanes.any_backlog(),
                _ = tokio::time::sleep_until(next_poll) => true,
            };
        }
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        self.lanes.clear();
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(in_flight, "letting in-flight deliveries finish");
            let grace = tokio::time::sleep(self.settings.shutdown_grace);
            tokio::pin!(grace);
            loop {
                tokio::select! {
                    next = tasks.join_next() => if next.is_none() { break },
                    _ = &mut grace => {
                        tracing::warn!(unfinished = tasks.len(), "shutdown grace over; releasing the rest");
                        tasks.abort_all();
                        while tasks.join_next().await.is_some() {}
                        break;
                    }
                }
            }
        }
        // Attempts whose requests went out are recorded even when their tasks were aborted.
        drop(recorder);
        let _ = recording.await;
        match store::release(&self.db, &self.worker).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "released unfinished deliveries"),
            Err(e) => tracing::warn!(error = %e, "cannot release claims; they expire with their lease"),
        }
        tracing::info!("delivery engine stopped");
    }
}

/// The ingest's hand-off: new deliveries of healthy webhooks go from the commit that stores
/// them straight into this process's lanes, leased to it, with no claim.
impl app::db::events::HandOff for Engine {
    fn reserve(
        &self,
        webhook: &app::db::entities::webhooks::Model,
        usage: Option<&app::db::entities::webhook_usage::Model>,
        wanted: usize,
    ) -> usize {
        let healthy = webhook.enabled
            && webhook.state == app::models::WebhookState::Active
            && webhook.ordered_since.is_none()
            && flow::Rate::of(webhook.rate_limit, webhook.rate_limit_burst, self.settings.default_rate)
                .is_none()
            && usage.is_none_or(|u| {
                u.consecutive_errors == 0 && u.paused_until.is_none_or(|p| p <= app::db::now())
            });
        if !healthy || self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            // Nothing taken: the lane, if any, knows older deliveries now wait for the claim.
            return self.lanes.reserve(webhook.id, wanted, 0);
        }
        self.lanes.reserve(webhook.id, wanted, self.settings.webhook_concurrency)
    }

    fn lease(
        &self,
        webhook: &app::db::entities::webhooks::Model,
        at: chrono::DateTime<chrono::Utc>,
    ) -> (String, chrono::DateTime<chrono::Utc>) {
        let margin = chrono::Duration::from_std(self.settings.lease_margin).unwrap_or_default();
        (self.worker.clone(), store::lease_expiry(at, webhook.timeout_ms, margin))
    }

    fn hand(&self, handed: Vec<app::db::events::Handed>, unleased: bool) {
        if !handed.is_empty() {
            let claimed = handed
                .into_iter()
                .map(|h| Claimed {
                    delivery: h.delivery,
                    webhook: h.webhook,
                    event: h.event,
                    send_at: None,
                    rate: None,
                })
                .collect();
            self.lanes.arrive(claimed);
            self.handed.notify_one();
        }
        if unleased {
            self.wakeup.notify_one();
        }
    }

    fn cancel(&self, reserved: &[(uuid::Uuid, usize)]) {
        self.lanes.cancel(reserved);
    }
}
