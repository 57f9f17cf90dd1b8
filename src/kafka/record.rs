//! What the producer sends: one Kafka message, borrowed from whoever made it (an encoder's buffers, a dead
//! letter) until it is handed to librdkafka, which copies it.

/// A Kafka header: its name (mostly a constant, a user's own name otherwise) and value.
pub type Header = (std::borrow::Cow<'static, str>, Vec<u8>);

pub struct OutgoingRecord<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    /// `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
    /// Epoch milliseconds; `None` lets the producer stamp it (Java's behaviour).
    pub timestamp: Option<i64>,
}
