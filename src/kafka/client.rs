//! Our side of every librdkafka client: its logs become ours, and the errors it reports on its own are kept to
//! explain a later timeout.

use super::diagnostics::Diagnostics;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;

/// The client context: logs and diagnostics, plus whatever the client kind needs (`extra`: the delivery
/// listener of a producer).
pub struct Context<X> {
    pub diagnostics: Diagnostics,
    pub extra: X,
}

impl<X> Context<X> {
    pub fn new(extra: X) -> Context<X> {
        Context { diagnostics: Diagnostics::default(), extra }
    }
}

impl<X: Send + Sync + 'static> ClientContext for Context<X> {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_to_tracing(level, facility, message);
        // Error logs carry the concrete cause ("Connection refused") that error events summarise.
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            let reason = message.split_once("]: ").map_or(message, |(_, rest)| rest);
            self.diagnostics.push(None, reason);
        }
    }

    /// librdkafka also logs these; they are kept to explain a later timeout.
    fn error(&self, error: KafkaError, reason: &str) {
        self.diagnostics.push(error.rdkafka_error_code(), reason);
    }
}

fn log_to_tracing(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!("librdkafka {facility}: {message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!("librdkafka {facility}: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!("librdkafka {facility}: {message}"),
        RDKafkaLogLevel::Debug => tracing::debug!("librdkafka {facility}: {message}"),
    }
}
