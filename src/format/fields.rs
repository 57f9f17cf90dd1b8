//! Paths into a record's `data`, and reading their values without parsing the rest of the record.

use super::error::EncodeError;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A path into `data`: `customer.id` is the field `id` of the object `customer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(pub Vec<String>);

impl FieldPath {
    /// Dot-separated names; `\.` is a dot inside a name, `\\` a backslash.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        let mut names = vec![String::new()];
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped @ ('.' | '\\')) => names.last_mut().expect("one name").push(escaped),
                    _ => return Err(format!("field path `{text}`: `\\` must be followed by `.` or `\\`")),
                },
                '.' => names.push(String::new()),
                c => names.last_mut().expect("one name").push(c),
            }
        }
        if names.iter().any(String::is_empty) {
            return Err(format!("field path `{text}` has an empty name"));
        }
        Ok(FieldPath(names))
    }

    pub fn display(&self) -> String {
        self.0.iter().map(|n| n.replace('\\', "\\\\").replace('.', "\\.")).collect::<Vec<_>>().join(".")
    }
}

/// The value at each path (`None` where it is missing or passes through a non-object), reading `data` once per
/// level and skipping everything else unparsed.
pub fn lookup<'a>(data: &'a str, paths: &[FieldPath]) -> Result<Vec<Option<&'a RawValue>>, EncodeError> {
    let mut found = vec![None; paths.len()];
    descend(data, paths, &(0..paths.len()).collect::<Vec<_>>(), 0, &mut found)
        .map_err(|e| EncodeError::Unreadable(e.to_string()))?;
    Ok(found)
}

fn descend<'a>(
    object: &'a str,
    paths: &[FieldPath],
    wanted: &[usize],
    depth: usize,
    found: &mut [Option<&'a RawValue>],
) -> Result<(), serde_json::Error> {
    let names: Vec<&str> = wanted.iter().map(|&i| paths[i].0[depth].as_str()).collect();
    let Some(entries) = read(object, &names)? else { return Ok(()) };
    for (name, value) in entries {
        let here: Vec<usize> = wanted.iter().copied().filter(|&i| paths[i].0[depth] == name).collect();
        let (ends, deeper): (Vec<usize>, Vec<usize>) = here.into_iter().partition(|&i| paths[i].0.len() == depth + 1);
        for i in ends {
            found[i] = Some(value);
        }
        if !deeper.is_empty() {
            descend(value.get(), paths, &deeper, depth + 1, found)?;
        }
    }
    Ok(())
}

/// The entries of a JSON object whose names are wanted; `None` when the value is not an object.
fn read<'a>(json: &'a str, names: &[&str]) -> Result<Option<Vec<Named<'a>>>, serde_json::Error> {
    if !json.trim_start().starts_with('{') {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_str(json);
    de.deserialize_map(Wanted { names }).map(Some)
}

/// The text of a JSON string (unescaped only if it has escapes); `None` for any other value.
pub fn string(json: &str) -> Option<Cow<'_, str>> {
    // Without quotes, escapes or control characters inside, the text is a JSON string and is its own content:
    // most are, and serde's reader costs several times this check.
    let inner = json.strip_prefix('"')?;
    if let Some(plain) = inner.strip_suffix('"').filter(|i| !i.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)) {
        return Some(Cow::Borrowed(plain));
    }
    match serde_json::from_str::<&str>(json) {
        Ok(borrowed) => Some(Cow::Borrowed(borrowed)),
        Err(_) => serde_json::from_str::<String>(json).ok().map(Cow::Owned),
    }
}

/// A name in a JSON object: borrowed from the text unless it has escapes (serde's own `Cow` always copies).
struct Name<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name")
            }

            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(name)))
            }

            fn visit_str<E>(self, name: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name.to_string())))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// A name and its value, as serde_json reads them.
type Named<'a> = (Cow<'a, str>, &'a RawValue);

struct Wanted<'n> {
    names: &'n [&'n str],
}

impl<'de> Visitor<'de> for Wanted<'_> {
    type Value = Vec<Named<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Vec<Named<'de>>, M::Error> {
        let mut entries: Vec<Named<'de>> = Vec::new();
        while let Some(Name(key)) = map.next_key::<Name<'de>>()? {
            if self.names.contains(&key.as_ref()) {
                let value: &'de RawValue = map.next_value()?;
                // The last of duplicate keys wins, as everywhere else.
                match entries.iter().position(|(k, _)| *k == key) {
                    Some(at) => entries[at].1 = value,
                    None => entries.push((key, value)),
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> FieldPath {
        FieldPath::parse(p).unwrap()
    }

    #[test]
    fn paths_are_dotted_with_escapes() {
        assert_eq!(path("a.b").0, vec!["a", "b"]);
        assert_eq!(path("a\\.b.c").0, vec!["a.b", "c"]);
        assert_eq!(path("a\\\\").0, vec!["a\\"]);
        assert_eq!(path("a\\.b").display(), "a\\.b");
        assert!(FieldPath::parse("a..b").is_err());
        assert!(FieldPath::parse("").is_err());
        assert!(FieldPath::parse("a\\x").is_err());
    }

    #[test]
    fn lookup_reads_only_what_is_asked() {
        let data =
            r#"{"id": 7, "customer": {"id": "c-1", "tags": [1]}, "skip": [[[[{"x":1}]]]], "id2": null, "a.b": 5}"#;
        let paths =
            [path("id"), path("customer.id"), path("customer.tags"), path("missing"), path("id.deeper"), path("a\\.b")];
        let found: Vec<Option<&str>> = lookup(data, &paths).unwrap().iter().map(|v| v.map(RawValue::get)).collect();
        assert_eq!(found, vec![Some("7"), Some("\"c-1\""), Some("[1]"), None, None, Some("5")]);
        assert!(lookup("[1,2]", &[path("id")]).unwrap()[0].is_none());
        assert_eq!(lookup(r#"{"id":1,"id":2}"#, &[path("id")]).unwrap()[0].map(RawValue::get), Some("2"));
    }

    #[test]
    fn strings_borrowed_unless_escaped() {
        assert!(matches!(string(r#""plain""#), Some(Cow::Borrowed("plain"))));
        assert_eq!(string(r#""a\"b""#).as_deref(), Some("a\"b"));
        assert_eq!(string("12"), None);
        // The quick check takes plain text, and leaves to serde what is not one JSON string, or not valid JSON.
        assert!(matches!(string("\"é €\""), Some(Cow::Borrowed("é €"))));
        assert_eq!(
            (string(r#""a"b""#), string("\"a\u{1}\""), string("\""), string(r#""" "#).as_deref()),
            (None, None, None, Some(""))
        );
    }
}
