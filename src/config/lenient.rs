//! Java compatibility of config values. Saved Java configs come in several shapes (numbers as strings, strings
//! as numbers, 0.1.0 numbers): every numeric field accepts both, and anything else is a config error naming the
//! field. Validation messages never show a value (it may be a secret).

use crate::error::{Error, Result};
use crate::number::whole_i64;
use jsonschema::error::ValidationErrorKind;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::time::Duration;

/// A whole number given as a JSON number (`5`, `5.0`) or a numeric string (`"5"`).
pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = Value::deserialize(d)?;
    as_whole_number(&value)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number or a numeric string, got {value}")))
}

/// A `_ms` field: a whole, non-negative number of milliseconds.
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let ms = number(d)?;
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| serde::de::Error::custom(format!("must not be negative, got {ms}")))
}

pub fn as_whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| whole_i64(n.as_f64()?)),
        Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| whole_i64(s.trim().parse().ok()?)),
        _ => None,
    }
}

/// `true`/`false`, also as the strings some hand-written configs use.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        Value::Null => Ok(false),
        other => Err(serde::de::Error::custom(format!("expected true or false, got {other}"))),
    }
}

/// Aligns each top-level scalar with the type the spec declares: `"16384"` → 16384 where the spec says integer,
/// `0` → `"0"` where it says string. Saved configs hold both shapes; anything not convertible is left for the
/// validator to name.
pub fn coerce_scalars(schema: &Value, config: &mut Value) {
    let (Some(props), Some(obj)) = (schema["properties"].as_object(), config.as_object_mut()) else {
        return;
    };
    for (key, value) in obj.iter_mut() {
        // A property of several types (`headers`: a boolean or a map) is coerced to a boolean if it may be one.
        let kind = props.get(key).and_then(|p| match &p["type"] {
            Value::Array(kinds) if kinds.iter().any(|k| k == "boolean") => Some("boolean"),
            kind => kind.as_str(),
        });
        match (kind, &*value) {
            (Some("integer"), Value::String(_)) => {
                if let Some(n) = as_whole_number(value) {
                    *value = Value::from(n);
                }
            }
            (Some("integer"), Value::Number(n)) if n.as_i64().is_none() => {
                if let Some(n) = as_whole_number(value) {
                    *value = Value::from(n);
                }
            }
            (Some("string"), Value::Number(n)) => *value = Value::String(n.to_string()),
            (Some("boolean"), Value::String(s))
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                *value = Value::Bool(s.eq_ignore_ascii_case("true"));
            }
            _ => {}
        }
    }
}

/// JSON-schema validation with messages that name the field but never show its value (it may be a secret).
pub fn validate(schema: &Value, config: &Value) -> Result<()> {
    let problems = problems(schema, config, "")?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(problems.join("; ")))
    }
}

fn problems(schema: &Value, instance: &Value, prefix: &str) -> Result<Vec<String>> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| Error::System(format!("the embedded spec is not a valid JSON schema: {e}")))?;
    let mut problems = Vec::new();
    for e in validator.iter_errors(instance) {
        let field = join(prefix, &e.instance_path().as_str().trim_start_matches('/').replace('/', "."));
        let one_of_kind = matches!(
            e.kind(),
            ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::OneOfMultipleValid { .. }
        );
        if one_of_kind && !e.instance().is_object() {
            continue; // the spec's `"type": "object"` says it
        }
        if let ValidationErrorKind::OneOfNotValid { .. } = e.kind() {
            let branches = schema.pointer(e.schema_path().as_str()).and_then(Value::as_array);
            if let Some(said) = branches.and_then(|b| one_of(b, e.instance(), &field)) {
                problems.extend(said?);
                continue;
            }
        }
        problems.push(if field.is_empty() {
            format!("config: {}", e.masked())
        } else {
            format!("config field `{field}`: {}", e.masked())
        });
    }
    Ok(problems)
}

fn join(prefix: &str, field: &str) -> String {
    match (prefix, field) {
        ("", f) => f.to_string(),
        (p, "") => p.to_string(),
        (p, f) => format!("{p}.{f}"),
    }
}

/// A `oneOf` whose branches are told apart by one property (`mode`, `type`, `security_protocol`...): the
/// problems of the branch the value chose, or the choices. "Not valid under any of the schemas" says neither.
fn one_of(branches: &[Value], value: &Value, field: &str) -> Option<Result<Vec<String>>> {
    let object = value.as_object()?;
    let key = discriminator(branches)?;
    let choices: Vec<&str> = branches.iter().filter_map(|b| only_value(&b["properties"][key])).collect();
    let chosen = object.get(key).and_then(Value::as_str);
    let said = match chosen.and_then(|c| branches.iter().find(|b| only_value(&b["properties"][key]) == Some(c))) {
        Some(branch) => match problems(branch, value, field) {
            Ok(problems) if problems.is_empty() => return None,
            other => return Some(other),
        },
        None if chosen.is_some() => "must be one of",
        None => "is required, one of",
    };
    Some(Ok(vec![format!("config field `{}` {said} {}", join(field, key), choices.join(", "))]))
}

/// The property that has a single allowed value in every branch.
fn discriminator(branches: &[Value]) -> Option<&str> {
    let first = branches.first()?["properties"].as_object()?;
    first.keys().map(String::as_str).find(|key| branches.iter().all(|b| only_value(&b["properties"][*key]).is_some()))
}

fn only_value(property: &Value) -> Option<&str> {
    match property.get("enum").and_then(Value::as_array) {
        Some(values) if values.len() == 1 => values[0].as_str(),
        _ => property.get("const").and_then(Value::as_str),
    }
}
