//! The configured catalog, read once: the streams of this sync and the topic each goes to.

use super::mapping::Mapping;
use crate::error::{Error, Result};
use crate::naming;
use serde_json::Value;
use std::collections::HashMap;

/// One configured stream. Its index in [`Catalog::streams`] is how the write path refers to it.
#[derive(Default)]
pub struct Stream {
    /// The stream's namespace and name as the destination writes them (after the namespace mapping, in Speed
    /// Mode; on stdin the platform mapped them already).
    pub namespace: Option<String>,
    pub name: String,
    /// The names input messages carry (the source's; the same as above on stdin).
    pub source_namespace: Option<String>,
    pub source_name: String,
    pub topic: String,
    /// Where its rejected records go (`record_errors: dead_letter`).
    pub dead_letter_topic: Option<String>,
    /// The configured primary key: paths into `data`.
    pub primary_key: Vec<Vec<String>>,
    /// `append_dedup`: keyed by the primary key, into a compacted topic, deletes as tombstones.
    pub dedup: bool,
    /// `sync_mode: full_refresh`: every row is read again each sync (a snapshot, to `debezium_json`).
    pub full_refresh: bool,
    /// A truncate refresh (`minimum_generation_id` = `generation_id` > 0): once the sync succeeded, only this
    /// generation's records may remain.
    pub truncate: bool,
    /// The stream's JSON schema (the registry formats derive theirs from it).
    pub json_schema: Value,
    /// The platform's ids of this sync and of the stream's generation, when the catalog carries them.
    pub sync_id: Option<i64>,
    pub generation_id: Option<i64>,
}

impl Stream {
    /// Whether an input message's names are this stream's.
    pub fn matches(&self, namespace: Option<&str>, name: &str) -> bool {
        self.source_name == name && self.source_namespace.as_deref() == namespace.filter(|n| !n.is_empty())
    }

    pub fn describe(&self) -> String {
        describe(self.namespace.as_deref(), &self.name)
    }
}

/// Up to this many streams, `find` compares names instead of hashing.
const FEW: usize = 8;

#[derive(Default)]
pub struct Catalog {
    pub streams: Vec<Stream>,
    by_name: HashMap<String, Vec<usize>>,
}

impl Catalog {
    pub fn load(
        path: &str,
        topic_pattern: &str,
        dead_letter_pattern: Option<&str>,
        mapping: &Mapping,
    ) -> Result<Catalog> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read the catalog file {path}: {e}")))?;
        let catalog: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("the catalog file {path} is not valid JSON: {e}")))?;
        Catalog::mapped(&catalog, topic_pattern, dead_letter_pattern, mapping)
    }

    /// A catalog whose names are the destination's already (stdin).
    pub fn from_value(catalog: &Value, topic_pattern: &str, dead_letter_pattern: Option<&str>) -> Result<Catalog> {
        Catalog::mapped(catalog, topic_pattern, dead_letter_pattern, &Mapping::identity())
    }

    /// Accepts a ConfiguredAirbyteCatalog, and also a plain AirbyteCatalog (streams without the `stream` wrapper).
    /// Topics are named from the names `mapping` gives each stream.
    pub fn mapped(
        catalog: &Value,
        topic_pattern: &str,
        dead_letter_pattern: Option<&str>,
        mapping: &Mapping,
    ) -> Result<Catalog> {
        let streams =
            catalog["streams"].as_array().ok_or_else(|| Error::Config("the catalog has no `streams` array".into()))?;
        let mut out = Catalog { streams: Vec::new(), by_name: HashMap::new() };
        for (i, entry) in streams.iter().enumerate() {
            let stream = if entry["stream"].is_object() { &entry["stream"] } else { entry };
            let name =
                stream["name"].as_str().ok_or_else(|| Error::Config(format!("catalog stream #{i} has no `name`")))?;
            let namespace = stream["namespace"].as_str().filter(|n| !n.is_empty());
            let mode = entry["destination_sync_mode"].as_str().unwrap_or("append");
            // `overwrite` as a truncate refresh (the generation's minimum is its own) is what `write::truncate` does.
            let truncates = entry["minimum_generation_id"].as_i64().is_some_and(|m| m > 0)
                && entry["minimum_generation_id"] == entry["generation_id"];
            let handled = matches!(mode, "append" | "append_dedup") || (mode == "overwrite" && truncates);
            if !handled {
                tracing::warn!("stream `{name}` asks for destination_sync_mode `{mode}`; Kafka topics are append-only, records are appended");
            }
            if out.find(namespace, name).is_some() {
                continue;
            }
            let (source_namespace, source_name) = (namespace.map(str::to_string), name.to_string());
            let (namespace, name) = mapping.map(namespace, name);
            let (namespace, name) = (namespace.as_deref().filter(|n| !n.is_empty()), name.as_str());
            // Data activation: the topic picked for the stream in the UI (from `discover`), as is.
            let topic = match entry["destination_object_name"].as_str() {
                Some(object) => {
                    let what = format!("stream `{}`: `destination_object_name`", describe(namespace, name));
                    naming::check_object_name(object, &what)?;
                    object.to_string()
                }
                None => naming::topic_name(topic_pattern, namespace, name),
            };
            naming::check_topic(&topic, &format!("stream `{}`", describe(namespace, name)))?;
            let dead_letter_topic = dead_letter_pattern.map(|p| naming::topic_name(p, namespace, name));
            if let Some(dlq) = &dead_letter_topic {
                naming::check_topic(dlq, &format!("the dead-letter topic of stream `{}`", describe(namespace, name)))?;
            }
            out.by_name.entry(source_name.clone()).or_default().push(out.streams.len());
            let primary_key: Vec<Vec<String>> = serde_json::from_value(entry["primary_key"].clone())
                .or_else(|_| serde_json::from_value(stream["source_defined_primary_key"].clone()))
                .unwrap_or_default();
            out.streams.push(Stream {
                namespace: namespace.map(str::to_string),
                name: name.to_string(),
                source_namespace,
                source_name,
                topic,
                dead_letter_topic,
                primary_key: primary_key.into_iter().filter(|path| !path.is_empty()).collect(),
                dedup: mode == "append_dedup",
                full_refresh: entry["sync_mode"].as_str() == Some("full_refresh"),
                truncate: truncates,
                json_schema: stream["json_schema"].clone(),
                sync_id: entry["sync_id"].as_i64(),
                generation_id: entry["generation_id"].as_i64(),
            });
        }
        Ok(out)
    }

    /// The index of a record's stream; an empty namespace counts as none.
    pub fn find(&self, namespace: Option<&str>, name: &str) -> Option<usize> {
        // A few streams are found sooner by comparing names than by hashing one (records of streams read at once
        // interleave, so this runs for most records).
        if self.streams.len() <= FEW {
            return self.streams.iter().position(|s| s.matches(namespace, name));
        }
        self.by_name.get(name)?.iter().copied().find(|&i| self.streams[i].matches(namespace, name))
    }

    /// Distinct topics, data then dead-letter, in catalog order; compacted when a stream writing there is in
    /// `append_dedup`.
    pub fn topics(&self) -> Vec<Topic<'_>> {
        let mut topics: Vec<Topic> = Vec::new();
        let data = self.streams.iter().map(|s| (s.topic.as_str(), s.dedup));
        let dead_letters = self.streams.iter().filter_map(|s| s.dead_letter_topic.as_deref().map(|t| (t, false)));
        for (name, compact) in data.chain(dead_letters) {
            match topics.iter_mut().find(|t| t.name == name) {
                Some(topic) => topic.compact |= compact,
                None => topics.push(Topic { name, compact }),
            }
        }
        topics
    }
}

/// A topic the sync writes to, as it must exist before the first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topic<'a> {
    pub name: &'a str,
    /// `cleanup.policy=compact`: the topic keeps the latest record per key.
    pub compact: bool,
}

/// `namespace.stream`, or just `stream`, for messages.
pub fn describe(namespace: Option<&str>, stream: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}.{stream}"),
        None => stream.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configured_and_plain_catalogs() {
        let configured = json!({"streams": [
            {"stream": {"name": "users", "namespace": "a", "json_schema": {}}, "destination_sync_mode": "append"},
            {"stream": {"name": "users", "namespace": "b", "json_schema": {}}, "destination_sync_mode": "append"},
            {"stream": {"name": "users", "json_schema": {}}, "destination_sync_mode": "append"},
        ]});
        let c = Catalog::from_value(&configured, "{namespace}.{stream}", None).unwrap();
        let names: Vec<&str> = c.topics().iter().map(|t| t.name).collect();
        assert_eq!(names, vec!["a_users", "b_users", "_users"]);
        assert_eq!(c.find(Some("b"), "users"), Some(1));
        assert_eq!(c.find(None, "users"), Some(2));
        assert_eq!(c.find(Some(""), "users"), Some(2));
        assert_eq!(c.find(Some("c"), "users"), None);
        // Past a few streams, by name first: the same answers.
        let many: Vec<Value> = (0..FEW + 2)
            .map(|i| {
                json!({"stream": {"name": format!("s{}", i % 6), "namespace": format!("n{i}"), "json_schema": {}},
                            "destination_sync_mode": "append"})
            })
            .collect();
        let c = Catalog::from_value(&json!({ "streams": many }), "{namespace}.{stream}", None).unwrap();
        assert_eq!(c.find(Some("n7"), "s1"), Some(7));
        assert_eq!(c.find(Some("n1"), "s1"), Some(1));
        assert_eq!(c.find(Some("n2"), "s1"), None);
        assert_eq!(c.find(None, "s1"), None);

        let plain = json!({"streams": [{"name": "exchange_rate", "json_schema": {}}]});
        let c = Catalog::from_value(&plain, "{namespace}.{stream}.test.topic", None).unwrap();
        assert_eq!(c.streams[0].topic, "_exchange_rate_test_topic");
    }

    #[test]
    fn primary_keys_dedup_and_platform_ids() {
        let configured = json!({"streams": [
            {"stream": {"name": "users", "source_defined_primary_key": [["id"]]}, "destination_sync_mode": "append"},
            {"stream": {"name": "orders"}, "primary_key": [["customer", "id"], ["n"]], "destination_sync_mode": "append_dedup",
             "sync_id": 7, "generation_id": 3},
            {"stream": {"name": "logs"}, "destination_sync_mode": "overwrite"},
        ]});
        let c = Catalog::from_value(&configured, "{stream}", None).unwrap();
        assert_eq!(c.streams[0].primary_key, vec![vec!["id".to_string()]]);
        assert!(!c.streams[0].dedup && c.streams[0].sync_id.is_none());
        let orders = &c.streams[1];
        assert_eq!(orders.primary_key, vec![vec!["customer".to_string(), "id".to_string()], vec!["n".to_string()]]);
        assert!(orders.dedup);
        assert_eq!((orders.sync_id, orders.generation_id), (Some(7), Some(3)));
        assert!(c.streams[2].primary_key.is_empty() && !c.streams[2].dedup);
    }

    #[test]
    fn a_truncate_refresh_is_a_minimum_generation_equal_to_the_generation() {
        let entry = |generation: i64, minimum: i64| {
            json!({"stream": {"name": "s"}, "destination_sync_mode": "overwrite", "generation_id": generation,
                   "minimum_generation_id": minimum})
        };
        let truncates =
            |e: Value| Catalog::from_value(&json!({"streams": [e]}), "{stream}", None).unwrap().streams[0].truncate;
        assert!(truncates(entry(4, 4)));
        assert!(!truncates(entry(4, 0)), "a merge refresh appends");
        assert!(!truncates(entry(0, 0)));
        assert!(!truncates(json!({"stream": {"name": "s"}})), "no generations at all");
    }

    #[test]
    fn dead_letter_topics_follow_their_pattern() {
        let c = json!({"streams": [{"name": "a", "namespace": "n"}, {"name": "b"}]});
        let c = Catalog::from_value(&c, "{stream}", Some("{namespace}.{stream}.dlq")).unwrap();
        assert_eq!(c.streams[0].dead_letter_topic.as_deref(), Some("n_a_dlq"));
        let names: Vec<&str> = c.topics().iter().map(|t| t.name).collect();
        assert_eq!(names, vec!["a", "b", "n_a_dlq", "_b_dlq"]);
        let shared = json!({"streams": [{"name": "a"}, {"name": "b"}]});
        let shared = Catalog::from_value(&shared, "{stream}", Some("errors")).unwrap();
        assert_eq!(shared.topics().len(), 3, "one dead-letter topic for both");
    }

    #[test]
    fn shared_topics_are_listed_once() {
        let c = json!({"streams": [{"stream": {"name": "a"}}, {"stream": {"name": "b"}, "destination_sync_mode": "append_dedup"}]});
        let c = Catalog::from_value(&c, "all.records", None).unwrap();
        assert_eq!(c.topics(), vec![Topic { name: "all_records", compact: true }]);
    }

    #[test]
    fn bad_topic_names_name_the_stream() {
        let c = json!({"streams": [{"name": "x", "namespace": "ns"}]});
        let err = Catalog::from_value(&c, "", None).err().unwrap().to_string();
        assert!(err.contains("stream `ns.x`") && err.contains("empty"), "{err}");
        let c = json!({"streams": [{"name": "y".repeat(300)}]});
        assert!(Catalog::from_value(&c, "{stream}", None).err().unwrap().to_string().contains("over Kafka's limit"));
        assert!(Catalog::from_value(&json!({}), "{stream}", None).is_err());
    }

    #[test]
    fn a_destination_object_name_is_the_topic_as_is() {
        let c = json!({"streams": [
            {"stream": {"name": "users"}, "destination_object_name": "crm.Users-v2"},
            {"stream": {"name": "orders"}, "destination_object_name": null},
        ]});
        let c = Catalog::from_value(&c, "p.{stream}", None).unwrap();
        assert_eq!((c.streams[0].topic.as_str(), c.streams[1].topic.as_str()), ("crm.Users-v2", "p_orders"));
        let bad = json!({"streams": [{"stream": {"name": "users"}, "destination_object_name": "crm/users"}]});
        let err = Catalog::from_value(&bad, "{stream}", None).err().unwrap();
        assert_eq!(err.failure_type(), crate::error::FailureType::ConfigError);
        assert!(err.to_string().starts_with("stream `users`: `destination_object_name` `crm/users` has `/`"), "{err}");
    }

    #[test]
    fn in_speed_mode_topics_follow_the_mapped_names_and_input_the_source_names() {
        let catalog = json!({"streams": [{"stream": {"name": "users", "namespace": "shop"}}]});
        let mapping: Mapping = serde_json::from_str(
            r#"{"namespaceDefinitionType":"customformat","namespaceFormat":"raw_${SOURCE_NAMESPACE}","streamPrefix":"p_"}"#,
        )
        .unwrap();
        let c = Catalog::mapped(&catalog, "{namespace}-{stream}", Some("{namespace}-{stream}-dlq"), &mapping).unwrap();
        let s = &c.streams[0];
        assert_eq!(
            (s.topic.as_str(), s.dead_letter_topic.as_deref()),
            ("raw_shop_p_users", Some("raw_shop_p_users_dlq"))
        );
        assert_eq!((s.namespace.as_deref(), s.name.as_str()), (Some("raw_shop"), "p_users"));
        assert_eq!(c.find(Some("shop"), "users"), Some(0), "records carry the source's names");
        assert_eq!(c.find(Some("raw_shop"), "p_users"), None);
    }
}
