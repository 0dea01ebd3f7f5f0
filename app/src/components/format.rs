//! How times, durations and rates are written in the admin app. Written out by hand rather than
//! with chrono's `format`/`parse_from_str` and float formatting: those pull chrono's strftime
//! machinery and Rust's float printing into the browser bundle (measured in BENCHMARKS.md).

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc};

/// The time now, on the server or in the browser (where chrono's clock is not available without
/// its `wasmbind` feature; the browser's `Date.now()` is already in the bundle).
pub fn now() -> DateTime<Utc> {
    #[cfg(feature = "hydrate")]
    {
        DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        Utc::now()
    }
}

/// A time as the log's `since`/`until` parameters carry it (RFC 3339, whole seconds).
pub fn query_time(at: DateTime<Utc>) -> String {
    format!("{}T{:02}:{:02}:{:02}Z", date(at), at.hour(), at.minute(), at.second())
}

/// A count with thousands separated: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Times are shown in UTC so the server's render and the browser's hydration agree.
pub fn timestamp(at: DateTime<Utc>) -> String {
    format!("{} {:02}:{:02}:{:02} UTC", date(at), at.hour(), at.minute(), at.second())
}

/// The value of a `datetime-local` input (`2026-11-23T02:00`), in UTC.
pub fn datetime_local(at: DateTime<Utc>) -> String {
    format!("{}T{:02}:{:02}", date(at), at.hour(), at.minute())
}

fn date(at: DateTime<Utc>) -> String {
    format!("{:04}-{:02}-{:02}", at.year(), at.month(), at.day())
}

/// A `datetime-local` value (`2026-11-23T02:00`, seconds optional), read as UTC.
pub fn parse_datetime_local(value: &str) -> Option<DateTime<Utc>> {
    let (date, time) = value.trim().split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<u32>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next().unwrap_or(Some(0))?);
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some(date.and_time(NaiveTime::from_hms_opt(hour, minute, second)?).and_utc())
}

/// What the last attempt came to, in words a person reads: "HTTP 500", "Timed out after 15 s",
/// "Could not connect"; "—" before any attempt.
pub fn attempt_result(outcome: Option<crate::models::Outcome>, code: Option<i32>, ms: Option<i32>) -> String {
    use crate::models::Outcome;
    match (outcome, code) {
        (_, Some(code)) => format!("HTTP {code}"),
        (Some(Outcome::Timeout), None) => format!("Timed out after {}", duration_ms(ms.unwrap_or(0))),
        (Some(Outcome::ConnectError), None) => "Could not connect".into(),
        (Some(Outcome::TlsError), None) => "TLS handshake failed".into(),
        (Some(Outcome::Blocked), None) => "Blocked: not an allowed address".into(),
        (Some(_), None) => "No answer".into(),
        (None, None) => "—".into(),
    }
}

pub fn duration_ms(ms: i32) -> String {
    if ms >= 1000 {
        format!("{} s", tenths((i64::from(ms) + 50) / 100))
    } else {
        format!("{ms} ms")
    }
}

/// `part` of `whole` as a percentage with one decimal; `—` when there is no whole.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "—".into();
    }
    let tenths_of_percent = (u128::from(part) * 2000 + u128::from(whole)) / (2 * u128::from(whole));
    format!("{}%", tenths(tenths_of_percent as i64))
}

/// 153 -> "15.3".
fn tenths(n: i64) -> String {
    format!("{}.{}", n / 10, n % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_ms(87), "87 ms");
        assert_eq!(duration_ms(15_000), "15.0 s");
        assert_eq!(duration_ms(1_049), "1.0 s");
        assert_eq!(duration_ms(1_050), "1.1 s");
    }

    #[test]
    fn rates_round_to_one_decimal() {
        assert_eq!(percent(0, 0), "—");
        assert_eq!(percent(2, 3), "66.7%");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(5, 5), "100.0%");
        assert_eq!(percent(0, 7), "0.0%");
        assert_eq!(percent(999_999, 1_000_000), "100.0%");
    }

    #[test]
    fn times_round_trip_through_the_datetime_input() {
        let at = DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z").unwrap().to_utc();
        assert_eq!(timestamp(at), "2026-03-04 05:06:07 UTC");
        assert_eq!(datetime_local(at), "2026-03-04T05:06");
        assert_eq!(parse_datetime_local(" 2026-03-04T05:06 "), Some(at - chrono::Duration::seconds(7)));
        assert_eq!(parse_datetime_local("2026-03-04T05:06:07"), Some(at));
        for bad in ["", "x", "2026-03-04", "2026-13-04T05:06", "2026-03-04T25:00", "2026-03-04T05"] {
            assert_eq!(parse_datetime_local(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn counts_and_query_times_read_back() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(12_345_678), "12,345,678");
        let at = DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z").unwrap().to_utc();
        assert_eq!(query_time(at).parse::<DateTime<Utc>>().ok(), Some(at));
    }

    #[test]
    fn attempt_results_read_as_words() {
        use crate::models::Outcome;
        assert_eq!(attempt_result(Some(Outcome::ServerError), Some(500), Some(12)), "HTTP 500");
        assert_eq!(attempt_result(Some(Outcome::Timeout), None, Some(15_004)), "Timed out after 15.0 s");
        assert_eq!(attempt_result(Some(Outcome::ConnectError), None, Some(3)), "Could not connect");
        assert_eq!(attempt_result(None, None, None), "—");
    }
}
