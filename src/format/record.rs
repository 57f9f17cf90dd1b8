//! What an encoder is given of one RECORD: borrowed from the input chunk, whose UTF-8 the parse stage checked once.

/// What an encoder is given of one RECORD.
pub struct RecordIn<'a> {
    pub emitted_at: i64,
    /// The record's `data`, as the source wrote it.
    pub data: &'a str,
    /// The record's `meta`, if any (its `changes` go into Airbyte v2 metadata).
    pub meta: Option<&'a str>,
}
