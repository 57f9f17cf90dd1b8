//! Avro binary datums of records, by the conversion rules of Airbyte's destinations (`json-avro-converter`): a
//! union takes the first member the value fits, in order (so `"153"` is a long where long comes first); numbers
//! and numeric strings fit long and double; ISO dates and times fit their logical types (else the `string`
//! fallback takes them); keys the schema does not know go to `_airbyte_additional_properties` as text. A value
//! that fits no member is nulled and the change recorded (`NULLED`, `DESTINATION_SERIALIZATION_ERROR`), never
//! silently — except that a value fits a `string` member as its JSON text when nothing else takes it, where
//! Airbyte's converter would null it: text loses nothing.

use super::document::Json;
use super::schema::{Avro, Field, Record, AB_ID, ADDITIONAL, ADDITIONAL_KEYS, EMITTED_AT};
use crate::format::datetime;
use crate::format::error::EncodeError;
use crate::number::json_i64;
use chrono::{NaiveTime, Timelike};
use std::fmt;

/// A value nulled because it fits no member of its field's union: the field's path in the record.
pub type Nulled = String;

/// Where a value sits in the record; rendered (`user.tags[2]`) only when a value there is nulled.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Item(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(Path::Root, name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Item(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Appends the datum of one record (root `schema`) to `out`; the paths of nulled values go to `nulled`. Fails only
/// when `data` is not a JSON object (there is nothing to map onto the record).
pub fn record(
    schema: &Record,
    ab_id: &str,
    emitted_at_ms: i64,
    data: &str,
    out: &mut Vec<u8>,
    nulled: &mut Vec<Nulled>,
) -> Result<(), EncodeError> {
    let data = Json::parse(data).map_err(|e| EncodeError::Unreadable(e.to_string()))?;
    if !matches!(data, Json::Object(_)) {
        return Err(EncodeError::NotAnObject);
    }
    for field in &schema.fields {
        match field.name.as_str() {
            AB_ID if !field.default_null => write_str(out, ab_id),
            EMITTED_AT if !field.default_null => write_long(out, emitted_at_ms),
            _ => {}
        }
    }
    fields(&schema.fields[2..], &data, Path::Root, out, nulled);
    Ok(())
}

/// The fields of a record (the additional-properties map last) from a JSON object.
fn fields(schema: &[Field], data: &Json, path: Path, out: &mut Vec<u8>, nulled: &mut Vec<Nulled>) {
    for field in schema {
        if field.name == ADDITIONAL {
            additional(schema, data, out);
            continue;
        }
        let value = data.get(&field.original).unwrap_or(&Json::Null);
        value_of(&field.schema, value, Path::Field(&path, &field.original), out, nulled);
    }
}

/// The additional-properties map: keys the record's fields do not take, and the entries of a data-level
/// additional-properties object, as text; the union's null when there are none.
fn additional<'d>(schema: &[Field], data: &'d Json<'d>, out: &mut Vec<u8>) {
    let Json::Object(entries) = data else { return write_long(out, 0) };
    let mut extra: Vec<(&'d str, &'d Json<'d>)> = Vec::new();
    // A key given twice (in `data` and in its additional-properties object) keeps its last value, as a map must.
    let mut put = |key: &'d str, value: &'d Json<'d>| match extra.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => extra.push((key, value)),
    };
    for (key, value) in entries {
        if value.is_null() {
            continue;
        }
        match value {
            Json::Object(inner) if ADDITIONAL_KEYS.contains(&key.as_ref()) => {
                inner.iter().filter(|(_, v)| !v.is_null()).for_each(|(k, v)| put(k, v))
            }
            _ if !schema.iter().any(|f| f.original == *key) => put(key, value),
            _ => {}
        }
    }
    if extra.is_empty() {
        return write_long(out, 0);
    }
    write_long(out, 1);
    write_long(out, extra.len() as i64);
    for (k, v) in extra {
        write_str(out, k);
        write_str(out, &v.text());
    }
    write_long(out, 0);
}

/// Encodes `value` as `schema`: for a union, the index and datum of the first member it fits, else its text in a
/// string member, else null (recorded in `nulled`).
fn value_of(schema: &Avro, value: &Json, path: Path, out: &mut Vec<u8>, nulled: &mut Vec<Nulled>) {
    let Avro::Union(members) = schema else {
        // Only the non-nullable root fields are not unions, and those are written by `record`.
        if !try_write(schema, value, path, out, nulled) {
            nulled.push(path.to_string());
        }
        return;
    };
    let null = members.iter().position(|m| matches!(m, Avro::Null));
    if value.is_null() {
        if let Some(i) = null {
            return write_long(out, i as i64);
        }
    }
    // A fraction fits `long` (dropped, as Airbyte's converter drops it) only when no floating-point member keeps it.
    let fraction = matches!(value, Json::Number(n) if !n.is_i64() && !n.is_u64())
        && members.iter().any(|m| matches!(m, Avro::Double | Avro::Float));
    for (i, member) in members.iter().enumerate() {
        if matches!(member, Avro::Null) || (fraction && matches!(member, Avro::Long)) {
            continue;
        }
        let mark = out.len();
        write_long(out, i as i64);
        if try_write(member, value, path, out, nulled) {
            return;
        }
        out.truncate(mark);
    }
    if let Some(i) = members.iter().position(|m| matches!(m, Avro::String)) {
        write_long(out, i as i64);
        return write_str(out, &value.text());
    }
    // Every union here has a null member.
    write_long(out, null.unwrap_or(0) as i64);
    nulled.push(path.to_string());
}

/// Appends `value` as `schema` if it fits, and says whether it did (`out` is then left for the caller to cut).
/// Records, maps and arrays fit any object or array: their members decide (and null) for themselves.
fn try_write(schema: &Avro, value: &Json, path: Path, out: &mut Vec<u8>, nulled: &mut Vec<Nulled>) -> bool {
    let varint = |out: &mut Vec<u8>, n: Option<i64>| n.map(|n| write_long(out, n)).is_some();
    match (schema, value) {
        (Avro::Null, Json::Null) => true,
        (Avro::Boolean, Json::Bool(b)) => {
            out.push(u8::from(*b));
            true
        }
        (Avro::Long | Avro::TimestampMillis, v) => varint(out, long(v)),
        (Avro::Float, v) => double(v).map(|d| out.extend_from_slice(&(d as f32).to_le_bytes())).is_some(),
        (Avro::Double, v) => double(v).map(|d| out.extend_from_slice(&d.to_le_bytes())).is_some(),
        (Avro::String | Avro::Uuid, Json::String(s)) => {
            write_str(out, s);
            true
        }
        (Avro::Bytes, Json::String(s)) => {
            use base64::Engine as _;
            match base64::engine::general_purpose::STANDARD.decode(s.as_bytes()) {
                Ok(bytes) => write_bytes(out, &bytes),
                Err(_) => write_str(out, s),
            }
            true
        }
        (Avro::Date, v) => varint(out, date(v)),
        (Avro::TimestampMicros, v) => varint(out, timestamp_micros(v)),
        (Avro::TimeMicros, v) => varint(out, time_micros(v)),
        (Avro::Array(items), Json::Array(list)) => {
            if !list.is_empty() {
                write_long(out, list.len() as i64);
                for (i, item) in list.iter().enumerate() {
                    value_of(items, item, Path::Item(&path, i), out, nulled);
                }
            }
            write_long(out, 0);
            true
        }
        (Avro::StringMap, Json::Object(entries)) => {
            let count = entries.iter().filter(|(_, v)| !v.is_null()).count();
            if count > 0 {
                write_long(out, count as i64);
                for (k, v) in entries.iter().filter(|(_, v)| !v.is_null()) {
                    write_str(out, k);
                    write_str(out, &v.text());
                }
            }
            write_long(out, 0);
            true
        }
        (Avro::Record(record), Json::Object(_)) => {
            fields(&record.fields, value, path, out, nulled);
            true
        }
        (Avro::Union(_), v) => {
            value_of(schema, v, path, out, nulled);
            true
        }
        _ => false,
    }
}

/// A whole number: a JSON number (a fraction dropped, as Airbyte's converter does) or a numeric string.
fn long(value: &Json) -> Option<i64> {
    match value {
        Json::Number(n) => json_i64(n),
        Json::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

fn double(value: &Json) -> Option<f64> {
    match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// Days since 1970-01-01 of an ISO date (`2021-01-01`, or the date of a date-time).
fn date(value: &Json) -> Option<i64> {
    datetime::days(value.as_str()?)
}

/// Microseconds since the epoch of an ISO date-time (an offset applied; none means UTC), or digits taken as
/// microseconds.
fn timestamp_micros(value: &Json) -> Option<i64> {
    match value {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                return s.parse().ok();
            }
            datetime::micros(s)
        }
        _ => None,
    }
}

/// Microseconds since midnight of an ISO time (`12:23:01.541`; with an offset, in UTC, wrapping at 24 h), or digits
/// taken as microseconds.
fn time_micros(value: &Json) -> Option<i64> {
    let s = value.as_str()?.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let split = s.rfind(['+', '-', 'Z']).filter(|&i| i >= 5);
    let (clock, offset) = match split {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let time =
        NaiveTime::parse_from_str(clock, "%H:%M:%S%.f").or_else(|_| NaiveTime::parse_from_str(clock, "%H:%M")).ok()?;
    // A leap second (`23:59:60`) is the last microsecond of its minute, not the next day's midnight.
    let micros =
        i64::from(time.num_seconds_from_midnight()) * 1_000_000 + i64::from(time.nanosecond().min(999_999_999) / 1000);
    let offset_seconds = match offset {
        "" | "Z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let digits: String = o[1..].chars().filter(char::is_ascii_digit).collect();
            let (h, m) = (digits.get(..2)?.parse::<i64>().ok()?, digits.get(2..4).unwrap_or("0").parse::<i64>().ok()?);
            sign * (h * 3600 + m * 60)
        }
    };
    Some((micros - offset_seconds * 1_000_000).rem_euclid(86_400_000_000))
}

/// Avro's long: zig-zag, then base-128 little-endian varint.
pub fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_bytes(out, s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::schema::for_stream;
    use super::*;
    use serde_json::{json, Value};

    fn root(schema: Value) -> Record {
        for_stream(&schema, "s", None)
    }

    fn encode(schema: Value, data: Value) -> (Vec<u8>, Vec<Nulled>) {
        let (mut out, mut nulled) = (Vec::new(), Vec::new());
        record(&root(schema), "id", 1, &data.to_string(), &mut out, &mut nulled).unwrap();
        (out, nulled)
    }

    /// The bytes after the root's id ("id") and emitted_at (1).
    fn body(bytes: &[u8]) -> &[u8] {
        &bytes[4..]
    }

    #[test]
    fn zigzag_varints() {
        let v = |n| {
            let mut out = Vec::new();
            write_long(&mut out, n);
            out
        };
        assert_eq!((v(0), v(-1), v(1), v(-64), v(64)), (vec![0], vec![1], vec![2], vec![0x7f], vec![0x80, 0x01]));
        assert_eq!(v(i64::MIN).len(), 10);
    }

    #[test]
    fn union_members_in_order_with_coercion_and_nulling() {
        let schema = json!({"type": "object", "properties": {"n": {"type": ["null", "integer", "string"]}}});
        // "153" fits long first; "abc" fits only the string member.
        assert_eq!(body(&encode(schema.clone(), json!({"n": "153"})).0), [2, 0xb2, 0x02, 0]);
        assert_eq!(body(&encode(schema.clone(), json!({"n": "abc"})).0), [4, 6, b'a', b'b', b'c', 0]);
        let long_only = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
        let (bytes, nulled) = encode(long_only.clone(), json!({"n": "abc"}));
        assert_eq!((body(&bytes), nulled), (&[0u8, 0][..], vec!["n".to_string()]));
        assert_eq!(
            body(&encode(long_only.clone(), json!({"n": 1.9})).0),
            [2, 2, 0],
            "a fraction is dropped, as Airbyte does"
        );
        assert_eq!(body(&encode(long_only, json!({})).0), [0, 0], "missing: null");
        let either = json!({"type": "object", "properties": {"n": {"type": ["integer", "number"]}}});
        assert_eq!(body(&encode(either.clone(), json!({"n": 2})).0), [2, 4, 0]);
        let mut exact = vec![4];
        exact.extend_from_slice(&1.5f64.to_le_bytes());
        exact.push(0);
        assert_eq!(body(&encode(either, json!({"n": 1.5})).0), &exact[..], "a double keeps the fraction");
    }

    #[test]
    fn logical_types_and_their_string_fallback() {
        let schema = json!({"type": "object", "properties": {
            "d": {"type": "string", "format": "date"}, "t": {"type": "string", "format": "date-time"},
            "h": {"type": "string", "format": "time"}}});
        let (bytes, nulled) =
            encode(schema.clone(), json!({"d": "2021-01-01", "t": "2021-01-01T01:01:01+01:00", "h": "12:23:01.541"}));
        let mut expected = vec![2];
        write_long(&mut expected, 18628);
        expected.push(2);
        write_long(&mut expected, 1_609_459_261_000_000);
        expected.push(2);
        write_long(&mut expected, 44_581_541_000);
        expected.push(0);
        assert_eq!((body(&bytes), nulled.is_empty()), (&expected[..], true));
        assert_eq!(time_micros(&Json::String("04:00:00+05:30".into())), Some(81_000_000_000), "in UTC, wrapped");
        assert_eq!(time_micros(&Json::String("23:59:60".into())), Some(86_399_999_999), "a leap second");
        // Not a date: the string fallback keeps the text.
        let (bytes, _) = encode(schema, json!({"d": "someday"}));
        assert_eq!(&body(&bytes)[..9], &[4, 14, b's', b'o', b'm', b'e', b'd', b'a', b'y'][..]);
    }

    #[test]
    fn unknown_keys_go_to_the_additional_properties_map() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let (bytes, _) = encode(
            schema.clone(),
            json!({"a": "x", "extra": 1, "_airbyte_additional_properties": {"k": true}, "gone": null}),
        );
        let map = |entries: &[&str]| {
            let mut expected = vec![2, 2, b'x', 2];
            write_long(&mut expected, entries.len() as i64 / 2);
            entries.iter().for_each(|s| write_str(&mut expected, s));
            expected.push(0);
            expected
        };
        assert_eq!(body(&bytes), &map(&["extra", "1", "k", "true"])[..]);
        // Not an object: kept under its own name. Given twice: the last value.
        let (bytes, _) = encode(schema.clone(), json!({"a": "x", "_ab_additional_properties": [1]}));
        assert_eq!(body(&bytes), &map(&["_ab_additional_properties", "[1]"])[..]);
        let (bytes, _) = encode(schema, json!({"a": "x", "k": 1, "_ab_additional_properties": {"k": 2}}));
        assert_eq!(body(&bytes), &map(&["k", "2"])[..]);
    }

    #[test]
    fn arrays_nested_records_and_non_objects() {
        let schema = json!({"type": "object", "properties": {
            "tags": {"type": "array", "items": {"type": "string"}},
            "user": {"type": "object", "properties": {"id": {"type": "integer"}}}}});
        let (bytes, nulled) = encode(schema.clone(), json!({"tags": ["a", 5, null], "user": {"id": "x"}}));
        assert_eq!(nulled, vec!["user.id".to_string()]);
        let expected = [2, 6, 2, 2, b'a', 2, 2, b'5', 0, 0, 2, 0, 0, 0];
        assert_eq!(body(&bytes), &expected[..]);
        let err = record(&root(schema), "id", 1, "[1]", &mut Vec::new(), &mut Vec::new()).unwrap_err();
        assert_eq!(err, EncodeError::NotAnObject);
    }
}
