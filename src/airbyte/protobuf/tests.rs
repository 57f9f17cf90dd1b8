use super::wire::{AirbyteRecordMessageMeta, AirbyteRecordMessageMetaChange, AirbyteValueProtobuf};
use super::*;

fn value(v: V) -> AirbyteValueProtobuf {
    AirbyteValueProtobuf { is_null: false, value: Some(v) }
}

/// Each value alone, rendered; `None`: written as null and reported.
fn one(v: V) -> Option<String> {
    let mut out = String::new();
    render(&v, &mut out).map(|()| out)
}

#[test]
fn every_case_written_out() {
    use super::wire::{LocalDateTime, OffsetDateTime, OffsetTime};
    // Expected texts worked out by hand (dates and instants with Python's datetime).
    let cases: Vec<(V, Option<&str>)> = vec![
        (V::Boolean(true), Some("true")),
        (V::Boolean(false), Some("false")),
        (V::String("a\"b\\\n\u{1}é".into()), Some(r#""a\"b\\\n\u0001é""#)),
        (V::String(b"a\xff"[..].into()), None),
        (V::String("plain ASCII, 7-bit".into()), Some(r#""plain ASCII, 7-bit""#)),
        (V::String("tab\tquote\"".into()), Some(r#""tab\tquote\"""#)),
        (V::Integer(-42), Some("-42")),
        (V::BigInteger("123456789012345678901234567890".into()), Some("123456789012345678901234567890")),
        (V::BigInteger("-007".into()), Some("-7")),
        (V::BigInteger("000".into()), Some("0")),
        (V::BigInteger("12a".into()), None),
        (V::BigInteger("+5".into()), None),
        (V::Number(45.67), Some("45.67")),
        (V::Number(1e300), Some("1e+300")),
        (V::Number(f64::NAN), None),
        (V::Number(f64::INFINITY), None),
        (V::BigDecimal("1.23E-10".into()), Some("1.23E-10")),
        (V::BigDecimal("-0.5000".into()), Some("-0.5000")),
        (V::BigDecimal(".5".into()), None),
        (V::BigDecimal("abc".into()), None),
        (V::Date(19890), Some(r#""2024-06-16""#)),
        (V::Date(-1), Some(r#""1969-12-31""#)),
        (V::Date(i64::MAX), None),
        (V::TimeWithoutTimezone(45_296_789_000_000), Some(r#""12:34:56.789""#)),
        (V::TimeWithoutTimezone(0), Some(r#""00:00:00""#)),
        (V::TimeWithoutTimezone(86_400_000_000_000), None),
        (
            V::TimeWithTimezone(OffsetTime { nanos_of_day: 43_200_000_000_000, offset_seconds: 7200 }),
            Some(r#""12:00:00+02:00""#),
        ),
        (
            V::TimeWithTimezone(OffsetTime { nanos_of_day: 1, offset_seconds: -19800 }),
            Some(r#""00:00:00.000000001-05:30""#),
        ),
        (V::TimeWithTimezone(OffsetTime { nanos_of_day: 0, offset_seconds: 3661 }), Some(r#""00:00:00+01:01:01""#)),
        (V::TimeWithTimezone(OffsetTime { nanos_of_day: 0, offset_seconds: 19 * 3600 }), None),
        (
            V::TimestampWithTimezone(OffsetDateTime { epoch_second: 1_750_197_599, nano: 0, offset_seconds: 7200 }),
            Some(r#""2025-06-17T23:59:59+02:00""#),
        ),
        (
            V::TimestampWithTimezone(OffsetDateTime {
                epoch_second: 1_750_197_599,
                nano: 500_000_000,
                offset_seconds: 0,
            }),
            Some(r#""2025-06-17T21:59:59.5Z""#),
        ),
        (
            V::TimestampWithoutTimezone(LocalDateTime {
                date_days_since_epoch: 20256,
                nanos_of_day: 86_399_000_000_000,
            }),
            Some(r#""2025-06-17T23:59:59""#),
        ),
        (V::Json(br#" [1,{"a":null}] "#[..].into()), Some(r#"[1,{"a":null}]"#)),
        (V::Json(br#"{"a":"#[..].into()), None),
        (V::Json(b"\xff"[..].into()), None),
    ];
    for (v, want) in cases {
        assert_eq!(one(v.clone()).as_deref(), want, "{v:?}");
    }
}

#[test]
fn fields_in_utf16_order_and_a_record_with_nulls_and_changes() {
    let schema = serde_json::json!({"properties": {"b": {}, "a": {}, "B": {}, "é": {}, "\u{ffff}": {}, "😀": {}}});
    let fields = Fields::of(&schema);
    // By UTF-16 code unit: the emoji's surrogates (0xD83D…) come before U+FFFF; by UTF-8 bytes they would not.
    assert_eq!(fields.names, ["B", "a", "b", "é", "😀", "\u{ffff}"]);
    let values = [
        value(V::Integer(1)),
        AirbyteValueProtobuf { is_null: true, value: Some(V::Integer(2)) },
        AirbyteValueProtobuf { is_null: false, value: None },
        value(V::Number(f64::NAN)),
    ];
    let (mut out, mut nulled) = (String::new(), Vec::new());
    render_data(&fields, &values, &mut out, &mut nulled);
    assert_eq!(out, r#"{"B":1,"a":null,"b":null,"é":null,"😀":null,"￿":null}"#);
    assert_eq!(nulled, ["é"]);
    let meta = AirbyteRecordMessageMeta {
        changes: vec![AirbyteRecordMessageMetaChange { field: "b".into(), change: 1, reason: 3 }],
    };
    let mut text = String::new();
    assert!(render_meta(Some(&meta), &nulled, &mut text));
    assert_eq!(
        text,
        concat!(
            r#"{"changes":[{"field":"b","change":"TRUNCATED","reason":"SOURCE_FIELD_SIZE_LIMITATION"},"#,
            r#"{"field":"é","change":"NULLED","reason":"DESTINATION_SERIALIZATION_ERROR"}]}"#
        )
    );
    assert!(!render_meta(None, &[], &mut String::new()));
    let no_schema = Fields::of(&serde_json::json!({"type": "object"}));
    let mut out = String::new();
    render_data(&no_schema, &values, &mut out, &mut Vec::new());
    assert_eq!(out, "{}", "no properties: every value ignored, as the CDK does");
}

#[test]
fn strings_escape_as_serde_json_does() {
    for text in ["plain", "q\"b\\s/", "\u{0}\u{8}\u{c}\u{1f}\u{7f}", "é 世界 🙂", "\r\n\t"] {
        let mut out = String::new();
        json_string(&mut out, text);
        assert_eq!(out, serde_json::to_string(text).unwrap());
    }
}
