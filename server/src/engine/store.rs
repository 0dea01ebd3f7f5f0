//! The engine's reads and writes: claiming due deliveries under a lease, and recording a batch
//! of attempts with everything they change (deliveries, usage, and on deactivation the webhook,
//! its queue, the activity log, the emails and the operational event) in one transaction.

use std::collections::{HashMap, HashSet};

use app::{
    db::{
        activity,
        entities::{attempts, deliveries, events, users, webhook_usage, webhooks},
        events as event_store, now, outbox,
    },
    models::{AttemptTrigger, DeliveryStatus, Role, WebhookState},
};
use chrono::{DateTime, Utc};
use sea_orm::{
    prelude::Expr,
    sea_query::{ExprTrait, Func, LockBehavior, LockType, Query},
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::{dispatch::Sent, flow, lanes::Lanes, policy::Decision};

/// A delivery this process has leased, with what sending it needs.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery: deliveries::Model,
    pub webhook: webhooks::Model,
    pub event: events::Model,
    /// Not before then: the send time its webhook's rate limit reserved for it.
    pub send_at: Option<DateTime<Utc>>,
    /// Its webhook's rate limit, when it has one.
    pub rate: Option<flow::Rate>,
}

impl Claimed {
    pub fn trigger(&self) -> AttemptTrigger {
        self.delivery.pending_trigger.unwrap_or(AttemptTrigger::Automatic)
    }

    /// Its place in its webhook's line, when the webhook delivers in order.
    pub fn place(&self) -> Option<i64> {
        self.delivery.line_seq.filter(|_| self.webhook.ordered_since.is_some())
    }
}

/// Of what a claim leased, the deliveries of lines it must give back: each line keeps the part
/// of its stretch (`lines`, in order) that it leased without a gap from the head. Another
/// process that leased some of the same stretch at once cannot have leased the head too, so
/// it keeps nothing and never sends a delivery ahead of the one before it.
fn out_of_line(lines: &HashMap<Uuid, Vec<Uuid>>, leased: &[deliveries::Model]) -> HashSet<Uuid> {
    let got: HashSet<Uuid> = leased.iter().map(|d| d.id).collect();
    let mut broken = HashSet::new();
    for stretch in lines.values() {
        let kept = stretch.iter().take_while(|id| got.contains(id)).count();
        broken.extend(stretch[kept..].iter().filter(|id| got.contains(id)));
    }
    broken
}

pub struct ClaimLimits {
    pub batch: usize,
    pub per_webhook: usize,
    /// Deliveries leased ahead per webhook, beyond its free slots, while it has a slot: they
    /// wait in this process's lane and take over a slot the moment a request to it ends.
    pub prefetch: usize,
    /// Requests this process may have in flight (`HERALD_MAX_IN_FLIGHT`): it leases no more
    /// than that in all, running and ready, so what it cannot send soon is left to others.
    pub capacity: usize,
    pub lease_margin: chrono::Duration,
    /// Requests per second for webhooks without their own rate limit (`None`: unlimited).
    pub default_rate: Option<u32>,
}

/// What a claim leased, and what it counted.
#[derive(Debug, Default)]
pub struct Claim {
    pub leased: Vec<Claimed>,
    /// Per webhook, the requests in flight from other processes.
    pub others: HashMap<Uuid, usize>,
    /// The webhooks that may have due, unleased deliveries this claim did not read (it wanted
    /// no more of them, or read as many as it wanted): the hand-off leaves them to the claim.
    pub maybe_more: HashSet<Uuid>,
    /// No other process is alive and no webhook is ordered (`workers::alone`): the leases were
    /// not counted, and the hand-off may lease further ahead.
    pub alone: bool,
}

/// Deliveries this process has sent and heard back from whose attempts are not committed yet.
/// Their leases still count as in flight in the database until the recorder commits them, but a
/// per-webhook limit bounds requests to the receiver, and these have their answer: the claim
/// subtracts them, so a webhook's slot is free as soon as its response is in, not one commit later.
#[derive(Debug, Default)]
pub struct Answered(std::sync::Mutex<HashMap<Uuid, Answer>>);

#[derive(Clone, Copy, Debug)]
struct Answer {
    webhook_id: Uuid,
    lease_expires_at: Option<DateTime<Utc>>,
}

impl Answered {
    /// The delivery's request is over; its attempt is on its way to the recorder.
    pub fn insert(&self, delivery: &deliveries::Model) {
        let answer = Answer { webhook_id: delivery.webhook_id, lease_expires_at: delivery.lease_expires_at };
        self.lock().insert(delivery.id, answer);
    }

    /// The recorder is done with these deliveries: their leases are released (or, if the
    /// record failed, they count in the database until the lease expires).
    pub fn remove(&self, deliveries: impl IntoIterator<Item = Uuid>) {
        let mut answered = self.lock();
        for id in deliveries {
            answered.remove(&id);
        }
    }

    /// Per webhook, the answered deliveries whose leases the database still counts at `at`.
    fn counted_at(&self, at: DateTime<Utc>) -> HashMap<Uuid, i64> {
        let mut counts = HashMap::new();
        for a in self.lock().values().filter(|a| a.lease_expires_at.is_some_and(|e| e > at)) {
            *counts.entry(a.webhook_id).or_default() += 1;
        }
        counts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Answer>> {
        // The map stays consistent whatever panicked while holding it: every change is one call.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

const DUE: [DeliveryStatus; 2] = [DeliveryStatus::Pending, DeliveryStatus::Retrying];

/// The lease's check that a delivery is still due. SQLite must find the deliveries by their ids
/// (a few dozen): given `status IN (...)` as is, its planner walked the status index instead,
/// every pending delivery, wherever its statistics (`PRAGMA optimize`, taken while few waited)
/// said few were pending, so each claim cost as much as the backlog was long. The unary `+` is
/// SQLite's way to keep a term from choosing an index; PostgreSQL plans by the ids anyway.
fn still_due(backend: sea_orm::DbBackend) -> sea_orm::sea_query::SimpleExpr {
    match backend {
        sea_orm::DbBackend::Sqlite => {
            Expr::cust_with_values(r#"+"status" IN (?, ?)"#, DUE.map(|s| s.as_str()))
        }
        _ => deliveries::Column::Status.is_in(DUE),
    }
}

/// Leases those of `ids` that are still due and not leased, to `worker` until `expires`, in
/// chunks of `statement_chunks`; answers them.
async fn lease(
    db: &impl sea_orm::ConnectionTrait,
    worker: &str,
    ids: &[Uuid],
    expires: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<Vec<deliveries::Model>, DbErr> {
    let mut leased = Vec::new();
    for chunk in app::db::statement_chunks(db.get_database_backend(), ids) {
        let still_free = Query::select()
            .column(deliveries::Column::Id)
            .from(deliveries::Entity)
            .and_where(deliveries::Column::Id.is_in(chunk.iter().copied()))
            .and_where(still_due(db.get_database_backend()))
            .cond_where(
                sea_orm::Condition::any()
                    .add(deliveries::Column::LeaseExpiresAt.is_null())
                    .add(deliveries::Column::LeaseExpiresAt.lte(at)),
            )
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let rows = deliveries::Entity::update_many()
            .col_expr(deliveries::Column::LeaseOwner, Expr::value(worker))
            .col_expr(deliveries::Column::LeaseExpiresAt, Expr::value(expires))
            .filter(deliveries::Column::Id.in_subquery(still_free))
            .exec_with_returning(db)
            .await?;
        leased.extend(rows);
    }
    Ok(leased)
}

/// Leases up to `limits.batch` due deliveries of active webhooks, oldest due first, never more
/// than `per_webhook` in flight for one webhook across all processes (counted from live leases),
/// so a slow or failing webhook cannot take every slot. Deliveries this process has `answered`
/// do not count: their requests are over. On PostgreSQL, rows another process is
/// claiming are skipped (`FOR UPDATE SKIP LOCKED`); on SQLite, writers are serialised and the
/// conditional update does the same.
pub async fn claim(
    db: &DatabaseConnection,
    worker: &str,
    limits: &ClaimLimits,
    answered: &Answered,
    lanes: &Lanes,
) -> Result<Claim, DbErr> {
    let at = now();
    // The live leases' webhooks, counted here: with a GROUP BY webhook_id, SQLite walked a
    // webhook index over the whole log to avoid a sort (measured: delivery fell from 1,100 to
    // 270/s over five runs of 20,000 events), instead of the few live leases through their index.
    // Alone, every live lease is this process's own: its lanes and `answered` already know them.
    let stale = chrono::Duration::from_std(super::heartbeat::STALE).unwrap_or_default();
    let alone = app::db::workers::alone(db, worker, stale).await?;
    let leases: Vec<Uuid> = if alone {
        Vec::new()
    } else {
        deliveries::Entity::find()
            .select_only()
            .column(deliveries::Column::WebhookId)
            .filter(deliveries::Column::LeaseExpiresAt.gt(at))
            .into_tuple()
            .all(db)
            .await?
    };
    let mut in_flight: HashMap<Uuid, i64> = HashMap::new();
    for webhook_id in leases {
        *in_flight.entry(webhook_id).or_default() += 1;
    }
    // Read after the count, never before: one answered in between is subtracted from a lease
    // the count saw (right), one recorded in between is counted though its request is over (one
    // slot too few, for one claim). Read before, an attempt recorded in between would be
    // subtracted from a count that no longer held it, and the claim would pass the limit.
    for (webhook_id, n) in answered.counted_at(at) {
        if let Some(count) = in_flight.get_mut(&webhook_id) {
            *count = Ord::max(*count - n, 0);
        }
    }
    // Then this process's lanes (after `answered`: a request leaves its lane before it is
    // answered, so read in this order it is counted once or not at all, never twice). What
    // is left of the leases is other processes' requests in flight.
    let held = lanes.held();
    let mut others: HashMap<Uuid, usize> = HashMap::new();
    for (webhook_id, count) in &in_flight {
        let ours = held.get(webhook_id).map_or(0, |h| h.ready + h.running) as i64;
        others.insert(*webhook_id, Ord::max(count - ours, 0) as usize);
    }
    // A webhook whose last attempt failed gets one request at a time, and nothing leased ahead,
    // until one succeeds (a circuit breaker's half-open probe): failing webhooks, however many,
    // then hold one slot each of this process's `HERALD_MAX_IN_FLIGHT`, not their whole limit,
    // and the healthy ones keep theirs.
    // A webhook whose receiver asked Herald to wait gets nothing until then, and a rate-limited
    // one no more than its rate lets go within `flow::HORIZON`.
    let now_us = flow::micros(at);
    let want_of = |webhook_id: &Uuid, f: &WebhookFlow| {
        if f.paused_until.is_some_and(|until| until > at) || lanes.paused(webhook_id) {
            return 0;
        }
        let h = held.get(webhook_id).copied().unwrap_or_default();
        let others = others.get(webhook_id).copied().unwrap_or(0);
        let want = if f.ordered {
            // An ordered webhook's line is leased by one process at a time, a stretch from its
            // head, once nothing of it is leased anywhere (its last request is recorded).
            let leased = in_flight.get(webhook_id).copied().unwrap_or(0);
            if others + h.running + h.ready > 0 || leased > 0 {
                0
            } else {
                limits.prefetch.max(1)
            }
        } else {
            let (limit, prefetch) =
                if f.failing { (1, 0) } else { (limits.per_webhook, limits.prefetch.max(h.ahead)) };
            let free = limit.saturating_sub(others + h.running);
            if free == 0 && h.running == 0 {
                0 // other processes hold every slot: leasing ahead would only keep these from them
            } else {
                (free + prefetch).saturating_sub(h.ready)
            }
        };
        match f.rate(limits.default_rate) {
            Some(rate) => want.min(rate.room(f.rate_tat_us, now_us)),
            None => want,
        }
    };
    // Within what this process can send: a process never holds more leases than it can start
    // soon (another process counts them as requests in flight and would leave their webhook's
    // slots idle).
    // What a lane holds beyond its prefetch came from the hand-off, leased ahead only while
    // this process is alone (`Lanes::reserve`): it keeps no other process from those slots,
    // and must not take this claim's budget from other webhooks' retries and backlogs.
    let holding: usize = held.values().map(|h| h.ready.min(limits.prefetch) + h.running).sum();
    let ahead: usize = held.values().map(|h| h.ahead).sum();
    let budget = (limits.capacity + ahead).saturating_sub(holding);
    let (candidates, mut maybe_more) = due_candidates(db, want_of, budget, at, limits.default_rate).await?;
    let rates: HashMap<Uuid, flow::Rate> =
        candidates.iter().filter_map(|c| Some((c.webhook_id, c.rate?))).collect();

    // Each line's stretch, in order: what this claim leases of it must start at its head.
    let mut lines: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for c in candidates.iter().filter(|c| c.lined) {
        lines.entry(c.webhook_id).or_default().push(c.id);
    }
    // The lines first, then oldest due first across webhooks, each within its free slots.
    let mut by_timeout: HashMap<i32, Vec<Uuid>> = HashMap::new();
    let mut candidates = candidates.into_iter();
    for c in candidates.by_ref().take(limits.batch + ahead) {
        by_timeout.entry(c.timeout_ms).or_default().push(c.id);
    }
    maybe_more.extend(candidates.map(|c| c.webhook_id));
    let limited = |id: &Uuid| rates.contains_key(id);

    if by_timeout.is_empty() {
        return Ok(Claim { leased: Vec::new(), others, maybe_more, alone });
    }
    // One transaction for every lease statement: on SQLite a statement of its own is a commit
    // of its own, and a claim writes one per chunk (`statement_chunks`). On PostgreSQL it costs
    // two round trips a claim (closed loop measured the same: 2,464-2,567/s).
    let mut leased = Vec::new();
    let turn = app::db::sqlite_write_turn(db).await;
    let txn = app::db::begin_write(db).await?;
    for (timeout_ms, ids) in by_timeout {
        let expires = lease_expiry(at, timeout_ms, limits.lease_margin);
        leased.extend(lease(&txn, worker, &ids, expires, at).await?);
    }
    txn.commit().await?;
    drop(turn);
    if !lines.is_empty() {
        let broken = out_of_line(&lines, &leased);
        if !broken.is_empty() {
            release_ids(db, worker, broken.iter().copied().collect()).await?;
            leased.retain(|d| !broken.contains(&d.id));
        }
    }
    if leased.is_empty() {
        return Ok(Claim { leased: Vec::new(), others, maybe_more, alone });
    }

    let webhook_ids: HashSet<Uuid> = leased.iter().map(|d| d.webhook_id).collect();
    let webhooks: HashMap<Uuid, webhooks::Model> = webhooks::Entity::find()
        .filter(webhooks::Column::Id.is_in(webhook_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|w| (w.id, w))
        .collect();
    let mut event_ids: Vec<Uuid> = leased.iter().map(|d| d.event_id).collect();
    event_ids.sort_unstable();
    event_ids.dedup();
    let mut events: HashMap<Uuid, events::Model> = HashMap::with_capacity(event_ids.len());
    for chunk in app::db::statement_chunks(db.get_database_backend(), &event_ids) {
        let found =
            events::Entity::find().filter(events::Column::Id.is_in(chunk.iter().copied())).all(db).await?;
        events.extend(found.into_iter().map(|e| (e.id, e)));
    }
    let mut leased: Vec<Claimed> = leased
        .into_iter()
        .filter_map(|delivery| {
            let webhook = webhooks.get(&delivery.webhook_id)?.clone();
            let event = events.get(&delivery.event_id)?.clone();
            Some(Claimed { delivery, webhook, event, send_at: None, rate: None })
        })
        .collect();
    // Lines in their order, the rest oldest due first: the order the lanes send them in.
    leased.sort_by_key(|c| (c.place(), c.delivery.next_attempt_at));
    if leased.iter().any(|c| limited(&c.delivery.webhook_id)) {
        let unsendable = reserve_send_times(db, &mut leased, &rates, at).await?;
        if !unsendable.is_empty() {
            release_ids(db, worker, unsendable.iter().copied().collect()).await?;
            leased.retain(|c| !unsendable.contains(&c.delivery.id));
        }
    }
    Ok(Claim { leased, others, maybe_more, alone })
}

/// When a lease taken `at` for a request with this timeout expires: long enough for a delivery
/// leased ahead to wait its turn in its lane for about one request (a crash does not wait for
/// it: the heartbeat's takeover frees it in seconds).
pub fn lease_expiry(at: DateTime<Utc>, timeout_ms: i32, margin: chrono::Duration) -> DateTime<Utc> {
    let timeout = chrono::Duration::milliseconds(i64::from(timeout_ms));
    at + timeout + timeout + margin
}

/// Gives each leased delivery of a rate-limited webhook its send time, reserved across
/// processes, oldest due first. Answers the deliveries whose time came out later than their
/// lease allows (another process reserved meanwhile): their leases are to be released.
async fn reserve_send_times(
    db: &DatabaseConnection,
    leased: &mut [Claimed],
    rates: &HashMap<Uuid, flow::Rate>,
    at: DateTime<Utc>,
) -> Result<HashSet<Uuid>, DbErr> {
    let mut per_webhook: HashMap<Uuid, Vec<usize>> = HashMap::new();
    for (i, c) in leased.iter().enumerate() {
        if rates.contains_key(&c.delivery.webhook_id) {
            per_webhook.entry(c.delivery.webhook_id).or_default().push(i);
        }
    }
    let mut unsendable = HashSet::new();
    for (webhook, indexes) in per_webhook {
        let rate = rates[&webhook];
        // The clock now, not at the claim's start: a burst reserved "at the start" but sent
        // after the claim's statements would crowd the next second.
        let now_us = flow::micros(now());
        let times = flow::reserve(db, webhook, rate, indexes.len(), now_us).await?;
        let mut line_stops = false;
        for (i, t) in indexes.into_iter().zip(times) {
            let c = &mut leased[i];
            // The request must end within its lease (two timeouts and the margin from `at`).
            let latest = at + chrono::Duration::milliseconds(i64::from(c.webhook.timeout_ms));
            let send_at = flow::from_micros(t);
            // In a line, what comes after an unsendable delivery waits for it.
            if send_at > latest || line_stops {
                unsendable.insert(c.delivery.id);
                line_stops = c.place().is_some();
            }
            c.send_at = Some(send_at);
            c.rate = Some(rate);
        }
    }
    Ok(unsendable)
}

/// Gives back these leases of this process (deliveries it leased ahead for a webhook that was
/// deactivated or stopped meanwhile), so the sweep holds them at once.
pub async fn release_ids(db: &DatabaseConnection, worker: &str, ids: Vec<Uuid>) -> Result<u64, DbErr> {
    let mut released = 0;
    for chunk in app::db::statement_chunks(db.get_database_backend(), &ids) {
        let _turn = app::db::sqlite_write_turn(db).await;
        released += deliveries::Entity::update_many()
            .col_expr(deliveries::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(deliveries::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(deliveries::Column::Id.is_in(chunk.to_vec()))
            .filter(deliveries::Column::LeaseOwner.eq(worker))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(released)
}

/// A due delivery the claim may lease.
struct Candidate {
    id: Uuid,
    webhook_id: Uuid,
    next_attempt_at: DateTime<Utc>,
    timeout_ms: i32,
    rate: Option<flow::Rate>,
    /// Its webhook delivers in order: the candidate is part of a stretch from the line's head.
    lined: bool,
}

/// What the claim reads of a webhook's flow control.
struct WebhookFlow {
    /// Its last attempt failed.
    failing: bool,
    /// It delivers in order (one line, one request at a time).
    ordered: bool,
    paused_until: Option<DateTime<Utc>>,
    rate_limit: Option<i32>,
    rate_limit_burst: Option<i32>,
    rate_tat_us: i64,
}

impl WebhookFlow {
    fn rate(&self, default: Option<u32>) -> Option<flow::Rate> {
        flow::Rate::of(self.rate_limit, self.rate_limit_burst, default)
    }
}

/// Webhooks asked about in one statement of `due_candidates` (SQLite allows 500 arms in a
/// compound SELECT).
const WEBHOOKS_PER_STATEMENT: usize = 100;

/// Max-min fair shares of `budget` for these wants: each gets what it wants or an equal share of
/// what is left, whichever is less; what a small want leaves goes to the larger ones. Equal wants
/// are served from `rotate` on, so that when the budget is smaller than the number of wants the
/// same ones are not left out claim after claim.
fn fair_shares(wants: &[usize], budget: usize, rotate: usize) -> Vec<usize> {
    let n = wants.len();
    let start = rotate % n.max(1);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (wants[i], (i + n - start) % n));
    let mut shares = vec![0; n];
    let mut left = budget;
    for (k, &i) in order.iter().enumerate() {
        let give = wants[i].min(left / (n - k));
        shares[i] = give;
        left -= give;
    }
    shares
}

/// The due, unleased deliveries of every active webhook that `want`s any, at most that many
/// each, oldest due first. The work does not grow with the log or the backlog: only deliveries
/// with a `next_attempt_at` (pending or retrying; every other status clears it) are in the
/// partial index `idx_deliveries_scheduled` (webhook, next attempt). One walk of that index finds
/// the webhooks that have any (a loose index scan, one seek per webhook), then each webhook's
/// oldest due ones are read from its part of the index, skipping at most its leased ones. A
/// single ordered scan of all due deliveries would instead walk past every due delivery of a
/// saturated webhook (a backlog) to reach another webhook's.
async fn due_candidates(
    db: &DatabaseConnection,
    want: impl Fn(&Uuid, &WebhookFlow) -> usize,
    budget: usize,
    at: DateTime<Utc>,
    default_rate: Option<u32>,
) -> Result<(Vec<Candidate>, HashSet<Uuid>), DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let mut sql = SqlValues::new(backend);
    let active = sql.push(WebhookState::Active.as_str().into());
    let now = sql.push(at.into());
    let scheduled = format!(
        r#"WITH RECURSIVE scheduled(id) AS (
             SELECT * FROM (SELECT "webhook_id" FROM "deliveries" WHERE "next_attempt_at" IS NOT NULL
                            ORDER BY "webhook_id" LIMIT 1) AS first
             UNION ALL
             SELECT (SELECT d."webhook_id" FROM "deliveries" d
                     WHERE d."next_attempt_at" IS NOT NULL AND d."webhook_id" > scheduled.id
                     ORDER BY d."webhook_id" LIMIT 1)
             FROM scheduled WHERE scheduled.id IS NOT NULL)
           SELECT w."id", w."timeout_ms", COALESCE(u."consecutive_errors", 0) AS "failures",
                  w."rate_limit", w."rate_limit_burst", COALESCE(u."rate_tat_us", 0) AS "rate_tat_us",
                  u."paused_until", w."ordered_since"
           FROM scheduled JOIN "webhooks" w ON w."id" = scheduled.id
           LEFT JOIN "webhook_usage" u ON u."webhook_id" = w."id"
           WHERE w."state" = {active}
             AND EXISTS (SELECT 1 FROM "deliveries" d
                         WHERE d."webhook_id" = w."id" AND d."next_attempt_at" <= {now}
                           AND (d."lease_expires_at" IS NULL OR d."lease_expires_at" <= {now}))"#
    );
    let mut webhooks: Vec<(Uuid, i32, usize)> = Vec::new();
    let mut lines: Vec<(Uuid, i32, usize)> = Vec::new();
    let mut rates: HashMap<Uuid, flow::Rate> = HashMap::new();
    let mut maybe_more = HashSet::new();
    // Only webhooks with a delivery to lease now (one more seek each, through the same partial
    // index, past at most their requests in flight): a webhook whose deliveries are all
    // scheduled later, or all in flight, wants nothing. What each of the others wants is
    // shared out of the budget fairly (`fair_shares`), not first come first served: before,
    // 100 webhooks holding retries an hour away took the whole budget in every claim and a
    // webhook listed after them was never claimed for, so never got a lane for the hand-off
    // either (its deliveries waited for good; found with herald-bench's 1,000,000-row log).
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, scheduled, sql.values)).await?;
    let mut flows = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: Uuid = row.try_get("", "id")?;
        let failures: i32 = row.try_get("", "failures")?;
        let ordered_since: Option<DateTime<Utc>> = row.try_get("", "ordered_since")?;
        let flow = WebhookFlow {
            failing: failures > 0,
            ordered: ordered_since.is_some(),
            paused_until: row.try_get("", "paused_until")?,
            rate_limit: row.try_get("", "rate_limit")?,
            rate_limit_burst: row.try_get("", "rate_limit_burst")?,
            rate_tat_us: row.try_get("", "rate_tat_us")?,
        };
        let wanted = want(&id, &flow);
        flows.push((id, row.try_get::<i32>("", "timeout_ms")?, flow, wanted));
    }
    let wants: Vec<usize> = flows.iter().map(|(.., wanted)| *wanted).collect();
    let shares = fair_shares(&wants, budget, at.timestamp_subsec_micros() as usize);
    for ((id, timeout_ms, flow, wanted), free) in flows.into_iter().zip(shares) {
        // Every webhook here has a due delivery unleased: one that wants none now (its lane is
        // full) leaves them all in the database, so its backlog is not drained either. Taken for
        // drained, the hand-off let a new delivery go ahead of them (seen in 1 of 8 runs).
        if free < wanted.max(1) && !flow.ordered {
            maybe_more.insert(id);
        }
        if free > 0 {
            let wanted = (id, timeout_ms, free);
            if flow.ordered {
                lines.push(wanted)
            } else {
                webhooks.push(wanted)
            }
            if let Some(rate) = flow.rate(default_rate) {
                rates.insert(id, rate);
            }
        }
    }

    let mut candidates = Vec::new();
    for chunk in webhooks.chunks(WEBHOOKS_PER_STATEMENT) {
        let mut sql = SqlValues::new(backend);
        let now = sql.push(at.into());
        let arms: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, (webhook_id, _, free))| {
                let (webhook, limit) = (sql.push((*webhook_id).into()), sql.push((*free as i64).into()));
                format!(
                    r#"SELECT * FROM (SELECT "id", "webhook_id", "next_attempt_at" FROM "deliveries"
                         WHERE "webhook_id" = {webhook} AND "next_attempt_at" <= {now}
                           AND "status" IN ('pending', 'retrying')
                           AND ("lease_expires_at" IS NULL OR "lease_expires_at" <= {now})
                         ORDER BY "next_attempt_at" LIMIT {limit}) AS due{i}"#
                )
            })
            .collect();
        let statement = Statement::from_sql_and_values(backend, arms.join(" UNION ALL "), sql.values);
        let timeouts: HashMap<Uuid, i32> = chunk.iter().map(|(id, timeout, _)| (*id, *timeout)).collect();
        let mut read: HashMap<Uuid, usize> = HashMap::new();
        for row in db.query_all_raw(statement).await? {
            let webhook_id: Uuid = row.try_get("", "webhook_id")?;
            *read.entry(webhook_id).or_default() += 1;
            candidates.push(Candidate {
                id: row.try_get("", "id")?,
                webhook_id,
                next_attempt_at: row.try_get("", "next_attempt_at")?,
                timeout_ms: timeouts.get(&webhook_id).copied().unwrap_or(15_000),
                rate: rates.get(&webhook_id).copied(),
                lined: false,
            });
        }
        maybe_more
            .extend(chunk.iter().filter(|(id, _, free)| read.get(id) == Some(free)).map(|(id, ..)| *id));
    }
    candidates.sort_by_key(|c| c.next_attempt_at);
    // The lines first (a few deliveries each), each in its order.
    let mut lined = Vec::new();
    for (webhook_id, timeout_ms, free) in lines {
        for (id, next_attempt_at) in line_stretch(db, webhook_id, free, at).await? {
            let rate = rates.get(&webhook_id).copied();
            lined.push(Candidate { id, webhook_id, next_attempt_at, timeout_ms, rate, lined: true });
        }
    }
    lined.extend(candidates);
    Ok((lined, maybe_more))
}

/// The stretch of an ordered webhook's line that may go now: from its head, at most `limit`
/// deliveries, up to the first one not due or leased. Nothing while the line is blocked by a
/// failed delivery, read in the same statement as the line, so that a failure recorded
/// meanwhile is never missed (its delivery would have left the line and let the next one go).
async fn line_stretch(
    db: &DatabaseConnection,
    webhook_id: Uuid,
    limit: usize,
    at: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let mut sql = SqlValues::new(backend);
    let (webhook, limit) = (sql.push(webhook_id.into()), sql.push((limit as i64).into()));
    let statement = format!(
        r#"SELECT d."id", d."next_attempt_at", d."lease_expires_at" FROM "deliveries" d
           WHERE d."webhook_id" = {webhook} AND d."line_seq" IS NOT NULL AND d."next_attempt_at" IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM "webhook_usage" u JOIN "deliveries" b ON b."id" = u."line_blocked_by"
                             WHERE u."webhook_id" = {webhook} AND b."status" = 'failed')
           ORDER BY d."line_seq" LIMIT {limit}"#
    );
    let mut stretch = Vec::new();
    for row in db.query_all_raw(Statement::from_sql_and_values(backend, statement, sql.values)).await? {
        let next_attempt_at: DateTime<Utc> = row.try_get("", "next_attempt_at")?;
        let lease: Option<DateTime<Utc>> = row.try_get("", "lease_expires_at")?;
        if next_attempt_at > at || lease.is_some_and(|l| l > at) {
            break;
        }
        stretch.push((row.try_get("", "id")?, next_attempt_at));
    }
    Ok(stretch)
}

/// Values bound to a hand-written statement, with the placeholder each backend expects.
pub(super) struct SqlValues {
    backend: sea_orm::DbBackend,
    pub(super) values: Vec<sea_orm::Value>,
}

impl SqlValues {
    pub(super) fn new(backend: sea_orm::DbBackend) -> Self {
        SqlValues { backend, values: Vec::new() }
    }

    /// Binds a value; returns its placeholder, numbered (`$3`, `?3`) so that it may appear
    /// more than once in the statement.
    pub(super) fn push(&mut self, value: sea_orm::Value) -> String {
        self.values.push(value);
        match self.backend {
            sea_orm::DbBackend::Postgres => format!("${}", self.values.len()),
            _ => format!("?{}", self.values.len()),
        }
    }
}

/// A webhook this attempt deactivated, for logging.
pub struct Deactivated {
    pub webhook_id: Uuid,
    pub webhook: String,
    pub reason: String,
    pub held: u64,
}

/// A request that went out, and what the policy decided after it: one attempt to record.
#[derive(Debug)]
pub struct Attempted {
    pub claimed: Claimed,
    pub sent: Sent,
    pub decision: Decision,
    /// The receiver asked Herald to leave the whole webhook alone until then, and why.
    pub pause: Option<(DateTime<Utc>, String)>,
    /// Told whether the attempt was recorded (a delivery of an ordered webhook waits for it).
    pub recorded: Option<tokio::sync::oneshot::Sender<bool>>,
}

/// Records a batch of attempts and applies their decisions in one transaction: the attempt rows
/// (multi-row inserts), each delivery's new state and lease release, one usage update per
/// webhook, and any deactivation. One commit for the whole batch is what lets the engine keep up
/// with the receivers: per attempt, the commit was most of the cost. Returns the deactivations
/// the batch caused.
pub async fn record(
    db: &DatabaseConnection,
    worker: &str,
    notices: &Notices,
    batch: &[Attempted],
) -> Result<Vec<Deactivated>, DbErr> {
    let at = now();
    let txn = app::db::begin_write(db).await?;
    let rows: Vec<attempts::ActiveModel> = batch.iter().map(|a| attempt_row(worker, a)).collect();
    for chunk in app::db::statement_chunks(db.get_database_backend(), &rows) {
        attempts::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
    }
    for chunk in app::db::statement_chunks(db.get_database_backend(), batch) {
        update_deliveries(&txn, chunk, at).await?;
    }
    let changes = usage_changes(batch);
    // The usage before this batch, in the same transaction: what tells a webhook that starts
    // failing or recovers from one that goes on as it was.
    let before: HashMap<Uuid, webhook_usage::Model> = webhook_usage::Entity::find()
        .filter(webhook_usage::Column::WebhookId.is_in(changes.iter().map(|(id, _)| *id)))
        .all(&txn)
        .await?
        .into_iter()
        .map(|u| (u.webhook_id, u))
        .collect();
    for (webhook_id, change) in &changes {
        change.apply(&txn, *webhook_id).await?;
    }
    // A webhook this batch deactivates is not also announced as failing: the deactivation
    // (its email and event) says more.
    let deactivating: Vec<Uuid> =
        batch.iter().filter(|a| a.decision.deactivate.is_some()).map(|a| a.claimed.webhook.id).collect();
    for (webhook_id, change) in &changes {
        let webhook = batch.iter().map(|a| &a.claimed.webhook).find(|w| w.id == *webhook_id);
        if let (Some(webhook), Some(before)) = (webhook, before.get(webhook_id)) {
            let deactivated = deactivating.contains(webhook_id);
            notices.transitions(&txn, webhook, before, change, deactivated, at).await?;
        }
    }
    let mut deactivated = Vec::new();
    for a in batch {
        if let Some(reason) = &a.decision.deactivate {
            deactivated.extend(deactivate(&txn, notices, &a.claimed, reason, &a.sent, at).await?);
        }
    }
    txn.commit().await?;
    Ok(deactivated)
}

/// Who hears about a webhook's failures beyond the activity log, and where they are sent to look.
#[derive(Clone, Debug)]
pub struct Notices {
    /// The admin app's address (`HERALD_PUBLIC_URL`), without a trailing `/`.
    pub public_url: Option<String>,
    /// At most one "failing" email per webhook in this long.
    pub failing_interval: chrono::Duration,
}

impl Notices {
    /// Where a person looks at this webhook in the admin app.
    pub fn webhook_link(&self, id: Uuid) -> String {
        format!("{}/webhooks/{id}", self.public_url.as_deref().unwrap_or_default())
    }

    /// A webhook that starts failing (a failure after a success, or its first attempts failing)
    /// or recovers (a success after failures) emits `webhook.failing` or `webhook.recovered`
    /// once per transition, not per attempt; "failing" also emails the webhook's notification
    /// addresses when it asks for that, at most once per `failing_interval`.
    async fn transitions(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        w: &webhooks::Model,
        before: &webhook_usage::Model,
        change: &UsageChange,
        deactivated: bool,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let was_failing = before.consecutive_errors > 0;
        let (streak, failing_since) = match change.since_success {
            Some((n, first)) => (i64::from(n), first),
            None => (
                i64::from(before.consecutive_errors) + change.errors,
                before.first_failure_at.or(change.first_failure_at),
            ),
        };
        let succeeded = change.since_success.is_some();
        let shown_url = app::models::redact_url_credentials(&w.url);
        if succeeded && was_failing {
            let payload = serde_json::json!({
                "webhook_id": w.id,
                "name": w.name,
                "url": shown_url,
                "recovered_at": change.last_success_at.unwrap_or(at),
                "failed_attempts": before.consecutive_errors,
                "failing_since": before.first_failure_at,
                "admin_url": self.webhook_link(w.id),
            });
            operational_event(txn, "webhook.recovered", w.id, payload, at).await?;
        }
        if streak > 0 && (!was_failing || succeeded) && !deactivated {
            let last_error = change.last_error.as_ref().map(|(e, _)| e.clone());
            let payload = serde_json::json!({
                "webhook_id": w.id,
                "name": w.name,
                "url": shown_url,
                "failing_since": failing_since,
                "consecutive_errors": streak,
                "last_error": last_error,
                "admin_url": self.webhook_link(w.id),
            });
            operational_event(txn, "webhook.failing", w.id, payload, at).await?;
            let recipients = app::db::webhooks::notify_emails_of(w);
            let quiet = before.failing_notified_at.is_none_or(|t| t <= at - self.failing_interval);
            if w.notify_on_failing && !recipients.is_empty() && quiet {
                let subject = format!("Herald: webhook \"{}\" is failing", w.name);
                let body = format!(
                    "Herald's requests to the webhook \"{name}\" ({url}) started failing at {since}.\n\n\
                     Last error: {error}.\n\n\
                     Herald retries on its schedule; if the last attempt fails too, the webhook is \
                     deactivated and you will hear again. See its deliveries: {link}\n\n\
                     You get at most one such email per {minutes} minutes for this webhook.\n",
                    name = w.name,
                    url = shown_url,
                    since = failing_since.unwrap_or(at).to_rfc3339(),
                    error = last_error.as_deref().unwrap_or("none recorded"),
                    link = self.webhook_link(w.id),
                    minutes = self.failing_interval.num_minutes(),
                );
                for to in &recipients {
                    outbox::enqueue(txn, to, &subject, &body).await?;
                }
                webhook_usage::Entity::update_many()
                    .col_expr(webhook_usage::Column::FailingNotifiedAt, Expr::value(at))
                    .filter(webhook_usage::Column::WebhookId.eq(w.id))
                    .exec(txn)
                    .await?;
            }
        }
        Ok(())
    }
}

/// An event Herald emits about itself, delivered to the webhooks subscribed to its type.
async fn operational_event(
    txn: &sea_orm::DatabaseTransaction,
    event_type: &str,
    webhook_id: Uuid,
    payload: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let event = event_store::NewEvent {
        event_type: event_type.into(),
        payload: payload.to_string(),
        idempotency_key: Some(format!("{event_type}:{webhook_id}:{}", at.timestamp_micros())),
    };
    event_store::ingest(txn, event).await.map(|_| ())
}

/// Gives every delivery of the chunk its new state and releases its lease, in one statement
/// (`UPDATE ... FROM (VALUES ...)`, SQLite 3.33+ and PostgreSQL; both name the VALUES columns
/// column1, column2, ...).
async fn update_deliveries(
    txn: &sea_orm::DatabaseTransaction,
    chunk: &[Attempted],
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    use sea_orm::{ConnectionTrait, Statement, Value};
    let backend = txn.get_database_backend();
    let mut sql = SqlValues::new(backend);
    let mut placeholder = |v: Value| sql.push(v);
    let updated_at = placeholder(at.into());
    let rows: Vec<String> = chunk
        .iter()
        .map(|a| {
            let (d, sent, decision) = (&a.claimed.delivery, &a.sent, &a.decision);
            let cells = [
                d.id.into(),
                decision.status.as_str().into(),
                decision.retry_slot.into(),
                decision.quick_retry_count.into(),
                decision.next_attempt_at.into(),
                sent.started_at.into(),
                status_code(sent).into(),
                sent.outcome.as_str().into(),
                sent.duration_ms.into(),
            ]
            .map(&mut placeholder);
            format!("({})", cells.join(", "))
        })
        .collect();
    let statement = format!(
        r#"UPDATE "deliveries" SET "status" = v.column2, "attempt_count" = "attempt_count" + 1,
             "retry_slot" = v.column3, "quick_retry_count" = v.column4, "next_attempt_at" = v.column5,
             "last_attempt_at" = v.column6, "last_response_code" = v.column7, "last_outcome" = v.column8,
             "last_duration_ms" = v.column9, "lease_owner" = NULL, "lease_expires_at" = NULL,
             "pending_trigger" = NULL, "updated_at" = {updated_at}
           FROM (VALUES {}) AS v WHERE "deliveries"."id" = v.column1"#,
        rows.join(", ")
    );
    txn.execute_raw(Statement::from_sql_and_values(backend, statement, sql.values)).await?;
    Ok(())
}

fn status_code(sent: &Sent) -> Option<i32> {
    sent.response.as_ref().map(|r| i32::from(r.status))
}

fn attempt_row(worker: &str, a: &Attempted) -> attempts::ActiveModel {
    let (d, sent) = (&a.claimed.delivery, &a.sent);
    let json = |m: &std::collections::BTreeMap<String, String>| serde_json::to_string(m).unwrap_or_default();
    attempts::ActiveModel {
        id: Set(Uuid::now_v7()),
        delivery_id: Set(d.id),
        webhook_id: Set(d.webhook_id),
        attempt_number: Set(d.attempt_count + 1),
        trigger: Set(a.claimed.trigger()),
        started_at: Set(sent.started_at),
        duration_ms: Set(sent.duration_ms),
        request_url: Set(sent.url.clone()),
        request_method: Set("POST".into()),
        request_headers: Set(json(&sent.request_headers)),
        request_body: Set(Some(sent.body.clone())),
        response_status: Set(status_code(sent)),
        response_headers: Set(sent.response.as_ref().map(|r| json(&r.headers))),
        response_body: Set(sent.response.as_ref().map(|r| r.body.clone())),
        response_body_truncated: Set(sent.response.as_ref().is_some_and(|r| r.truncated)),
        outcome: Set(sent.outcome),
        error: Set(sent.error.clone()),
        sent_by: Set(Some(worker.to_owned())),
    }
}

/// What a run of attempts to one webhook, in the order they finished, changes in its usage row.
#[derive(Clone, Debug, Default, PartialEq)]
struct UsageChange {
    calls: i64,
    errors: i64,
    /// Set when an attempt succeeded: the failures after the last success, which become the
    /// consecutive-error count, and the first of them, which becomes the first failure.
    since_success: Option<(i32, Option<DateTime<Utc>>)>,
    last_success_at: Option<DateTime<Utc>>,
    /// The first failure of the batch, when no attempt succeeded: it starts the failure streak
    /// unless one was already running.
    first_failure_at: Option<DateTime<Utc>>,
    last_error: Option<(String, DateTime<Utc>)>,
    /// The latest pause the receiver asked for in this batch.
    pause: Option<(DateTime<Utc>, String)>,
    /// A delivery of an ordered webhook that ended failed: it blocks the line behind it.
    blocked_by: Option<Uuid>,
}

impl UsageChange {
    fn add(&mut self, sent: &Sent) {
        self.calls += 1;
        if sent.outcome == app::models::Outcome::Success {
            self.since_success = Some((0, None));
            self.last_success_at = Some(sent.started_at);
            return;
        }
        self.errors += 1;
        self.last_error = Some((describe_error(sent), sent.started_at));
        match &mut self.since_success {
            Some((n, first)) => {
                *n += 1;
                first.get_or_insert(sent.started_at);
            }
            None => {
                self.first_failure_at.get_or_insert(sent.started_at);
            }
        }
    }

    async fn apply(&self, txn: &sea_orm::DatabaseTransaction, webhook_id: Uuid) -> Result<(), DbErr> {
        use webhook_usage::Column as C;
        let mut update = webhook_usage::Entity::update_many()
            .col_expr(C::TotalCalls, Expr::col(C::TotalCalls).add(self.calls))
            .col_expr(C::TotalErrors, Expr::col(C::TotalErrors).add(self.errors))
            .filter(C::WebhookId.eq(webhook_id));
        update = match self.since_success {
            Some((failures, first_failure)) => update
                .col_expr(C::ConsecutiveErrors, Expr::value(failures))
                .col_expr(C::LastSuccessAt, Expr::value(self.last_success_at))
                .col_expr(C::FirstFailureAt, Expr::value(first_failure)),
            None => update
                .col_expr(C::ConsecutiveErrors, Expr::col(C::ConsecutiveErrors).add(self.errors))
                .col_expr(
                    C::FirstFailureAt,
                    Expr::expr(Func::coalesce([
                        Expr::col(C::FirstFailureAt),
                        Expr::value(self.first_failure_at),
                    ])),
                ),
        };
        if let Some((error, at)) = &self.last_error {
            update = update
                .col_expr(C::LastError, Expr::value(error.clone()))
                .col_expr(C::LastErrorAt, Expr::value(*at));
        }
        if let Some(delivery) = self.blocked_by {
            update = update.col_expr(C::LineBlockedBy, Expr::value(delivery));
        }
        if let Some((until, reason)) = &self.pause {
            update = update
                .col_expr(C::PausedUntil, Expr::value(*until))
                .col_expr(C::PauseReason, Expr::value(reason.clone()));
        }
        update.exec(txn).await?;
        Ok(())
    }
}

/// One usage change per webhook, by webhook id: every transaction that updates several usage
/// rows (this one, and storing events for ordered webhooks) locks them in that order, so none
/// waits for another crosswise (a deadlock on PostgreSQL).
fn usage_changes(batch: &[Attempted]) -> Vec<(Uuid, UsageChange)> {
    let mut changes: Vec<(Uuid, UsageChange)> = Vec::new();
    for a in batch {
        let webhook_id = a.claimed.delivery.webhook_id;
        let i = match changes.iter().position(|(id, _)| *id == webhook_id) {
            Some(i) => i,
            None => {
                changes.push((webhook_id, UsageChange::default()));
                changes.len() - 1
            }
        };
        changes[i].1.add(&a.sent);
        if a.claimed.place().is_some() && a.decision.status == DeliveryStatus::Failed {
            changes[i].1.blocked_by = Some(a.claimed.delivery.id);
        }
        if let Some(pause) = &a.pause {
            if changes[i].1.pause.as_ref().is_none_or(|(until, _)| *until < pause.0) {
                changes[i].1.pause = Some(pause.clone());
            }
        }
    }
    changes.sort_by_key(|(id, _)| *id);
    changes
}

/// The usage row's `last_error`, in words a person reads (the webhook's page, the dashboard, the
/// `webhook.failing` event): "HTTP 503", "Connection refused", "Timed out: …".
fn describe_error(sent: &Sent) -> String {
    use app::models::Outcome;
    if let Some(r) = &sent.response {
        return format!("HTTP {}", r.status);
    }
    let error = sent.error.as_deref().unwrap_or_default();
    let lower = error.to_ascii_lowercase();
    let what = match sent.outcome {
        Outcome::ConnectError if lower.contains("connection refused") => return "Connection refused".into(),
        Outcome::ConnectError if lower.contains("dns error") || lower.contains("failed to lookup") => {
            return format!("DNS lookup failed: {error}");
        }
        Outcome::ConnectError => "Could not connect",
        Outcome::Timeout => "Timed out",
        Outcome::TlsError => "TLS handshake failed",
        Outcome::Blocked => "Blocked destination",
        other => other.as_str(),
    };
    if error.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {error}")
    }
}

/// Moves an active webhook to `too_many_errors`, holds its queue, and tells people: an activity
/// log line, an email to every API user, and a `webhook.deactivated` event.
async fn deactivate(
    txn: &sea_orm::DatabaseTransaction,
    notices: &Notices,
    claimed: &Claimed,
    reason: &str,
    sent: &Sent,
    at: DateTime<Utc>,
) -> Result<Option<Deactivated>, DbErr> {
    let w = &claimed.webhook;
    let shown_url = app::models::redact_url_credentials(&w.url);
    let changed = webhooks::Entity::update_many()
        .col_expr(webhooks::Column::State, Expr::value(WebhookState::TooManyErrors.as_str()))
        .col_expr(webhooks::Column::DeactivatedAt, Expr::value(at))
        .col_expr(webhooks::Column::UpdatedAt, Expr::value(at))
        .filter(webhooks::Column::Id.eq(w.id))
        .filter(webhooks::Column::State.eq(WebhookState::Active))
        .exec(txn)
        .await?
        .rows_affected;
    if changed == 0 {
        return Ok(None); // stopped or deactivated meanwhile: someone else told people
    }
    let held = app::db::webhooks::hold_queue(txn, app::models::WebhookId(w.id), at).await?;
    let last_error =
        sent.error.clone().or_else(|| sent.response.as_ref().map(|r| format!("HTTP {}", r.status)));
    activity::record(
        txn,
        activity::Activity {
            actor: Some("engine"),
            kind: "webhook.deactivated",
            subject: Some(w.name.clone()),
            summary: format!("Webhook {} deactivated: {reason}; {held} queued deliveries held", w.name),
        },
    )
    .await?;

    let subject = format!("Herald: webhook \"{}\" was deactivated", w.name);
    let body = format!(
        "Herald stopped delivering to the webhook \"{name}\" ({url}) at {at}.\n\n\
         Reason: {reason}.\nLast error: {error}.\n\n\
         New events for it are kept as held deliveries ({held} were queued). Once the destination \
         works again, reactivate the webhook in Herald's admin app or with\n\
         POST /api/v1/webhooks/{id}/reactivate {{\"recover_since\": \"<time of the first failure>\"}}\n\
         to send what was held or failed since then.\n\nThe webhook in the admin app: {link}\n",
        name = w.name,
        url = shown_url,
        at = at.to_rfc3339(),
        error = last_error.as_deref().unwrap_or("none recorded"),
        id = w.id,
        link = notices.webhook_link(w.id),
    );
    let api_users = users::Entity::find()
        .filter(users::Column::Role.eq(Role::ApiUser))
        .filter(users::Column::DisabledAt.is_null())
        .all(txn)
        .await?;
    // Every API user, and the webhook's own notification addresses: each address once.
    let mut recipients: Vec<String> = api_users.iter().map(|u| u.email.clone()).collect();
    for email in app::db::webhooks::notify_emails_of(w) {
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&email)) {
            recipients.push(email);
        }
    }
    for to in &recipients {
        outbox::enqueue(txn, to, &subject, &body).await?;
    }

    let payload = serde_json::json!({
        "webhook_id": w.id,
        "name": w.name,
        "url": shown_url,
        "reason": reason,
        "last_error": last_error,
        "deactivated_at": at,
        "held_deliveries": held,
        "admin_url": notices.webhook_link(w.id),
    });
    let event = event_store::NewEvent {
        event_type: "webhook.deactivated".into(),
        payload: payload.to_string(),
        idempotency_key: Some(format!("webhook.deactivated:{}:{}", w.id, at.timestamp_micros())),
    };
    event_store::ingest(txn, event).await?;
    Ok(Some(Deactivated { webhook_id: w.id, webhook: w.name.clone(), reason: reason.to_owned(), held }))
}

/// Holds due deliveries of webhooks that are not active. Stopping or deactivating a webhook
/// holds its queue in the same transaction, but an event committed concurrently (on PostgreSQL,
/// its transaction read the webhook just before it changed) can still leave one pending; this
/// sweep, run by the engine every second, puts those where they belong. Answers how many it held
/// and the webhooks that are not active (for the engine's lanes).
pub async fn hold_inactive(db: &DatabaseConnection) -> Result<(u64, Vec<Uuid>), DbErr> {
    let inactive: Vec<Uuid> = webhooks::Entity::find()
        .select_only()
        .column(webhooks::Column::Id)
        .filter(webhooks::Column::State.ne(WebhookState::Active))
        .into_tuple()
        .all(db)
        .await?;
    if inactive.is_empty() {
        return Ok((0, inactive)); // the common case: no statement over deliveries at all
    }
    Ok((hold_due_of_inactive(db).await?, inactive))
}

/// The sweep's write: holds the due, unleased deliveries of the webhooks that are not active
/// when it runs. It takes no list read earlier: a webhook reactivated since (its recovered
/// deliveries pending again) would have them held once more, for good. The statement reads the
/// states it acts on.
pub async fn hold_due_of_inactive(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let at = now();
    let _turn = app::db::sqlite_write_turn(db).await;
    let held = deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Status, Expr::value(DeliveryStatus::Held.as_str()))
        .col_expr(deliveries::Column::NextAttemptAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(deliveries::Column::UpdatedAt, Expr::value(at))
        .filter(deliveries::Column::Status.is_in(DUE))
        .filter(
            sea_orm::Condition::any()
                .add(deliveries::Column::LeaseExpiresAt.is_null())
                .add(deliveries::Column::LeaseExpiresAt.lte(at)),
        )
        .filter(
            deliveries::Column::WebhookId.in_subquery(
                Query::select()
                    .column(webhooks::Column::Id)
                    .from(webhooks::Entity)
                    .and_where(webhooks::Column::State.ne(WebhookState::Active))
                    .to_owned(),
            ),
        )
        .exec(db)
        .await?
        .rows_affected;
    Ok(held)
}

/// Events stored while a webhook's ordering was being switched on (on PostgreSQL, their
/// transaction read the webhook just before) left deliveries without a place in its line,
/// which nothing would send. For two minutes after the switch, this sweep (every second, with
/// the one above) gives them their places; later there can be none.
pub async fn place_newly_ordered(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let recent: Vec<Uuid> = webhooks::Entity::find()
        .select_only()
        .column(webhooks::Column::Id)
        .filter(webhooks::Column::OrderedSince.gt(now() - chrono::Duration::minutes(2)))
        .into_tuple()
        .all(db)
        .await?;
    let mut placed = 0;
    for webhook_id in recent {
        // A read first: on SQLite a write transaction takes the database's one write lock, every
        // second for two minutes, for what is almost always nothing.
        if app::db::lines::unplaced(db, webhook_id).await? == 0 {
            continue;
        }
        let _turn = app::db::sqlite_write_turn(db).await;
        let txn = app::db::begin_write(db).await?;
        placed += app::db::lines::number_unplaced(&txn, webhook_id).await?;
        txn.commit().await?;
    }
    Ok(placed)
}

/// Gives back the claims of this process (on shutdown, for requests that did not finish), so
/// another process or the next start sends them without waiting for the lease to expire.
pub async fn release(db: &DatabaseConnection, worker: &str) -> Result<u64, DbErr> {
    Ok(deliveries::Entity::update_many()
        .col_expr(deliveries::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(deliveries::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(deliveries::Column::LeaseOwner.eq(worker))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use app::models::Outcome;

    use super::*;

    fn sent(outcome: Outcome, second: u32) -> Sent {
        Sent {
            started_at: DateTime::from_timestamp(1_800_000_000 + i64::from(second), 0).unwrap(),
            duration_ms: 5,
            url: "http://127.0.0.1/hook".into(),
            request_headers: Default::default(),
            body: "{}".into(),
            response: None,
            outcome,
            error: (outcome != Outcome::Success).then(|| "refused".into()),
            retry_after: None,
        }
    }

    fn change(attempts: &[Sent]) -> UsageChange {
        let mut change = UsageChange::default();
        attempts.iter().for_each(|s| change.add(s));
        change
    }

    #[test]
    fn the_claim_budget_is_shared_fairly() {
        use super::fair_shares;
        // One webhook alone gets what it wants, within the budget.
        assert_eq!(fair_shares(&[64], 256, 0), [64]);
        assert_eq!(fair_shares(&[64], 40, 0), [40]);
        // Small wants are met; what they leave goes to the larger ones, equally.
        let shares = fair_shares(&[64, 2, 64, 64, 64], 100, 0);
        assert_eq!(shares[1], 2);
        assert!(shares.iter().sum::<usize>() <= 100 && shares.iter().sum::<usize>() >= 97, "{shares:?}");
        assert!(shares.iter().filter(|s| **s >= 24).count() == 4, "{shares:?}");
        // A webhook listed after many that want as much still gets its share.
        let mut wants = vec![64; 100];
        wants.push(64);
        let shares = fair_shares(&wants, 256, 0);
        assert!(shares[100] >= 2, "{:?}", &shares[95..]);
        // With fewer slots than webhooks, who is left out changes from claim to claim.
        let wants = vec![10; 8];
        let left_out = |rotate| {
            fair_shares(&wants, 4, rotate)
                .iter()
                .enumerate()
                .filter(|(_, s)| **s == 0)
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        assert_eq!(fair_shares(&wants, 4, 0).iter().sum::<usize>(), 4);
        assert_ne!(left_out(0), left_out(3));
    }

    #[test]
    fn failures_only_extend_the_streak_and_start_it_at_the_first() {
        let c = change(&[sent(Outcome::ConnectError, 1), sent(Outcome::Timeout, 2)]);
        assert_eq!((c.calls, c.errors, c.since_success), (2, 2, None));
        assert_eq!(c.first_failure_at, Some(sent(Outcome::Timeout, 1).started_at));
        assert_eq!(c.last_error, Some(("Timed out: refused".into(), sent(Outcome::Timeout, 2).started_at)));
    }

    #[test]
    fn last_errors_read_as_words() {
        let mut refused = sent(Outcome::ConnectError, 1);
        refused.error =
            Some("error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)".into());
        assert_eq!(describe_error(&refused), "Connection refused");
        let mut answered = sent(Outcome::ServerError, 1);
        answered.response = Some(super::super::dispatch::Response {
            status: 503,
            headers: Default::default(),
            body: String::new(),
            truncated: false,
        });
        assert_eq!(describe_error(&answered), "HTTP 503");
        assert_eq!(describe_error(&sent(Outcome::TlsError, 1)), "TLS handshake failed: refused");
    }

    #[test]
    fn a_success_resets_the_streak_to_the_failures_after_it() {
        let c = change(&[
            sent(Outcome::ConnectError, 1),
            sent(Outcome::Success, 2),
            sent(Outcome::ConnectError, 3),
            sent(Outcome::ConnectError, 4),
        ]);
        assert_eq!((c.calls, c.errors), (4, 3));
        assert_eq!(c.since_success, Some((2, Some(sent(Outcome::Success, 3).started_at))));
        assert_eq!(c.last_success_at, Some(sent(Outcome::Success, 2).started_at));

        let c = change(&[sent(Outcome::ConnectError, 1), sent(Outcome::Success, 2)]);
        assert_eq!(c.since_success, Some((0, None)));
    }
}
