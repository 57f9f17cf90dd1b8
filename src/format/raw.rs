//! `raw`: the value is the bytes of one field of the record, for payloads a source already serialised (a string as
//! UTF-8, or base64 text decoded). A record whose field is missing, null or not a string is a rejected record
//! (`record_errors`), never a message with an empty value.

use super::error::{EncodeError, Role};
use super::fields::{self, FieldPath};
use base64::Engine as _;

#[derive(Clone)]
pub struct Raw {
    field: [FieldPath; 1],
    base64: bool,
    out: Vec<u8>,
}

impl Raw {
    /// `field`: a path as `key.fields` takes them (dots between names, `\.` a dot inside one).
    pub fn new(field: &str, base64: bool) -> Result<Raw, String> {
        Ok(Raw { field: [FieldPath::parse(field)?], base64, out: Vec::new() })
    }

    pub fn encode(&mut self, data: &str) -> Result<&[u8], EncodeError> {
        let path = self.field[0].display();
        let [found] = fields::lookup(data, &self.field)?[..] else { unreachable!("one path, one value") };
        let raw = found.ok_or_else(|| EncodeError::Missing(Role::Value, path.clone()))?;
        let text: Option<String> = serde_json::from_str(raw.get())
            .map_err(|_| EncodeError::Unfit(format!("value field `{path}` is not a string, which `raw` sends")))?;
        let text = text.ok_or_else(|| EncodeError::Null(Role::Value, path.clone()))?;
        self.out.clear();
        if self.base64 {
            base64::engine::general_purpose::STANDARD
                .decode_vec(text.trim(), &mut self.out)
                .map_err(|e| EncodeError::Unfit(format!("value field `{path}` is not base64 ({e})")))?;
        } else {
            self.out.extend_from_slice(text.as_bytes());
        }
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_bytes_or_a_rejected_record() {
        let mut raw = Raw::new("msg.body", false).unwrap();
        assert_eq!(raw.encode(r#"{"msg":{"body":"h\u00e9\n"}}"#).unwrap(), "hé\n".as_bytes());
        assert_eq!(raw.encode(r#"{"msg":{"body":""}}"#).unwrap(), b"", "an empty string is the field's value");
        let refused = |raw: &mut Raw, data: &str| raw.encode(data).unwrap_err().to_string();
        assert_eq!(refused(&mut raw, r#"{"msg":{}}"#), "value field `msg.body` is missing");
        assert_eq!(refused(&mut raw, r#"{"msg":{"body":null}}"#), "value field `msg.body` is null");
        assert!(refused(&mut raw, r#"{"msg":{"body":1}}"#).contains("is not a string"));
        let mut decoded = Raw::new("b", true).unwrap();
        assert_eq!(decoded.encode(r#"{"b":"AAEC/w=="}"#).unwrap(), [0, 1, 2, 255]);
        assert!(refused(&mut decoded, r#"{"b":"%%"}"#).contains("is not base64"));
        assert!(Raw::new("a..b", false).is_err());
    }
}
