//! What an encoder is given of one RECORD: borrowed from the input chunk, checked as UTF-8 by the parse stage.

use super::error::EncodeError;

/// What an encoder is given of one RECORD.
pub struct RecordIn<'a> {
    pub emitted_at: i64,
    /// The record's `data`, as the source wrote it (UTF-8: the parse stage checked it).
    pub data: &'a [u8],
    /// The record's `meta`, if any (its `changes` go into Airbyte v2 metadata).
    pub meta: Option<&'a [u8]>,
}

impl RecordIn<'_> {
    pub fn text(&self) -> std::result::Result<&str, EncodeError> {
        std::str::from_utf8(self.data).map_err(|e| EncodeError::Unreadable(format!("not UTF-8: {e}")))
    }
}
