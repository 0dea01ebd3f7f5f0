//! What happens after an attempt: DESIGN.md's retry and deactivation rules as one pure
//! function, so every branch is tested without a network or a database.

use std::time::Duration;

use app::models::{AttemptTrigger, DeliveryStatus, Outcome};
use chrono::{DateTime, Utc};
use rand::Rng;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Seconds before each automatic attempt; entry 0 is the first attempt.
    pub schedule: Vec<u32>,
    pub quick_retries: u32,
    pub quick_retry_delay: Duration,
    pub retry_after_max: Duration,
}

/// What the delivery looked like when it was claimed.
#[derive(Clone, Copy, Debug)]
pub struct Before {
    pub status: DeliveryStatus,
    pub retry_slot: i32,
    pub quick_retry_count: i32,
}

/// How the attempt went.
#[derive(Clone, Copy, Debug)]
pub struct AttemptResult {
    pub outcome: Outcome,
    pub status_code: Option<u16>,
    pub retry_after: Option<Duration>,
    pub trigger: AttemptTrigger,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub retry_slot: i32,
    pub quick_retry_count: i32,
    /// Set when this attempt deactivates the webhook, with the reason people are told.
    pub deactivate: Option<String>,
}

/// 408, 409, 429 and 504 answers, timeouts and connection errors are worth a quick retry.
pub fn is_transient(outcome: Outcome, status_code: Option<u16>) -> bool {
    match outcome {
        Outcome::Timeout | Outcome::ConnectError => true,
        Outcome::ClientError | Outcome::ServerError => matches!(status_code, Some(408 | 409 | 429 | 504)),
        _ => false,
    }
}

/// Up to 10% either way, so retries of many deliveries failed at once do not arrive together.
fn jitter(delay: Duration) -> Duration {
    if delay.is_zero() {
        return delay;
    }
    let factor = rand::thread_rng().gen_range(0.9..=1.1);
    delay.mul_f64(factor)
}

impl RetryPolicy {
    pub fn decide(
        &self,
        schedule: &[u32],
        before: Before,
        result: AttemptResult,
        now: DateTime<Utc>,
    ) -> Decision {
        let stay = |status| Decision {
            status,
            next_attempt_at: None,
            retry_slot: before.retry_slot,
            quick_retry_count: before.quick_retry_count,
            deactivate: None,
        };
        if result.outcome == Outcome::Success {
            return stay(DeliveryStatus::Succeeded);
        }
        if result.status_code == Some(410) {
            return Decision {
                deactivate: Some("the destination answered 410 Gone".into()),
                ..stay(DeliveryStatus::Failed)
            };
        }
        let schedule = if schedule.is_empty() { &self.schedule[..] } else { schedule };
        let honour = |delay: Duration| match result.retry_after {
            Some(asked) => jitter(delay).max(asked.min(self.retry_after_max)),
            None => jitter(delay),
        };
        let at = |delay: Duration| Some(now + chrono::Duration::from_std(delay).unwrap_or_default());
        let slot_delay = |slot: i32| Duration::from_secs(u64::from(schedule[slot as usize]));

        if result.trigger != AttemptTrigger::Automatic {
            // A re-send that fails leaves a delivery where it was: still on its schedule if it
            // had one, failed otherwise. Only the schedule deactivates a webhook.
            return match before.status {
                DeliveryStatus::Retrying if (before.retry_slot as usize) < schedule.len() => Decision {
                    next_attempt_at: at(honour(slot_delay(before.retry_slot))),
                    ..stay(DeliveryStatus::Retrying)
                },
                _ => stay(DeliveryStatus::Failed),
            };
        }
        if is_transient(result.outcome, result.status_code)
            && (before.quick_retry_count as u32) < self.quick_retries
        {
            return Decision {
                next_attempt_at: at(honour(self.quick_retry_delay)),
                quick_retry_count: before.quick_retry_count + 1,
                ..stay(DeliveryStatus::Retrying)
            };
        }
        let next_slot = before.retry_slot + 1;
        if (next_slot as usize) < schedule.len() {
            return Decision {
                next_attempt_at: at(honour(slot_delay(next_slot))),
                retry_slot: next_slot,
                ..stay(DeliveryStatus::Retrying)
            };
        }
        Decision {
            deactivate: Some(format!(
                "a delivery failed all {} scheduled attempts (last outcome: {})",
                schedule.len(),
                result.outcome
            )),
            ..stay(DeliveryStatus::Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![0, 30, 3600],
            quick_retries: 2,
            quick_retry_delay: Duration::from_secs(5),
            retry_after_max: Duration::from_secs(600),
        }
    }

    fn failed(outcome: Outcome, code: Option<u16>) -> AttemptResult {
        AttemptResult { outcome, status_code: code, retry_after: None, trigger: AttemptTrigger::Automatic }
    }

    fn before(slot: i32, quick: i32) -> Before {
        Before { status: DeliveryStatus::Retrying, retry_slot: slot, quick_retry_count: quick }
    }

    fn secs_after(d: &Decision, now: DateTime<Utc>) -> f64 {
        (d.next_attempt_at.unwrap() - now).num_milliseconds() as f64 / 1000.0
    }

    #[test]
    fn permanent_failures_walk_the_schedule_then_deactivate() {
        let (p, now) = (policy(), Utc::now());
        let d = p.decide(&[], before(0, 0), failed(Outcome::ServerError, Some(500)), now);
        assert_eq!((d.status, d.retry_slot, d.quick_retry_count), (DeliveryStatus::Retrying, 1, 0));
        assert!((27.0..=33.0).contains(&secs_after(&d, now)), "30 s ± 10%");
        let d = p.decide(&[], before(1, 0), failed(Outcome::ServerError, Some(500)), now);
        assert_eq!(d.retry_slot, 2);
        assert!((3240.0..=3960.0).contains(&secs_after(&d, now)));
        let d = p.decide(&[], before(2, 0), failed(Outcome::Redirect, Some(302)), now);
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert!(d.deactivate.unwrap().contains("all 3 scheduled attempts"));
    }

    #[test]
    fn transient_failures_get_quick_retries_first() {
        let (p, now) = (policy(), Utc::now());
        for (outcome, code) in [
            (Outcome::Timeout, None),
            (Outcome::ConnectError, None),
            (Outcome::ClientError, Some(429)),
            (Outcome::ServerError, Some(504)),
        ] {
            let d = p.decide(&[], before(1, 1), failed(outcome, code), now);
            assert_eq!((d.retry_slot, d.quick_retry_count), (1, 2), "{outcome}");
            assert!((4.5..=5.5).contains(&secs_after(&d, now)));
        }
        let d = p.decide(&[], before(1, 2), failed(Outcome::Timeout, None), now);
        assert_eq!((d.retry_slot, d.quick_retry_count), (2, 2), "quick retries used up: next slot");
        let d = p.decide(&[], before(0, 0), failed(Outcome::ClientError, Some(400)), now);
        assert_eq!(d.quick_retry_count, 0, "400 is not transient");
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let (p, now) = (policy(), Utc::now());
        let mut r = failed(Outcome::ClientError, Some(429));
        r.retry_after = Some(Duration::from_secs(120));
        let d = p.decide(&[], before(0, 0), r, now);
        assert!((119.0..=121.0).contains(&secs_after(&d, now)), "{}", secs_after(&d, now));
        r.retry_after = Some(Duration::from_secs(86_400));
        let d = p.decide(&[], before(0, 0), r, now);
        assert!(secs_after(&d, now) <= 600.5, "capped at retry_after_max");
    }

    #[test]
    fn gone_deactivates_at_once_and_success_ends() {
        let (p, now) = (policy(), Utc::now());
        let d = p.decide(&[], before(0, 0), failed(Outcome::ClientError, Some(410)), now);
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert!(d.deactivate.unwrap().contains("410"));
        let d = p.decide(&[], before(0, 0), failed(Outcome::Success, Some(204)), now);
        assert_eq!((d.status, d.next_attempt_at, d.deactivate), (DeliveryStatus::Succeeded, None, None));
    }

    #[test]
    fn a_webhook_schedule_replaces_the_global_one_and_resends_never_deactivate() {
        let (p, now) = (policy(), Utc::now());
        let d = p.decide(&[0], before(0, 2), failed(Outcome::ServerError, Some(500)), now);
        assert!(d.deactivate.is_some(), "one slot only");
        let mut r = failed(Outcome::ServerError, Some(500));
        r.trigger = AttemptTrigger::Manual;
        let failed_before = Before { status: DeliveryStatus::Failed, retry_slot: 2, quick_retry_count: 0 };
        let d = p.decide(&[], failed_before, r, now);
        assert_eq!((d.status, d.deactivate), (DeliveryStatus::Failed, None));
        let d = p.decide(&[], before(1, 0), r, now);
        assert_eq!((d.status, d.retry_slot), (DeliveryStatus::Retrying, 1), "stays on its schedule");
    }
}
