//! librdkafka properties, each remembering the config field it came from, so that a refusal by librdkafka (when a
//! client is created, in `kafka::client`) names the user's field, never the secret it holds.

use crate::error::{Error, Result};
use std::borrow::Cow;

/// One librdkafka property and the config field it came from.
pub struct Property {
    pub key: Cow<'static, str>,
    value: String,
    field: Cow<'static, str>,
    secret: bool,
}

#[derive(Default)]
pub struct Properties(Vec<Property>);

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.0.iter().map(|p| (p.key.as_ref(), if p.secret { "***" } else { p.value.as_str() }));
        f.debug_map().entries(shown).finish()
    }
}

impl Properties {
    pub fn set(&mut self, key: &'static str, value: impl ToString, field: &'static str) {
        self.0.push(Property { key: key.into(), value: value.to_string(), field: field.into(), secret: false });
    }

    /// A value that must never be shown (password, key material).
    pub fn set_secret(&mut self, key: &'static str, value: impl ToString, field: &'static str) {
        self.0.push(Property { key: key.into(), value: value.to_string(), field: field.into(), secret: true });
    }

    /// The config field that set `key`, if any.
    fn field_of(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|p| p.key == key).map(|p| p.field.as_ref())
    }

    /// The value set last for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|p| p.key == key).map(|p| p.value.as_str())
    }

    /// Every property, in the order set (a later one wins).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|p| (p.key.as_ref(), p.value.as_str()))
    }

    /// The config field and the librdkafka key a complaint of librdkafka's is about, if it names one.
    pub fn culprit(&self, message: &str) -> Option<(&str, &str)> {
        self.0
            .iter()
            .find(|p| message.contains(&format!("\"{}\"", p.key)) || message.contains(&format!("`{}`", p.key)))
            .map(|p| (p.field.as_ref(), p.key.as_ref()))
    }

    /// `message` with every secret value masked.
    pub fn mask(&self, message: &str) -> String {
        let mut message = message.to_string();
        for secret in self.0.iter().filter(|p| p.secret && !p.value.is_empty()) {
            message = message.replace(&secret.value, "***");
        }
        message
    }
}

/// Properties the spec sets that `kafka_properties` may still change: not a promise, only a default.
const OVERRIDABLE: [&str; 3] = ["partitioner", "queue.buffering.max.messages", "debug"];

/// librdkafka's consumer properties (its CONFIGURATION.md, scope `C`; `fetch.*` and `queued.*` are refused by
/// prefix): meaningless for the producer, and the one consumer, the progress topic's reader, sets its own.
const CONSUMER_ONLY: [&str; 26] = [
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.enable",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "offset.store.method",
    "offset.store.path",
    "offset.store.sync.interval.ms",
    "max.partition.fetch.bytes",
    "isolation.level",
    "enable.partition.eof",
    "check.crcs",
    "consume.callback.max.messages",
    "consume_cb",
    "rebalance_cb",
    "offset_commit_cb",
];

impl Properties {
    /// One entry of `kafka_properties`, applied last: refused, with the reason, when it would take over what the
    /// connector's promise rests on; otherwise left for librdkafka to check. Values may be secrets: never shown.
    pub(super) fn pass_through(&mut self, key: &str, value: &serde_json::Value) -> Result<()> {
        let field = format!("kafka_properties.{key}");
        let refuse = |why: String| Err(Error::Config(format!("config field `{field}` is refused: {why}")));
        if let Some(owner) = self.field_of(key).filter(|_| !OVERRIDABLE.contains(&key)) {
            return refuse(format!("`{key}` is set from `{owner}`; change that instead"));
        }
        if key == "transactional.id" {
            return refuse("use `transactional_id` (and `delivery_guarantee`)".into());
        }
        if key == "delivery.report.only.error" || key == "dr_msg_cb" || key == "dr_cb" {
            return refuse("the connector needs the delivery report of every record to emit STATEs".into());
        }
        if CONSUMER_ONLY.contains(&key) || key.starts_with("fetch.") || key.starts_with("queued.") {
            return refuse(
                "a consumer property; the connector produces, and its reader of the progress topic sets its own".into(),
            );
        }
        // The spec allows strings, numbers and booleans: a number or boolean as JSON writes it.
        let value = value.as_str().map_or_else(|| value.to_string(), str::to_string);
        self.0.push(Property { key: key.to_string().into(), value, field: field.into(), secret: true });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_shown() {
        let mut props = Properties::default();
        props.set_secret("sasl.password", "hunter2", "protocol.sasl_jaas_config");
        props.set("sasl.username", "u", "protocol.sasl_jaas_config");
        assert!(!format!("{props:?}").contains("hunter2"));
        assert!(format!("{props:?}").contains("\"u\""));
        let message = "Invalid value \"hunter2\" for \"sasl.password\"";
        assert_eq!(props.culprit(message), Some(("protocol.sasl_jaas_config", "sasl.password")));
        assert_eq!(props.mask(message), "Invalid value \"***\" for \"sasl.password\"");
    }
}
