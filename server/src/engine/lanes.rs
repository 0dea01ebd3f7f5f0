//! This process's deliveries per webhook: those leased and waiting their turn (ready), and the
//! requests in flight (running). A request that ends hands its webhook slot straight to the next
//! ready delivery of the same webhook, with no database round trip in between: the number of
//! requests in flight to that webhook stays what it was, so the limit holds, and the claim (a
//! few statements) serves many deliveries instead of one or two. The claim keeps each lane
//! topped up to `prefetch` ready deliveries while the webhook has a slot.
//!
//! New deliveries also arrive straight from the ingest (the hand-off): a lane takes them, leased
//! in the transaction that stores them, while its webhook is healthy, its count of other
//! processes' requests is fresh, and nothing older of it waits in the database (`backlog`):
//! the claim then only drains backlogs and retries, oldest first.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Mutex,
    time::Instant,
};

use uuid::Uuid;

use super::store::Claimed;

#[derive(Debug, Default)]
pub struct Lanes {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    lanes: HashMap<Uuid, Lane>,
    /// Webhooks that are not active: nothing of theirs starts.
    inactive: HashSet<Uuid>,
    /// Webhooks whose receiver asked Herald to wait: nothing of theirs starts before then.
    pauses: HashMap<Uuid, Pause>,
    /// Whether any lane has a `backlog`: read after every request and every recorded batch, so
    /// kept here (a lane's backlog is set by `reserve` and `fill`, cleared only by `fill`, which
    /// goes over every lane anyway) rather than found by going over the lanes each time.
    any_backlog: bool,
    /// No other process is alive and no webhook is ordered, as the last claim found: the
    /// hand-off may lease further ahead (`reserve`).
    alone: bool,
}

#[derive(Debug, Clone, Copy)]
struct Pause {
    until: Instant,
    /// 429s without `Retry-After` in a row (each one doubles the next pause).
    throttled: u32,
}

#[derive(Debug, Default)]
struct Lane {
    ready: VecDeque<Claimed>,
    running: usize,
    /// Deliveries the ingest is storing for this lane (the hand-off), not committed yet.
    reserved: usize,
    /// Due deliveries of this webhook may wait unleased in the database: the claim takes them
    /// before the hand-off takes anything newer.
    backlog: bool,
    /// When the hand-off last left deliveries to the database (a claim that began before
    /// then cannot tell that they are drained).
    refused_at: Option<Instant>,
    /// When a claim last counted the other processes' requests.
    counted_at: Option<Instant>,
    /// When a delivery last arrived, started or finished here: an idle lane is kept for a while
    /// (`KEPT`), so the hand-off can serve a webhook whose events come one at a time.
    used_at: Option<Instant>,
    /// Requests in flight to this webhook from other processes, as the last claim counted them.
    others: usize,
    /// The last request to this webhook failed: one request at a time until one succeeds.
    failing: bool,
    /// The webhook delivers in order: one request at a time, each only once the one before it
    /// succeeded and was recorded; after a failure, what waits here goes back to the line.
    ordered: bool,
    /// Requests finished since `rate_since`, and the rate they last made (per second): how
    /// deep the hand-off fills this lane.
    finished: u32,
    rate_since: Option<Instant>,
    rate: f64,
}

impl Lane {
    /// How many deliveries this lane may hold ready beyond its webhook's limit at its recent
    /// rate, while the process is alone.
    fn ahead(&self, alone: bool) -> usize {
        if alone {
            ((self.rate * AHEAD) as usize).min(MOST_AHEAD)
        } else {
            0
        }
    }
}

/// How long an idle lane is kept.
const KEPT: std::time::Duration = std::time::Duration::from_secs(10);
/// How old a lane's count of other processes' requests may be for the hand-off to fill it.
const FRESH: std::time::Duration = std::time::Duration::from_secs(2);
/// While this process is alone, the hand-off leases ahead what its webhook takes in this long
/// (at its recent rate), at most `MOST_AHEAD`: enough that new deliveries keep coming by the
/// hand-off while the receiver keeps pace, little enough that they are sent long before their
/// leases run out.
const AHEAD: f64 = 0.5;
const MOST_AHEAD: usize = 512;

/// What a claim counted, for the lanes: other processes' requests in flight per webhook, the
/// webhooks that may have due deliveries it did not read, and when it began.
pub struct Counted<'a> {
    pub others: &'a HashMap<Uuid, usize>,
    pub maybe_more: &'a HashSet<Uuid>,
    pub started: Instant,
    pub alone: bool,
}

/// What this process holds of one webhook, for the claim.
#[derive(Clone, Copy, Debug, Default)]
pub struct Held {
    pub ready: usize,
    pub running: usize,
    /// While this process is alone, how far the claim may lease ahead: half of what the
    /// hand-off may (`AHEAD`), so that, once a backlog is drained, the lane has room for what
    /// the hand-off brings; as much as the hand-off while the lane has a backlog (the hand-off
    /// then takes nothing). 0 with other processes.
    pub ahead: usize,
}

impl Lanes {
    /// Per webhook, the ready and running deliveries of this process.
    pub fn held(&self) -> HashMap<Uuid, Held> {
        let state = self.lock();
        let alone = state.alone;
        state
            .lanes
            .iter()
            .map(|(id, l)| {
                // A lane with a backlog, as deep as the hand-off would fill it: the hand-off
                // takes nothing while older deliveries wait, so the claim must bring them.
                let ahead = if l.backlog { l.ahead(alone) } else { l.ahead(alone) / 2 };
                (*id, Held { ready: l.ready.len(), running: l.running, ahead })
            })
            .collect()
    }

    /// Queues what a claim leased (or, with no `counted`, nothing: after a hand-off), notes
    /// what the claim counted, and answers the deliveries to start now, at most `room` in all,
    /// each webhook within `limit`; and, after a claim, the ready deliveries of lanes that
    /// cannot start any because other processes hold every slot of their webhook, whose leases
    /// are to be given back. (Two processes that each leased ahead would otherwise count each
    /// other's waiting deliveries as requests in flight, and wait for each other until the
    /// leases ran out.)
    pub fn fill(
        &self,
        leased: Vec<Claimed>,
        counted: Option<Counted<'_>>,
        limit: usize,
        room: usize,
    ) -> (Vec<Claimed>, Vec<Uuid>) {
        let mut state = self.lock();
        let now = Instant::now();
        for c in leased {
            let lane = state.lanes.entry(c.delivery.webhook_id).or_default();
            lane.ordered = c.place().is_some();
            lane.used_at = Some(now);
            lane.ready.push_back(c);
        }
        if let Some(c) = &counted {
            state.alone = c.alone;
        }
        let State { lanes, inactive, pauses, any_backlog, .. } = &mut *state;
        let mut start = Vec::new();
        let mut blocked = Vec::new();
        for (webhook, lane) in lanes.iter_mut() {
            if let Some(c) = &counted {
                lane.others = c.others.get(webhook).copied().unwrap_or(0);
                lane.counted_at = Some(now);
                if lane.refused_at.is_none_or(|r| r < c.started) {
                    lane.backlog = c.maybe_more.contains(webhook);
                }
            }
            if inactive.contains(webhook) || pauses.get(webhook).is_some_and(|p| p.until > now) {
                continue;
            }
            let limit = if lane.failing || lane.ordered { 1 } else { limit };
            while start.len() < room && lane.running + lane.others < limit {
                let Some(next) = lane.ready.pop_front() else { break };
                lane.running += 1;
                lane.used_at = Some(now);
                start.push(next);
            }
            if counted.is_some() && lane.running == 0 && lane.others >= limit {
                blocked.extend(lane.ready.drain(..).map(|c| c.delivery.id));
            }
        }
        *any_backlog = lanes.values().any(|l| l.backlog);
        lanes.retain(|_, l| {
            l.running > 0
                || l.reserved > 0
                || !l.ready.is_empty()
                || l.used_at.is_some_and(|u| now - u < KEPT)
        });
        (start, blocked)
    }

    /// The hand-off offers `wanted` new deliveries of `webhook`: answers how many this lane
    /// takes (reserved until they are committed and `arrive`, or `cancel`led), so that its ready
    /// and running deliveries stay within the webhook's `limit` and what it leases ahead: half
    /// the limit (the claim's poll always finds room to lease a retry that fell due), or, while
    /// this process is alone, half a second of the lane's recent rate (with two processes, what
    /// one leases ahead the other counts as requests in flight). None while the lane is not
    /// known to be healthy and current, or while older deliveries of it wait in the database
    /// (or `limit` is 0); whatever it does not take is left to the claim, and marks the lane as
    /// having a backlog.
    pub fn reserve(&self, webhook: Uuid, wanted: usize, limit: usize) -> usize {
        let mut state = self.lock();
        let now = Instant::now();
        let held_back =
            state.inactive.contains(&webhook) || state.pauses.get(&webhook).is_some_and(|p| p.until > now);
        let alone = state.alone;
        let Some(lane) = state.lanes.get_mut(&webhook) else { return 0 };
        let cap = if limit == 0 { 0 } else { limit + limit.div_ceil(2).max(lane.ahead(alone)) };
        let current = lane.counted_at.is_some_and(|c| now - c < FRESH);
        let room = cap.saturating_sub(lane.ready.len() + lane.running + lane.reserved);
        let able = !held_back && current && !lane.failing && !lane.ordered;
        let granted = if able && !lane.backlog { wanted.min(room) } else { 0 };
        lane.reserved += granted;
        if granted < wanted {
            // Refused only because older deliveries wait in the database, with room for these:
            // a claim that began before this one commits need not see it to end the backlog.
            // Were every such refusal stamped, a claim under steady ingest would always overlap
            // one, and the lane would never leave the claim for the hand-off (measured: 59,843
            // of 60,000 deliveries claimed). Its commit wakes the engine for a claim, which
            // finds it at once; only a delivery stored in those few milliseconds may go after
            // newer ones that the hand-off takes.
            if !(able && wanted <= room) {
                lane.refused_at = Some(now);
            }
            lane.backlog = true;
            state.any_backlog = true;
        }
        granted
    }

    /// Reserved deliveries, now committed and leased to this process: ready to go.
    pub fn arrive(&self, handed: Vec<Claimed>) {
        let mut state = self.lock();
        let now = Instant::now();
        for c in handed {
            let lane = state.lanes.entry(c.delivery.webhook_id).or_default();
            lane.reserved = lane.reserved.saturating_sub(1);
            lane.used_at = Some(now);
            lane.ready.push_back(c);
        }
    }

    /// Reservations whose transaction did not commit.
    pub fn cancel(&self, reserved: &[(Uuid, usize)]) {
        let mut state = self.lock();
        for (webhook, n) in reserved {
            if let Some(lane) = state.lanes.get_mut(webhook) {
                lane.reserved = lane.reserved.saturating_sub(*n);
            }
        }
    }

    /// A request to `webhook` is over: answers the next ready delivery of that webhook, which
    /// takes over its slot, or None when the slot is free. `usable` skips deliveries not to
    /// send any more (a lease that would run out during the request), whose ids go to
    /// `unusable` for their leases to be released; `hand_over` false (shutting down) always
    /// frees the slot. A request that failed hands over only when it was the webhook's last one
    /// running: a failing webhook is probed one request at a time until one `succeeded`. In an
    /// ordered lane, nothing is skipped: a failure, or a delivery not to send, gives back
    /// everything behind it.
    pub fn finish(
        &self,
        webhook: Uuid,
        hand_over: bool,
        succeeded: bool,
        usable: impl Fn(&Claimed) -> bool,
        unusable: &mut Vec<Uuid>,
    ) -> Option<Claimed> {
        let mut state = self.lock();
        let paused = state.pauses.get(&webhook).is_some_and(|p| p.until > Instant::now());
        let active = !state.inactive.contains(&webhook) && !paused;
        let lane = state.lanes.entry(webhook).or_default();
        lane.failing = !succeeded;
        let now = Instant::now();
        lane.used_at = Some(now);
        lane.finished += 1;
        match lane.rate_since.map(|since| now - since) {
            Some(over) if over >= std::time::Duration::from_secs(1) => {
                lane.rate = f64::from(lane.finished) / over.as_secs_f64();
                lane.finished = 0;
                lane.rate_since = Some(now);
            }
            Some(_) => {}
            None => lane.rate_since = Some(now),
        }
        if hand_over && active && (succeeded || (lane.running <= 1 && !lane.ordered)) {
            while let Some(next) = lane.ready.pop_front() {
                if usable(&next) {
                    return Some(next);
                }
                unusable.push(next.delivery.id);
                if lane.ordered {
                    break;
                }
            }
        }
        if lane.ordered {
            unusable.extend(lane.ready.drain(..).map(|c| c.delivery.id));
        }
        lane.running = lane.running.saturating_sub(1);
        None
    }

    /// A delivery handed on to a running slot is not sent after all (its webhook was paused
    /// meanwhile): the slot is free.
    pub fn give_up(&self, webhook: Uuid) {
        if let Some(lane) = self.lock().lanes.get_mut(&webhook) {
            lane.running = lane.running.saturating_sub(1);
        }
    }

    /// Whether it is time to claim for `webhook`: older deliveries of it may wait in the
    /// database, and its ready deliveries are at or below half of `prefetch`. (Without a
    /// backlog, new deliveries come by the hand-off, and retries that fall due by the poll.)
    pub fn running_low(&self, webhook: Uuid, prefetch: usize) -> bool {
        self.lock().lanes.get(&webhook).is_none_or(|l| l.backlog && l.ready.len() * 2 <= prefetch)
    }

    /// Whether any lane may have due deliveries waiting in the database.
    pub fn any_backlog(&self) -> bool {
        self.lock().any_backlog
    }

    /// The webhooks that are not active now: their ready deliveries are dropped (answered, so
    /// their leases can be released) and nothing more of theirs starts until they are active.
    pub fn set_inactive(&self, inactive: HashSet<Uuid>) -> Vec<Uuid> {
        let mut state = self.lock();
        state.inactive = inactive;
        let State { lanes, inactive, .. } = &mut *state;
        let mut dropped = Vec::new();
        for (webhook, lane) in lanes.iter_mut() {
            if inactive.contains(webhook) {
                dropped.extend(lane.ready.drain(..).map(|c| c.delivery.id));
            }
        }
        dropped
    }

    /// One webhook was just deactivated here: as `set_inactive`, for it alone.
    pub fn deactivate(&self, webhook: Uuid) -> Vec<Uuid> {
        let mut state = self.lock();
        state.inactive.insert(webhook);
        state
            .lanes
            .get_mut(&webhook)
            .map(|l| l.ready.drain(..).map(|c| c.delivery.id).collect())
            .unwrap_or_default()
    }

    /// The receiver of `webhook` asked Herald to wait until `until`: its ready deliveries are
    /// dropped (their leases to be released: the claim takes them again once the pause is
    /// over) and nothing of it starts before then.
    pub fn pause(&self, webhook: Uuid, until: Instant) -> Vec<Uuid> {
        let mut state = self.lock();
        let pause = state.pauses.entry(webhook).or_insert(Pause { until, throttled: 0 });
        pause.until = pause.until.max(until);
        state
            .lanes
            .get_mut(&webhook)
            .map(|l| l.ready.drain(..).map(|c| c.delivery.id).collect())
            .unwrap_or_default()
    }

    /// Whether `webhook` is paused here now.
    pub fn paused(&self, webhook: &Uuid) -> bool {
        self.lock().pauses.get(webhook).is_some_and(|p| p.until > Instant::now())
    }

    /// Counts a 429 without `Retry-After` (answers how many in a row, this one included), or
    /// ends the count on any other answer.
    pub fn throttled(&self, webhook: Uuid, throttled: bool) -> u32 {
        let mut state = self.lock();
        let now = Instant::now();
        if throttled {
            let pause = state.pauses.entry(webhook).or_insert(Pause { until: now, throttled: 0 });
            // Requests in flight together when the first 429 came count as one: only a 429
            // after the pause is over makes the next pause longer.
            if pause.until <= now || pause.throttled == 0 {
                pause.throttled += 1;
            }
            pause.throttled
        } else {
            if state.pauses.get(&webhook).is_some_and(|p| p.until <= now) {
                state.pauses.remove(&webhook);
            } else if let Some(p) = state.pauses.get_mut(&webhook) {
                p.throttled = 0;
            }
            0
        }
    }

    /// Every ready delivery, dropped (on shutdown, before the leases are released).
    pub fn clear(&self) {
        for lane in self.lock().lanes.values_mut() {
            lane.ready.clear();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change is made in one call, so the state is consistent whatever panicked.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lane counted just now, its webhook delivering `rate` requests a second.
    fn lanes_with(webhook: Uuid, rate: f64, alone: bool) -> Lanes {
        let lanes = Lanes::default();
        {
            let mut state = lanes.lock();
            state.alone = alone;
            let lane = state.lanes.entry(webhook).or_default();
            lane.counted_at = Some(Instant::now());
            lane.used_at = Some(Instant::now());
            lane.rate = rate;
        }
        lanes
    }

    #[test]
    fn the_hand_off_leases_half_a_second_ahead_only_while_alone() {
        let webhook = Uuid::now_v7();
        // With other processes: the limit and half of it, whatever the rate.
        assert_eq!(lanes_with(webhook, 2_000.0, false).reserve(webhook, 5_000, 32), 48);
        // Alone: half a second at 800/s beyond the limit.
        assert_eq!(lanes_with(webhook, 800.0, true).reserve(webhook, 5_000, 32), 32 + 400);
        // A slow receiver: never less than half the limit, and never more than MOST_AHEAD.
        assert_eq!(lanes_with(webhook, 10.0, true).reserve(webhook, 5_000, 32), 48);
        assert_eq!(lanes_with(webhook, 1e6, true).reserve(webhook, 5_000, 32), 32 + MOST_AHEAD);
        // Nothing for a webhook the engine will not send to now.
        assert_eq!(lanes_with(webhook, 2_000.0, true).reserve(webhook, 5_000, 0), 0);
    }

    /// What a claim that read every due delivery of `webhook` tells the lanes.
    fn drained(lanes: &Lanes, started: Instant) {
        let (others, maybe_more) = (HashMap::new(), HashSet::new());
        let counted = Counted { others: &others, maybe_more: &maybe_more, started, alone: true };
        lanes.fill(Vec::new(), Some(counted), 32, 0);
    }

    #[test]
    fn a_claim_under_steady_ingest_hands_the_lane_back_to_the_hand_off() {
        let webhook = Uuid::now_v7();
        let lanes = lanes_with(webhook, 0.0, true);
        // The lane is full: what does not fit waits in the database, a backlog.
        assert_eq!(lanes.reserve(webhook, 60, 32), 48);
        let claim_started = Instant::now();
        // While the claim runs, more events come: refused (older ones wait), though there is
        // room now (the full lane's deliveries were sent meanwhile).
        lanes.cancel(&[(webhook, 48)]);
        assert_eq!(lanes.reserve(webhook, 4, 32), 0);
        // That refusal does not keep the backlog: the claim read everything due, so new
        // deliveries go by the hand-off again.
        drained(&lanes, claim_started);
        assert_eq!(lanes.reserve(webhook, 4, 32), 4);

        // A refusal for want of room during a claim keeps the backlog: what it left in the
        // database may have been stored after the claim read.
        let lanes = lanes_with(webhook, 0.0, true);
        let claim_started = Instant::now();
        assert_eq!(lanes.reserve(webhook, 60, 32), 48);
        drained(&lanes, claim_started);
        lanes.cancel(&[(webhook, 48)]);
        assert_eq!(lanes.reserve(webhook, 4, 32), 0, "still behind its backlog");
    }
}
