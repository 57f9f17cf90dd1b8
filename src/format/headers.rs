//! `headers: true`: the record's Airbyte context as Kafka headers (off by default, as the Java connector sent none).

use crate::airbyte::catalog::Stream;

/// The headers of one stream: the fixed ones once, the per-record ones refreshed for each record.
pub struct Headers {
    list: Vec<(&'static str, Vec<u8>)>,
    emitted_at: usize,
    ab_id: usize,
}

impl Headers {
    pub fn new(stream: &Stream) -> Headers {
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
        Headers { list, emitted_at, ab_id }
    }

    pub fn for_record(&mut self, emitted_at: i64, ab_id: &[u8]) -> &[(&'static str, Vec<u8>)] {
        let value = &mut self.list[self.emitted_at].1;
        value.clear();
        value.extend_from_slice(itoa::Buffer::new().format(emitted_at).as_bytes());
        let value = &mut self.list[self.ab_id].1;
        value.clear();
        value.extend_from_slice(ab_id);
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_headers() {
        let stream =
            Stream { name: "users".into(), namespace: Some("shop".into()), sync_id: Some(9), ..Stream::default() };
        let mut h = Headers::new(&stream);
        let got: Vec<(&str, String)> = h
            .for_record(1700000000000, b"id-1")
            .iter()
            .map(|(k, v)| (*k, String::from_utf8(v.clone()).unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("airbyte.stream", "users".into()),
                ("airbyte.namespace", "shop".into()),
                ("airbyte.emitted_at", "1700000000000".into()),
                ("airbyte.ab_id", "id-1".into()),
                ("airbyte.sync_id", "9".into()),
            ]
        );
        let plain = Headers::new(&Stream { name: "s".into(), ..Stream::default() });
        assert_eq!(
            plain.list.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            vec!["airbyte.stream", "airbyte.emitted_at", "airbyte.ab_id"]
        );
    }
}
