//! The configured catalog, turned once into routes: which topic each (namespace, stream) goes to.

use crate::error::{Error, Result};
use crate::naming;
use serde_json::Value;
use std::collections::HashMap;

pub struct Route {
    pub namespace: Option<String>,
    pub stream: String,
    pub topic: String,
}

impl Route {
    pub fn matches(&self, namespace: Option<&str>, stream: &str) -> bool {
        self.stream == stream && self.namespace.as_deref() == namespace.filter(|n| !n.is_empty())
    }
}

pub struct Routes {
    pub routes: Vec<Route>,
    by_stream: HashMap<String, Vec<usize>>,
}

impl Routes {
    pub fn load(path: &str, topic_pattern: &str) -> Result<Routes> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read the catalog file {path}: {e}")))?;
        let catalog: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("the catalog file {path} is not valid JSON: {e}")))?;
        Routes::from_catalog(&catalog, topic_pattern)
    }

    /// Accepts a ConfiguredAirbyteCatalog, and also a plain AirbyteCatalog (streams without the `stream` wrapper).
    pub fn from_catalog(catalog: &Value, topic_pattern: &str) -> Result<Routes> {
        let streams =
            catalog["streams"].as_array().ok_or_else(|| Error::Config("the catalog has no `streams` array".into()))?;
        let mut routes = Routes { routes: Vec::new(), by_stream: HashMap::new() };
        for (i, entry) in streams.iter().enumerate() {
            let stream = if entry["stream"].is_object() { &entry["stream"] } else { entry };
            let name =
                stream["name"].as_str().ok_or_else(|| Error::Config(format!("catalog stream #{i} has no `name`")))?;
            let namespace = stream["namespace"].as_str().filter(|n| !n.is_empty());
            if let Some(mode) = entry["destination_sync_mode"].as_str().filter(|m| *m != "append") {
                tracing::warn!("stream `{name}` asks for destination_sync_mode `{mode}`; Kafka topics are append-only, records are appended");
            }
            if routes.find(namespace, name).is_some() {
                continue;
            }
            let topic = naming::topic_name(topic_pattern, namespace, name);
            naming::check_topic(&topic, &format!("stream `{}`", describe(namespace, name))).map_err(Error::Config)?;
            routes.by_stream.entry(name.to_string()).or_default().push(routes.routes.len());
            routes.routes.push(Route { namespace: namespace.map(str::to_string), stream: name.to_string(), topic });
        }
        Ok(routes)
    }

    /// The route of a record; an empty namespace counts as none.
    pub fn find(&self, namespace: Option<&str>, stream: &str) -> Option<usize> {
        self.by_stream.get(stream)?.iter().copied().find(|&i| self.routes[i].matches(namespace, stream))
    }

    /// Distinct topics, in catalog order.
    pub fn topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = Vec::new();
        for route in &self.routes {
            if !topics.contains(&route.topic.as_str()) {
                topics.push(&route.topic);
            }
        }
        topics
    }
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
        let r = Routes::from_catalog(&configured, "{namespace}.{stream}").unwrap();
        assert_eq!(r.topics(), vec!["a_users", "b_users", "_users"]);
        assert_eq!(r.find(Some("b"), "users"), Some(1));
        assert_eq!(r.find(None, "users"), Some(2));
        assert_eq!(r.find(Some(""), "users"), Some(2));
        assert_eq!(r.find(Some("c"), "users"), None);

        let plain = json!({"streams": [{"name": "exchange_rate", "json_schema": {}}]});
        let r = Routes::from_catalog(&plain, "{namespace}.{stream}.test.topic").unwrap();
        assert_eq!(r.routes[0].topic, "_exchange_rate_test_topic");
    }

    #[test]
    fn shared_topics_are_listed_once() {
        let c = json!({"streams": [{"name": "a"}, {"name": "b"}]});
        assert_eq!(Routes::from_catalog(&c, "all.records").unwrap().topics(), vec!["all_records"]);
    }

    #[test]
    fn bad_topic_names_name_the_stream() {
        let c = json!({"streams": [{"name": "x", "namespace": "ns"}]});
        let err = Routes::from_catalog(&c, "").err().unwrap().to_string();
        assert!(err.contains("stream `ns.x`") && err.contains("empty"), "{err}");
        let c = json!({"streams": [{"name": "y".repeat(300)}]});
        assert!(Routes::from_catalog(&c, "{stream}").err().unwrap().to_string().contains("over Kafka's limit"));
        assert!(Routes::from_catalog(&json!({}), "{stream}").is_err());
    }
}
