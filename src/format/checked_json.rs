//! Reading JSON already known to be valid — a record's `data`, which the parse stage checked (or the connector
//! wrote: Speed Mode's Protobuf records, `check`'s test record) — without checking it again: the spans of an
//! object's entries and of an array's items, found by skipping strings and counting brackets. On text that is not
//! valid JSON the spans are wrong but nothing panics (every span ends at an ASCII byte, so slicing is safe).

use std::borrow::Cow;
use std::collections::HashMap;

/// A name and its value's text in a JSON object, borrowed from it (the name unescaped only if it has escapes).
pub type Entry<'a> = (Cow<'a, str>, &'a str);

/// Objects up to this many entries are searched for a repeated name one by one; wider ones through an index.
const WIDE: usize = 16;

/// Every entry of an object, in order (a repeated name keeps its first place and its last value, as serde_json's
/// maps do); `None` when the value is not an object.
pub fn entries(json: &str) -> Option<Vec<Entry<'_>>> {
    let b = json.as_bytes();
    let mut at = ws(b, 0);
    if b.get(at) != Some(&b'{') {
        return None;
    }
    // Room for most records at once: growing one entry at a time costs more than the walk.
    let mut entries: Vec<Entry> = Vec::with_capacity(WIDE);
    let mut index: Option<HashMap<Cow<str>, usize>> = None;
    at = ws(b, at + 1);
    while b.get(at) == Some(&b'"') {
        let (end, escaped) = string_end(b, at);
        let name = name(&json[at..end], escaped);
        at = ws(b, end);
        if b.get(at) != Some(&b':') {
            break;
        }
        at = ws(b, at + 1);
        let value_end = skip(b, at);
        let value = &json[at..value_end];
        if index.is_none() && entries.len() == WIDE {
            index = Some(entries.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
        }
        let repeated = match &mut index {
            Some(index) => match index.get(&name) {
                Some(&i) => Some(i),
                None => {
                    index.insert(name.clone(), entries.len());
                    None
                }
            },
            None => entries.iter().position(|(k, _)| *k == name),
        };
        match repeated {
            Some(i) => entries[i].1 = value,
            None => entries.push((name, value)),
        }
        at = ws(b, value_end);
        if b.get(at) == Some(&b',') {
            at = ws(b, at + 1);
        }
    }
    Some(entries)
}

/// The items of an array, in order; `None` when the value is not an array.
pub fn items(json: &str) -> Option<Vec<&str>> {
    let b = json.as_bytes();
    let mut at = ws(b, 0);
    if b.get(at) != Some(&b'[') {
        return None;
    }
    let mut items = Vec::with_capacity(8);
    at = ws(b, at + 1);
    while at < b.len() && b[at] != b']' {
        let end = skip(b, at);
        items.push(&json[at..end]);
        at = ws(b, end);
        if b.get(at) != Some(&b',') {
            break;
        }
        at = ws(b, at + 1);
    }
    Some(items)
}

/// Which of `pairs` is named `name`: looked for at `next` first, as sources mostly write fields in the schema's
/// order (so a record's fields are found in one step each).
pub fn named<N: AsRef<str>, V>(pairs: &[(N, V)], next: usize, name: &str) -> Option<usize> {
    let at_next = pairs.get(next).filter(|(n, _)| n.as_ref() == name).map(|_| next);
    at_next.or_else(|| pairs.iter().position(|(n, _)| n.as_ref() == name))
}

/// A name's text: borrowed unless it has escapes.
fn name(quoted: &str, escaped: bool) -> Cow<'_, str> {
    let inner = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')).unwrap_or(quoted);
    if escaped {
        Cow::Owned(serde_json::from_str(quoted).unwrap_or_else(|_| inner.to_string()))
    } else {
        Cow::Borrowed(inner)
    }
}

pub(super) fn ws(b: &[u8], mut at: usize) -> usize {
    while at < b.len() && matches!(b[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

/// Past the string whose opening quote is at `at`, and whether it has escapes. A byte loop: the strings of records
/// are mostly a few bytes long, where a vectorised search costs more to set up than it saves (measured: memchr2 and
/// the parse stage's SSE2 search both cost more instructions per record).
pub(super) fn string_end(b: &[u8], at: usize) -> (usize, bool) {
    let (mut i, mut escaped) = (at + 1, false);
    while i < b.len() {
        match b[i] {
            b'"' => return (i + 1, escaped),
            b'\\' => (i, escaped) = (i + 2, true),
            _ => i += 1,
        }
    }
    (b.len(), escaped)
}

/// Past the value that starts at `at`.
pub(super) fn skip(b: &[u8], mut at: usize) -> usize {
    match b.get(at) {
        Some(b'"') => string_end(b, at).0,
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            while at < b.len() {
                match b[at] {
                    b'"' => {
                        at = string_end(b, at).0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return at + 1;
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            b.len()
        }
        _ => {
            while at < b.len() && !matches!(b[at], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                at += 1;
            }
            at
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// serde_json's reading of the same object: names and values (re-read, so spacing does not matter).
    fn by_serde(json: &str) -> Vec<(String, Value)> {
        match serde_json::from_str::<Value>(json).unwrap() {
            Value::Object(map) => map.into_iter().collect(),
            _ => unreachable!(),
        }
    }

    fn by_spans(json: &str) -> Vec<(String, Value)> {
        entries(json).unwrap().into_iter().map(|(k, v)| (k.into_owned(), serde_json::from_str(v).unwrap())).collect()
    }

    #[test]
    fn spans_of_entries_and_items() {
        let json = r#" { "a" : 1 , "b\"c":"x\\\"}]" ,"d":[1,{"e":[]}], "a": true , "f" : null } "#;
        assert_eq!(by_spans(json), by_serde(json));
        assert_eq!(entries(json).unwrap()[2].1, r#"[1,{"e":[]}]"#);
        assert_eq!(items(r#"[ 1, "]" ,{"x":[2]}, -3.5e2 ]"#).unwrap(), ["1", r#""]""#, r#"{"x":[2]}"#, "-3.5e2"]);
        assert_eq!(items("[]").unwrap(), Vec::<&str>::new());
        assert!(entries("[1]").is_none() && items("{}").is_none() && entries("{}").unwrap().is_empty());
    }

    /// Any JSON value serde_json writes (compact or pretty), wide objects and repeated names included.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 24, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((".{0,6}", inner), 0..24)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Text that is not valid JSON gives wrong spans, but no panic and no endless loop.
        #[test]
        fn any_text_is_walked_to_its_end(text in "[{}\\[\\]\":, \\\\a1é]{0,24}") {
            let _ = (entries(&text), items(&text));
        }

        #[test]
        fn agrees_with_serde_json(value in json_value(), pretty in any::<bool>(), repeat in any::<bool>()) {
            let Value::Object(map) = &value else { return Ok(()) };
            let mut json = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }.unwrap();
            // A repeated name: its last value wins, in its first place.
            if let (true, Some((name, _))) = (repeat, map.iter().next()) {
                json.insert_str(json.len() - 1, &format!(",{}:\"again\"", serde_json::to_string(name).unwrap()));
            }
            prop_assert_eq!(by_spans(&json), by_serde(&json));
            for (i, (name, value)) in map.iter().enumerate() {
                if let (Value::Array(expected), false) = (value, repeat && i == 0) {
                    let spans = entries(&json).unwrap();
                    let (_, text) = spans.iter().find(|(k, _)| k == name).unwrap();
                    let got: Vec<Value> = items(text).unwrap().iter().map(|t| serde_json::from_str(t).unwrap()).collect();
                    prop_assert_eq!(&got, expected);
                }
            }
        }
    }
}
