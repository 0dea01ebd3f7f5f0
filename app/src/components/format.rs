use chrono::{DateTime, Utc};

/// Times are shown in UTC so the server's render and the browser's hydration agree.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn duration_ms(ms: i32) -> String {
    if ms >= 1000 {
        format!("{:.1} s", f64::from(ms) / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_ms(87), "87 ms");
        assert_eq!(duration_ms(15_000), "15.0 s");
    }
}
