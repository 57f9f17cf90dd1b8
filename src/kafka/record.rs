//! What the producer sends: one Kafka message, borrowed from whoever made it (an encoder's buffers, a dead
//! letter) until it is handed to librdkafka, which copies it.

pub struct OutgoingRecord<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    /// `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'static str, Vec<u8>)],
    /// Epoch milliseconds; `None` lets the producer stamp it (Java's behaviour).
    pub timestamp: Option<i64>,
}
