//! Whole numbers out of JSON numbers: the one rule for "this f64 fits an i64", used wherever a number read as a
//! double must become a 64-bit integer (`emitted_at`, config values, timestamps, Avro longs).

/// `f` without its fraction, if that fits an i64 (NaN and infinities do not).
pub fn truncate_to_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; every double below it (and from -2^63 up) truncates into range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let t = f.trunc();
    (t.is_finite() && (-LIMIT..LIMIT).contains(&t)).then_some(t as i64)
}

/// `f` if it is a whole number that fits an i64.
pub fn whole_i64(f: f64) -> Option<i64> {
    (f.fract() == 0.0).then_some(f).and_then(truncate_to_i64)
}

/// A JSON number as an i64: an integer as it is, a double truncated.
pub fn json_i64(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| n.as_f64().and_then(truncate_to_i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_are_i64s() {
        assert_eq!(truncate_to_i64(1.9), Some(1));
        assert_eq!(truncate_to_i64(-1.9), Some(-1));
        assert_eq!(truncate_to_i64(-9_223_372_036_854_775_808.0), Some(i64::MIN));
        assert_eq!(truncate_to_i64(9_223_372_036_854_775_808.0), None);
        assert_eq!(truncate_to_i64(9_223_372_036_854_774_784.0), Some(9_223_372_036_854_774_784));
        assert_eq!(
            (truncate_to_i64(f64::NAN), truncate_to_i64(f64::INFINITY), truncate_to_i64(1.7e300)),
            (None, None, None)
        );
        assert_eq!((whole_i64(5.0), whole_i64(5.5)), (Some(5), None));
    }
}
