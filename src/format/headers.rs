//! Kafka headers of a record: the Airbyte context with `headers: true` (off by default, as the Java connector sent
//! none), CloudEvents' attributes with `cloudevents: true` (the Kafka protocol binding's binary mode: `ce_*` and
//! `content-type`), and `airbyte.changes` when the format had to change a value (Avro nulling a value that fits no
//! type).

use crate::airbyte::catalog::Stream;
use crate::config::encoding::HeaderSettings;
use crate::kafka::record::Header;
use crate::naming;
use std::io::Write as _;

/// CloudEvents' attributes of a stream's events besides the per-record `ce_id` and `ce_time`.
#[derive(Clone)]
pub struct CloudEvents {
    /// `ce_source`.
    pub source: String,
    /// `content-type`: the value format's media type.
    pub content_type: &'static str,
}

/// The headers of one stream: the fixed ones once, the per-record ones refreshed for each record.
#[derive(Clone)]
pub struct Headers {
    list: Vec<Header>,
    /// Where `airbyte.emitted_at` and `airbyte.ab_id` are, with `headers: true`.
    context: Option<(usize, usize)>,
    /// Where `ce_id` and `ce_time` are, with `cloudevents: true`.
    cloudevents: Option<(usize, usize)>,
    /// The headers before any per-record `airbyte.changes`.
    fixed: usize,
}

impl Headers {
    /// `settings`: the Airbyte context headers (`headers: true`) or the user's (a map); `cloudevents`:
    /// CloudEvents' (`cloudevents: true`).
    pub fn new(stream: &Stream, settings: &HeaderSettings, cloudevents: Option<CloudEvents>) -> Headers {
        let mut headers = Headers { list: Vec::new(), context: None, cloudevents: None, fixed: 0 };
        match settings {
            HeaderSettings::Context(true) => headers.context(stream),
            HeaderSettings::Context(false) => {}
            HeaderSettings::Templates(templates) => {
                for (name, template) in templates {
                    let value = naming::fill(template, stream.namespace.as_deref(), &stream.name);
                    headers.list.push((name.clone().into(), value.into_bytes()));
                }
            }
        }
        if let Some(cloudevents) = cloudevents {
            headers.cloudevents(stream, cloudevents);
        }
        headers.fixed = headers.list.len();
        headers
    }

    /// Whether a record's headers carry its id (`airbyte.ab_id`, `ce_id`).
    pub fn use_id(&self) -> bool {
        self.context.is_some() || self.cloudevents.is_some()
    }

    /// CloudEvents 1.0: `ce_type` names the stream (`io.airbyte.record.<namespace>.<stream>`), `ce_id` is the
    /// record's id, `ce_time` its `emitted_at`.
    fn cloudevents(&mut self, stream: &Stream, cloudevents: CloudEvents) {
        let list = &mut self.list;
        list.push(("ce_specversion".into(), b"1.0".to_vec()));
        let id = list.len();
        list.push(("ce_id".into(), Vec::new()));
        list.push(("ce_source".into(), cloudevents.source.into_bytes()));
        let kind = match &stream.namespace {
            Some(namespace) => format!("io.airbyte.record.{namespace}.{}", stream.name),
            None => format!("io.airbyte.record.{}", stream.name),
        };
        list.push(("ce_type".into(), kind.into_bytes()));
        let time = list.len();
        list.push(("ce_time".into(), Vec::new()));
        list.push(("content-type".into(), cloudevents.content_type.as_bytes().to_vec()));
        self.cloudevents = Some((id, time));
    }

    fn context(&mut self, stream: &Stream) {
        let list = &mut self.list;
        list.push(("airbyte.stream".into(), stream.name.clone().into_bytes()));
        if let Some(namespace) = &stream.namespace {
            list.push(("airbyte.namespace".into(), namespace.clone().into_bytes()));
        }
        let emitted_at = list.len();
        list.push(("airbyte.emitted_at".into(), Vec::new()));
        let ab_id = list.len();
        list.push(("airbyte.ab_id".into(), Vec::new()));
        if let Some(sync_id) = stream.sync_id {
            list.push(("airbyte.sync_id".into(), sync_id.to_string().into_bytes()));
        }
        if let Some(generation_id) = stream.generation_id {
            list.push(("airbyte.generation_id".into(), generation_id.to_string().into_bytes()));
        }
        self.context = Some((emitted_at, ab_id));
    }

    /// The headers of one record; `changes`: its `airbyte.changes` (a JSON array), if any.
    pub fn for_record(&mut self, emitted_at: i64, ab_id: &[u8], changes: Option<Vec<u8>>) -> &[Header] {
        self.list.truncate(self.fixed);
        if let Some((at, id)) = self.context {
            let value = &mut self.list[at].1;
            value.clear();
            value.extend_from_slice(itoa::Buffer::new().format(emitted_at).as_bytes());
            let value = &mut self.list[id].1;
            value.clear();
            value.extend_from_slice(ab_id);
        }
        if let Some((id, time)) = self.cloudevents {
            let value = &mut self.list[id].1;
            value.clear();
            value.extend_from_slice(ab_id);
            let value = &mut self.list[time].1;
            value.clear();
            // RFC 3339 in UTC with milliseconds; an `emitted_at` out of chrono's range leaves the attribute empty.
            if let Some(at) = chrono::DateTime::from_timestamp_millis(emitted_at) {
                let _ = write!(value, "{}", at.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
            }
        }
        if let Some(changes) = changes {
            self.list.push(("airbyte.changes".into(), changes));
        }
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(headers: &[Header]) -> Vec<(&str, String)> {
        headers.iter().map(|(k, v)| (k.as_ref(), String::from_utf8(v.clone()).unwrap())).collect()
    }

    #[test]
    fn context_headers() {
        let stream =
            Stream { name: "users".into(), namespace: Some("shop".into()), sync_id: Some(9), ..Stream::default() };
        let mut h = Headers::new(&stream, &HeaderSettings::Context(true), None);
        assert_eq!(
            shown(h.for_record(1700000000000, b"id-1", None)),
            vec![
                ("airbyte.stream", "users".into()),
                ("airbyte.namespace", "shop".into()),
                ("airbyte.emitted_at", "1700000000000".into()),
                ("airbyte.ab_id", "id-1".into()),
                ("airbyte.sync_id", "9".into()),
            ]
        );
        let plain =
            Headers::new(&Stream { name: "s".into(), ..Stream::default() }, &HeaderSettings::Context(true), None);
        assert_eq!(
            plain.list.iter().map(|(k, _)| k.as_ref()).collect::<Vec<_>>(),
            vec!["airbyte.stream", "airbyte.emitted_at", "airbyte.ab_id"]
        );
    }

    #[test]
    fn cloudevents_attributes_and_the_context_together() {
        let stream = Stream { name: "users".into(), namespace: Some("shop".into()), ..Stream::default() };
        let ce = CloudEvents { source: "/airbyte/shop/users".into(), content_type: "application/json" };
        let mut h = Headers::new(&stream, &HeaderSettings::Context(false), Some(ce));
        assert_eq!(
            shown(h.for_record(1_700_000_000_123, b"id-1", None)),
            vec![
                ("ce_specversion", "1.0".into()),
                ("ce_id", "id-1".into()),
                ("ce_source", "/airbyte/shop/users".into()),
                ("ce_type", "io.airbyte.record.shop.users".into()),
                ("ce_time", "2023-11-14T22:13:20.123Z".into()),
                ("content-type", "application/json".into()),
            ]
        );
        let ce = CloudEvents { source: "/s".into(), content_type: "application/avro" };
        let mut both =
            Headers::new(&Stream { name: "s".into(), ..Stream::default() }, &HeaderSettings::Context(true), Some(ce));
        let names: Vec<&str> =
            both.for_record(0, b"id-2", Some(b"[]".to_vec())).iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(
            names,
            [
                "airbyte.stream",
                "airbyte.emitted_at",
                "airbyte.ab_id",
                "ce_specversion",
                "ce_id",
                "ce_source",
                "ce_type",
                "ce_time",
                "content-type",
                "airbyte.changes"
            ]
        );
        assert_eq!(shown(both.for_record(0, b"id-3", None))[7], ("ce_time", "1970-01-01T00:00:00.000Z".into()));
    }

    #[test]
    fn the_users_headers_are_filled_in_per_stream() {
        let templates = HeaderSettings::Templates(
            [("route".to_string(), "{namespace}/{stream}".to_string()), ("team".to_string(), "crm".to_string())].into(),
        );
        let users = Stream { name: "users".into(), namespace: Some("shop".into()), ..Stream::default() };
        let mut h = Headers::new(&users, &templates, None);
        assert_eq!(shown(h.for_record(1, b"a", None)), vec![("route", "shop/users".into()), ("team", "crm".into())]);
        let mut h = Headers::new(&Stream { name: "events".into(), ..Stream::default() }, &templates, None);
        assert_eq!(shown(h.for_record(1, b"a", None))[0], ("route", "/events".into()));
    }

    #[test]
    fn changes_come_and_go_per_record() {
        let mut h =
            Headers::new(&Stream { name: "s".into(), ..Stream::default() }, &HeaderSettings::Context(false), None);
        assert!(h.for_record(1, b"a", None).is_empty());
        assert_eq!(shown(h.for_record(1, b"a", Some(b"[1]".to_vec()))), vec![("airbyte.changes", "[1]".into())]);
        assert!(h.for_record(1, b"a", None).is_empty());
    }
}
