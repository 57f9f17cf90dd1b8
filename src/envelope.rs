//! The Kafka message of a record, byte for byte the Java connector's: key = a fresh UUIDv4 as text; value =
//! `{"_airbyte_ab_id":<uuid>,"_airbyte_stream":<stream>,"_airbyte_emitted_at":<ms>,"_airbyte_data":<data>}`,
//! with `data` copied from the input text as it is.

use uuid::Uuid;

/// Writes envelopes into one reused buffer: nothing is allocated per record.
pub struct Encoder {
    key: [u8; 36],
    value: Vec<u8>,
}

/// The part of a value that depends only on the stream, built once per stream.
pub struct StreamPart(Vec<u8>);

impl StreamPart {
    pub fn new(stream: &str) -> StreamPart {
        let mut part = br#"","_airbyte_stream":"#.to_vec();
        serde_json::to_writer(&mut part, stream).expect("writing to a Vec cannot fail");
        part.extend_from_slice(br#","_airbyte_emitted_at":"#);
        StreamPart(part)
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder { key: [0; 36], value: Vec::with_capacity(4096) }
    }
}

impl Encoder {
    /// Encodes one record; returns (key, value), valid until the next call.
    pub fn encode(&mut self, stream: &StreamPart, emitted_at: i64, data: &[u8]) -> (&[u8], &[u8]) {
        Uuid::new_v4().hyphenated().encode_lower(&mut self.key);
        let value = &mut self.value;
        value.clear();
        value.extend_from_slice(br#"{"_airbyte_ab_id":""#);
        value.extend_from_slice(&self.key);
        value.extend_from_slice(&stream.0);
        value.extend_from_slice(itoa::Buffer::new().format(emitted_at).as_bytes());
        value.extend_from_slice(br#","_airbyte_data":"#);
        value.extend_from_slice(data);
        value.push(b'}');
        (&self.key, &self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_match_the_java_connector() {
        let mut enc = Encoder::default();
        let part = StreamPart::new("exchange_rate");
        let (key, value) = enc.encode(&part, 1602637589000, br#"{"id":1,"x":1e3}"#);
        let key = std::str::from_utf8(key).unwrap().to_string();
        let uuid = Uuid::parse_str(&key).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(key, key.to_lowercase());
        assert_eq!(
            std::str::from_utf8(value).unwrap(),
            format!(
                r#"{{"_airbyte_ab_id":"{key}","_airbyte_stream":"exchange_rate","_airbyte_emitted_at":1602637589000,"_airbyte_data":{{"id":1,"x":1e3}}}}"#
            )
        );
    }

    #[test]
    fn stream_names_are_json_escaped_like_jackson() {
        let mut enc = Encoder::default();
        let (_, value) = enc.encode(&StreamPart::new("a\"b\\c\nd/é\u{1}"), -5, b"{}");
        let text = std::str::from_utf8(value).unwrap();
        assert!(text.contains(r#""_airbyte_stream":"a\"b\\c\nd/é\u0001","_airbyte_emitted_at":-5,"#), "{text}");
        let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(parsed["_airbyte_stream"], "a\"b\\c\nd/é\u{1}");
    }

    #[test]
    fn keys_are_fresh() {
        let mut enc = Encoder::default();
        let part = StreamPart::new("s");
        let first = enc.encode(&part, 0, b"{}").0.to_vec();
        assert_ne!(first, enc.encode(&part, 0, b"{}").0);
    }
}
