//! Kafka headers of a record: the Airbyte context with `headers: true` (off by default, as the Java connector sent
//! none), and `airbyte.changes` when the format had to change a value (Avro nulling a value that fits no type).

use crate::airbyte::catalog::Stream;

/// The headers of one stream: the fixed ones once, the per-record ones refreshed for each record.
pub struct Headers {
    list: Vec<(&'static str, Vec<u8>)>,
    /// Where `airbyte.emitted_at` and `airbyte.ab_id` are, with `headers: true`.
    context: Option<(usize, usize)>,
    /// The headers before any per-record `airbyte.changes`.
    fixed: usize,
}

impl Headers {
    /// `context`: the Airbyte context headers (`headers: true`).
    pub fn new(stream: &Stream, context: bool) -> Headers {
        if !context {
            return Headers { list: Vec::new(), context: None, fixed: 0 };
        }
        let mut list: Vec<(&'static str, Vec<u8>)> = vec![("airbyte.stream", stream.name.clone().into_bytes())];
        if let Some(namespace) = &stream.namespace {
            list.push(("airbyte.namespace", namespace.clone().into_bytes()));
        }
        let emitted_at = list.len();
        list.push(("airbyte.emitted_at", Vec::new()));
        let ab_id = list.len();
        list.push(("airbyte.ab_id", Vec::new()));
        if let Some(sync_id) = stream.sync_id {
            list.push(("airbyte.sync_id", sync_id.to_string().into_bytes()));
        }
        if let Some(generation_id) = stream.generation_id {
            list.push(("airbyte.generation_id", generation_id.to_string().into_bytes()));
        }
        let fixed = list.len();
        Headers { list, context: Some((emitted_at, ab_id)), fixed }
    }

    /// The headers of one record; `changes`: its `airbyte.changes` (a JSON array), if any.
    pub fn for_record(
        &mut self,
        emitted_at: i64,
        ab_id: &[u8],
        changes: Option<Vec<u8>>,
    ) -> &[(&'static str, Vec<u8>)] {
        self.list.truncate(self.fixed);
        if let Some((at, id)) = self.context {
            let value = &mut self.list[at].1;
            value.clear();
            value.extend_from_slice(itoa::Buffer::new().format(emitted_at).as_bytes());
            let value = &mut self.list[id].1;
            value.clear();
            value.extend_from_slice(ab_id);
        }
        if let Some(changes) = changes {
            self.list.push(("airbyte.changes", changes));
        }
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(headers: &[(&'static str, Vec<u8>)]) -> Vec<(&'static str, String)> {
        headers.iter().map(|(k, v)| (*k, String::from_utf8(v.clone()).unwrap())).collect()
    }

    #[test]
    fn context_headers() {
        let stream =
            Stream { name: "users".into(), namespace: Some("shop".into()), sync_id: Some(9), ..Stream::default() };
        let mut h = Headers::new(&stream, true);
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
        let plain = Headers::new(&Stream { name: "s".into(), ..Stream::default() }, true);
        assert_eq!(
            plain.list.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            vec!["airbyte.stream", "airbyte.emitted_at", "airbyte.ab_id"]
        );
    }

    #[test]
    fn changes_come_and_go_per_record() {
        let mut h = Headers::new(&Stream { name: "s".into(), ..Stream::default() }, false);
        assert!(h.for_record(1, b"a", None).is_empty());
        assert_eq!(shown(h.for_record(1, b"a", Some(b"[1]".to_vec()))), vec![("airbyte.changes", "[1]".into())]);
        assert!(h.for_record(1, b"a", None).is_empty());
    }
}
