//! One error type for the whole connector. Each error knows the Airbyte `failure_type` it maps to, so
//! whoever reports it (TRACE on `write`/`discover`, CONNECTION_STATUS on `check`) need not guess.

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
    /// A bug or an unexpected condition: neither of the above.
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
    #[error("{0}")]
    Input(String),
}

impl Error {
    pub fn failure_type(&self) -> FailureType {
        match self {
            Error::Config(_) => FailureType::ConfigError,
            Error::Transient(_) => FailureType::TransientError,
            Error::System(_) | Error::Input(_) => FailureType::SystemError,
        }
    }

    /// Wraps a Kafka error with what we were doing, classified by the broker's error code.
    pub fn kafka(context: impl std::fmt::Display, err: &KafkaError) -> Error {
        let message = format!("{context}: {}", describe(err));
        match err.rdkafka_error_code().map(classify) {
            Some(FailureType::ConfigError) => Error::Config(message),
            Some(FailureType::TransientError) => Error::Transient(message),
            _ => Error::System(message),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// librdkafka's words for an error, without the Rust enum wrapper noise.
pub fn describe(err: &KafkaError) -> String {
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => format!(
            "{err}; the message is larger than the producer's maximum message size: raise `max_request_size` \
             (and the topic's max.message.bytes)"
        ),
        _ => err.to_string(),
    }
}

/// Which Airbyte failure type a broker or client error code belongs to.
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
        | SSL => FailureType::ConfigError,
        BrokerTransportFailure
        | AllBrokersDown
        | Resolve
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
        | ThrottlingQuotaExceeded => FailureType::TransientError,
        _ => FailureType::SystemError,
    }
}
