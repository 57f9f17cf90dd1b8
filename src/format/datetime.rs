//! ISO-8601 dates and date-times as sources write them, parsed once for every format that needs an instant (the
//! message timestamp, Avro's timestamps): an offset is applied; none means UTC; `T` or a space between date and time.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Microseconds since the epoch of a date-time.
pub fn micros(text: &str) -> Option<i64> {
    let s = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z"]
        .iter()
        .find_map(|f| {
            DateTime::parse_from_str(s, f)
                .map(|t| t.timestamp_micros())
                .ok()
                .or_else(|| NaiveDateTime::parse_from_str(s, f).ok().map(|t| t.and_utc().timestamp_micros()))
        })
}

/// Days since 1970-01-01 of a date (`2021-01-01`, or the date part of a date-time).
pub fn days(text: &str) -> Option<i64> {
    let s = text.trim();
    let day = NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()?;
    (s.len() == 10 || matches!(s.as_bytes()[10], b'T' | b' ')).then_some(())?;
    Some(day.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_sources_write() {
        let at = 1_704_067_201_500_000;
        for text in [
            "2024-01-01T00:00:01.5Z",
            "2024-01-01T01:00:01.5+01:00",
            "2024-01-01T00:00:01.500",
            "2024-01-01 00:00:01.5",
        ] {
            assert_eq!(micros(text), Some(at), "{text}");
        }
        assert_eq!(micros("2024-01-01 01:00:01.5+01:00"), Some(at));
        assert_eq!((micros("yesterday"), micros("2024-01-01")), (None, None));
        assert_eq!(
            (days("1970-01-02"), days("2024-01-01T10:00:00Z"), days("2024-01-01X")),
            (Some(1), Some(19723), None)
        );
    }
}
