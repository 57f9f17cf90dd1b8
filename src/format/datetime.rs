//! ISO-8601 dates and date-times as sources write them, parsed once for every format that needs an instant (the
//! message timestamp, Avro's timestamps): an offset is applied; none means UTC; `T` or a space between date and time.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Microseconds since the epoch of a date-time.
pub fn micros(text: &str) -> Option<i64> {
    utc_micros(text.as_bytes()).or_else(|| any_micros(text))
}

/// `YYYY-MM-DDTHH:MM:SS[.f]Z` (one to nine digits of fraction), the form nearly every source writes, read without
/// chrono's general parser, which costs several times as much per value (held equal to it by a property test).
/// Any other form, and a leap second, is left to [`any_micros`].
fn utc_micros(s: &[u8]) -> Option<i64> {
    let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2, b'T', h1, h2, b':', n1, n2, b':', s1, s2, rest @ ..] = s else {
        return None;
    };
    let (&b'Z', fraction) = rest.split_last()? else { return None };
    let two = |&a: &u8, &b: &u8| {
        let (a, b) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
        (a < 10 && b < 10).then(|| i64::from(a * 10 + b))
    };
    let (year, month, day) = (two(y1, y2)? * 100 + two(y3, y4)?, two(m1, m2)?, two(d1, d2)?);
    let (hour, minute, second) = (two(h1, h2)?, two(n1, n2)?, two(s1, s2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let valid = (1..=12).contains(&month) && day >= 1 && day <= month_days[month as usize - 1];
    if !valid || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let fraction = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let nanos =
                digits.iter().try_fold(0i64, |n, &c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))?;
            nanos * 10i64.pow(9 - digits.len() as u32) / 1000
        }
        _ => return None,
    };
    Some(((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + fraction)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`: years counted from
/// March, in 400-year eras).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    era * 146_097 + year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year - 719_468
}

/// Any form [`micros`] reads, by chrono.
fn any_micros(text: &str) -> Option<i64> {
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

    /// Written out: 2024-05-01T12:34:56.789Z is 1714566896.789 s after the epoch (`date -d ... +%s`).
    #[test]
    fn the_usual_form_without_chrono() {
        assert_eq!(utc_micros(b"2024-05-01T12:34:56.789Z"), Some(1_714_566_896_789_000));
        assert_eq!(utc_micros(b"1969-12-31T23:59:59.000001Z"), Some(-999_999));
        assert_eq!(utc_micros(b"2024-02-30T00:00:00Z"), None, "no such day");
        // Leap years (`date -u -d 2024-02-29 +%s`, and so on).
        assert_eq!(utc_micros(b"2024-02-29T00:00:00Z"), Some(1_709_164_800_000_000));
        assert_eq!(utc_micros(b"2000-02-29T00:00:00Z"), Some(951_782_400_000_000));
        assert_eq!(utc_micros(b"0000-03-01T00:00:00Z"), Some(-62_162_035_200_000_000));
        assert_eq!((utc_micros(b"2023-02-29T00:00:00Z"), utc_micros(b"1900-02-29T00:00:00Z")), (None, None));
        assert_eq!(utc_micros(b"2016-12-31T23:59:60Z"), None, "a leap second is chrono's");
        assert_eq!(utc_micros(b"YYYY-MM-DDTHH:MM:SSZ"), None, "letters where digits go");
    }

    proptest::proptest! {
        /// Whatever the hand-written reader accepts, chrono reads to the same instant; and every well-formed UTC
        /// date-time without a leap second is accepted, so the comparison is not vacuous.
        #[test]
        fn the_usual_form_reads_as_chrono_does(
            text in "[0-9 X]{4}-[01X][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{1,10})?Z",
        ) {
            let chrono = any_micros(&text);
            match utc_micros(text.as_bytes()) {
                Some(fast) => proptest::prop_assert_eq!(Some(fast), chrono),
                None => proptest::prop_assert!(
                    chrono.is_none() || text.get(17..19) == Some("60") || text.len() > 30,
                    "declined {text}, which chrono reads"
                ),
            }
        }
    }
}
