//! Why one record cannot be made into a message. Each is about that record alone (the failure policy's `Record`
//! scope): with `record_errors: dead_letter` it is rejected and the sync goes on, otherwise the sync fails.

/// What a field is read for, to name it in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Key,
    Timestamp,
    /// The field `raw` sends as the value.
    Value,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Key => "key",
            Role::Timestamp => "timestamp",
            Role::Value => "value",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("the record's data cannot be read: {0}")]
    Unreadable(String),
    #[error("{0} field `{1}` is missing")]
    Missing(Role, String),
    #[error("{0} field `{1}` is null")]
    Null(Role, String),
    #[error("key field `{0}` is not a scalar (string, number or boolean)")]
    NotScalar(String),
    #[error("timestamp field `{0}` is not a date, date-time or epoch milliseconds: {1}")]
    NotATimestamp(String, String),
    #[error("the record's data is not a JSON object, which an Avro record needs")]
    NotAnObject,
    /// A value that does not fit the type the stream's schema declares for it (`connect_json`).
    #[error("{0}")]
    Unfit(String),
}

impl From<EncodeError> for crate::error::Error {
    fn from(e: EncodeError) -> Self {
        crate::error::Error::Record(e.to_string())
    }
}
