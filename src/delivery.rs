//! The delivery seam between the producer and whoever keeps track of what it delivered: the producer tells a
//! [`DeliveryListener`] the fate of each record; the write path's acknowledge stage (or `check`'s single test
//! message) listens. Neither side knows the other.

use crate::error::Error;
use rdkafka::util::IntoOpaque;

/// Told the fate of every record handed to the producer, exactly once, on whichever thread serves
/// librdkafka's reports (inside `serve_reports`, `flush`, and transaction calls).
pub trait DeliveryListener: Send + Sync + 'static {
    /// What the caller attaches to each record to recognise its report.
    type Token: IntoOpaque;
    fn delivered(&self, token: Self::Token, outcome: std::result::Result<(), Undelivered>);
}

/// A record librdkafka could not deliver: why, and its bytes (for a dead-letter topic).
pub struct Undelivered {
    pub error: Error,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}
