//! One error type for the whole connector. Each error knows the Airbyte `failure_type` it maps to, so whoever
//! reports it (TRACE on `write`/`discover`, CONNECTION_STATUS on `check`) need not guess, and keeps its source.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::Serialize;

/// Airbyte's `failure_type` of a TRACE ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureType {
    /// The user must change the config or the cluster's permissions: retrying cannot help.
    ConfigError,
    /// The broker is unreachable or slow: the platform may retry the sync.
    TransientError,
    /// A bug, malformed input, or an unexpected condition: neither of the above.
    SystemError,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    System(String),
    /// The input stream itself is malformed (not JSON, RECORD without stream/data, unknown stream).
    #[error("input line {line}: {reason}")]
    Input { line: u64, reason: String },
    /// Something went wrong with the record of one input line.
    #[error("input line {line}: {source}")]
    Line {
        line: u64,
        #[source]
        source: Box<Error>,
    },
    /// librdkafka refused or failed something; the failure type follows its error code.
    #[error("{context}: {}", describe(.source))]
    Kafka {
        context: String,
        #[source]
        source: KafkaError,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config field `protocol.sasl_jaas_config` {0}")]
    Jaas(#[from] crate::config::jaas::JaasError),
    #[error(transparent)]
    TopicName(#[from] crate::naming::TopicNameError),
}

impl Error {
    pub fn failure_type(&self) -> FailureType {
        match self {
            Error::Config(_) | Error::Jaas(_) | Error::TopicName(_) => FailureType::ConfigError,
            Error::Transient(_) => FailureType::TransientError,
            Error::System(_) | Error::Input { .. } | Error::Io { .. } => FailureType::SystemError,
            Error::Kafka { source, .. } => source.rdkafka_error_code().map_or(FailureType::SystemError, classify),
            Error::Line { source, .. } => source.failure_type(),
        }
    }

    /// Whether the platform may retry the sync as it is.
    pub fn is_transient(&self) -> bool {
        self.failure_type() == FailureType::TransientError
    }

    pub fn kafka(context: impl Into<String>, source: KafkaError) -> Error {
        Error::Kafka { context: context.into(), source }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    /// The librdkafka error code behind this error, if there is one.
    pub fn kafka_code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            Error::Kafka { source, .. } => source.rdkafka_error_code(),
            Error::Line { source, .. } => source.kafka_code(),
            _ => None,
        }
    }

    /// This error, about the record of input line `line`.
    pub fn at_line(self, line: u64) -> Error {
        Error::Line { line, source: Box::new(self) }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// librdkafka's words for an error, with a hint where the user has something to change.
pub fn describe(err: &KafkaError) -> String {
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => format!(
            "{err}; the message is larger than the producer's maximum message size: raise `max_request_size` \
             (and the topic's max.message.bytes)"
        ),
        Some(RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch) => {
            format!(
                "{err}; another writer with the same transactional.id took over (a newer sync of this connection), \
                 so this one stops without committing"
            )
        }
        _ => err.to_string(),
    }
}

/// Which Airbyte failure type a broker or client error code belongs to. The one place this is decided.
pub fn classify(code: RDKafkaErrorCode) -> FailureType {
    use RDKafkaErrorCode::*;
    match code {
        TopicAuthorizationFailed
        | ClusterAuthorizationFailed
        | GroupAuthorizationFailed
        | TransactionalIdAuthorizationFailed
        | DelegationTokenAuthorizationFailed
        | SaslAuthenticationFailed
        | Authentication
        | UnsupportedSASLMechanism
        | IllegalSASLState
        | MessageSizeTooLarge
        | MessageBatchTooLarge
        | InvalidMessageSize
        | InvalidRecord
        | PolicyViolation
        | InvalidTopic
        | InvalidRequiredAcks
        | InvalidConfig
        | InvalidArgument
        | InvalidReplicationFactor
        | InvalidPartitions
        | UnknownTopic
        | UnknownPartition
        | UnsupportedFeature
        | UnsupportedVersion
        // A name that does not resolve is far more often a typo in `bootstrap_servers` than a DNS outage.
        | Resolve
        | SSL => FailureType::ConfigError,
        BrokerTransportFailure
        | AllBrokersDown
        | MessageTimedOut
        | RequestTimedOut
        | OperationTimedOut
        | NetworkException
        | LeaderNotAvailable
        | NotLeaderForPartition
        | NotEnoughReplicas
        | NotEnoughReplicasAfterAppend
        | NotCoordinator
        | CoordinatorNotAvailable
        | CoordinatorLoadInProgress
        | BrokerNotAvailable
        | KafkaStorageError
        | UnknownTopicOrPartition
        | TimedOutQueue
        | QueueFull
        | WaitingForCoordinator
        | ThrottlingQuotaExceeded
        // Another sync took over the transactional id: this one is a zombie; the newer one goes on.
        | Fenced
        | ProducerFenced
        | InvalidProducerEpoch => FailureType::TransientError,
        _ => FailureType::SystemError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_are_classified_by_their_code() {
        let e = Error::kafka(
            "delivery to topic `t` failed",
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
        );
        assert_eq!(e.failure_type(), FailureType::ConfigError);
        assert!(e.to_string().contains("max_request_size"), "{e}");
        let e = Error::kafka("x", KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut));
        assert!(e.is_transient());
        let e = Error::kafka("x", KafkaError::Global(RDKafkaErrorCode::Resolve));
        assert_eq!(e.failure_type(), FailureType::ConfigError);
        let e = Error::kafka("x", KafkaError::Global(RDKafkaErrorCode::Fail));
        assert_eq!(e.failure_type(), FailureType::SystemError);
    }

    #[test]
    fn sources_are_kept() {
        use std::error::Error as _;
        let e = Error::io("cannot write to stdout", std::io::Error::other("pipe closed"));
        assert_eq!(e.source().unwrap().to_string(), "pipe closed");
        assert_eq!(e.to_string(), "cannot write to stdout: pipe closed");
    }
}
