//! This process's deliveries per webhook: those leased and waiting their turn (ready), and the
//! requests in flight (running). A request that ends hands its webhook slot straight to the next
//! ready delivery of the same webhook, with no database round trip in between: the number of
//! requests in flight to that webhook stays what it was, so the limit holds, and the claim (a
//! few statements) serves many deliveries instead of one or two. The claim keeps each lane
//! topped up to `prefetch` ready deliveries while the webhook has a slot.

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
    /// Requests in flight to this webhook from other processes, as the last claim counted them.
    others: usize,
    /// The last request to this webhook failed: one request at a time until one succeeds.
    failing: bool,
    /// The webhook delivers in order: one request at a time, each only once the one before it
    /// succeeded and was recorded; after a failure, what waits here goes back to the line.
    ordered: bool,
}

/// What this process holds of one webhook, for the claim.
#[derive(Clone, Copy, Debug, Default)]
pub struct Held {
    pub ready: usize,
    pub running: usize,
}

impl Lanes {
    /// Per webhook, the ready and running deliveries of this process.
    pub fn held(&self) -> HashMap<Uuid, Held> {
        let state = self.lock();
        state.lanes.iter().map(|(id, l)| (*id, Held { ready: l.ready.len(), running: l.running })).collect()
    }

    /// After a claim: queues what it leased, notes what other processes have in flight, and
    /// answers the deliveries to start now, at most `room` in all, each webhook within `limit`.
    pub fn fill(
        &self,
        leased: Vec<Claimed>,
        others: &HashMap<Uuid, usize>,
        limit: usize,
        room: usize,
    ) -> Vec<Claimed> {
        let mut state = self.lock();
        for c in leased {
            let lane = state.lanes.entry(c.delivery.webhook_id).or_default();
            lane.ordered = c.place().is_some();
            lane.ready.push_back(c);
        }
        let State { lanes, inactive, pauses, .. } = &mut *state;
        let mut start = Vec::new();
        let now = Instant::now();
        for (webhook, lane) in lanes.iter_mut() {
            lane.others = others.get(webhook).copied().unwrap_or(0);
            if inactive.contains(webhook) || pauses.get(webhook).is_some_and(|p| p.until > now) {
                continue;
            }
            let limit = if lane.failing || lane.ordered { 1 } else { limit };
            while start.len() < room && lane.running + lane.others < limit {
                let Some(next) = lane.ready.pop_front() else { break };
                lane.running += 1;
                start.push(next);
            }
        }
        lanes.retain(|_, l| l.running > 0 || !l.ready.is_empty());
        start
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

    /// Whether `webhook`'s ready deliveries are at or below half of `prefetch`: time to claim.
    pub fn running_low(&self, webhook: Uuid, prefetch: usize) -> bool {
        self.lock().lanes.get(&webhook).is_none_or(|l| l.ready.len() * 2 <= prefetch)
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
