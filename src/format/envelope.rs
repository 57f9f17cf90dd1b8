//! The Java connector's value, byte for byte:
//! `{"_airbyte_ab_id":<uuid>,"_airbyte_stream":<stream>,"_airbyte_emitted_at":<ms>,"_airbyte_data":<data>}`,
//! with `data` copied from the input text as it is.

use super::record::RecordIn;

#[derive(Clone)]
pub struct Envelope {
    /// The part that depends only on the stream, built once.
    stream_part: Vec<u8>,
    value: Vec<u8>,
}

impl Envelope {
    pub fn new(stream: &str) -> Envelope {
        let mut part = br#"","_airbyte_stream":"#.to_vec();
        serde_json::to_writer(&mut part, stream).expect("writing to a Vec cannot fail");
        part.extend_from_slice(br#","_airbyte_emitted_at":"#);
        Envelope { stream_part: part, value: Vec::with_capacity(4096) }
    }

    /// The value of one record whose id is `id`; valid until the next call.
    pub fn encode(&mut self, id: &[u8], record: &RecordIn<'_>) -> &[u8] {
        let value = &mut self.value;
        value.clear();
        value.extend_from_slice(br#"{"_airbyte_ab_id":""#);
        value.extend_from_slice(id);
        value.extend_from_slice(&self.stream_part);
        value.extend_from_slice(itoa::Buffer::new().format(record.emitted_at).as_bytes());
        value.extend_from_slice(br#","_airbyte_data":"#);
        value.extend_from_slice(record.data.as_bytes());
        value.push(b'}');
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_match_the_java_connector() {
        let mut env = Envelope::new("exchange_rate");
        let id = b"5b8e1c5e-8f0a-4c61-9d4e-3a2f1b0c9d8e";
        let value = env.encode(id, &RecordIn { emitted_at: 1602637589000, data: r#"{"id":1,"x":1e3}"#, meta: None });
        assert_eq!(
            std::str::from_utf8(value).unwrap(),
            r#"{"_airbyte_ab_id":"5b8e1c5e-8f0a-4c61-9d4e-3a2f1b0c9d8e","_airbyte_stream":"exchange_rate","_airbyte_emitted_at":1602637589000,"_airbyte_data":{"id":1,"x":1e3}}"#
        );
    }

    #[test]
    fn stream_names_are_json_escaped_like_jackson() {
        let mut env = Envelope::new("a\"b\\c\nd/é\u{1}");
        let value = env.encode(b"id", &RecordIn { emitted_at: -5, data: "{}", meta: None });
        let text = std::str::from_utf8(value).unwrap();
        assert!(text.contains(r#""_airbyte_stream":"a\"b\\c\nd/é\u0001","_airbyte_emitted_at":-5,"#), "{text}");
        let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(parsed["_airbyte_stream"], "a\"b\\c\nd/é\u{1}");
    }
}
