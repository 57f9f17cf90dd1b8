//! One error type for the whole connector, and the one failure policy: [`Error::failure`] says, for any error,
//! which Airbyte `failure_type` it is, what it concerns (one record, the cluster, the user's settings), whether
//! trying again can help and whether waiting for the cluster can. Dead-letter eligibility, retries, the TRACE and
//! the diagnosis of a timeout are all derived from it, nowhere else.

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

/// What a failure concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One record alone (too large, invalid, not encodable): with `record_errors: dead_letter` it is rejected and
    /// the sync goes on; otherwise the user must change the data or the limits.
    Record,
    /// The cluster or the path to it (unreachable, slow, fenced by a newer writer): the platform may retry.
    Infrastructure,
    /// The user's settings or the cluster's permissions: only a change can help.
    Config,
    /// Malformed input or a bug.
    System,
}

/// The failure policy's verdict on one error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub scope: Scope,
    /// Trying the same call again may succeed.
    pub retriable: bool,
    /// Waiting longer for the cluster cannot help (credentials, names, certificates, or nothing answers at all).
    pub hopeless: bool,
}

impl Failure {
    const fn of(scope: Scope, retriable: bool, hopeless: bool) -> Failure {
        Failure { scope, retriable, hopeless }
    }

    pub fn failure_type(self) -> FailureType {
        match self.scope {
            Scope::Record | Scope::Config => FailureType::ConfigError,
            Scope::Infrastructure => FailureType::TransientError,
            Scope::System => FailureType::SystemError,
        }
    }

    /// A broker or client error code. The one table of librdkafka's codes.
    pub fn of_code(code: RDKafkaErrorCode) -> Failure {
        use RDKafkaErrorCode::*;
        use Scope::*;
        match code {
            MessageSizeTooLarge | InvalidRecord => Failure::of(Record, false, false),
            // A name that does not resolve is far more often a typo in `bootstrap_servers` than a DNS outage.
            SaslAuthenticationFailed | Authentication | SSL | Resolve => Failure::of(Config, false, true),
            TopicAuthorizationFailed
            | ClusterAuthorizationFailed
            | GroupAuthorizationFailed
            | TransactionalIdAuthorizationFailed
            | DelegationTokenAuthorizationFailed
            | UnsupportedSASLMechanism
            | IllegalSASLState
            | MessageBatchTooLarge
            | InvalidMessageSize
            | PolicyViolation
            | InvalidTopic
            | InvalidRequiredAcks
            | InvalidConfig
            | InvalidArgument
            | InvalidReplicationFactor
            | InvalidPartitions
            | UnknownTopic
            | UnknownPartition
            // librdkafka marks "this broker has no transactions" retriable: trying again would never end.
            | UnsupportedFeature
            | UnsupportedVersion => Failure::of(Config, false, false),
            // Nothing answers at all: waiting for metadata cannot help, a later sync may.
            AllBrokersDown => Failure::of(Infrastructure, true, true),
            BrokerTransportFailure
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
            | ConcurrentTransactions => Failure::of(Infrastructure, true, false),
            // Another sync took over the transactional id: this one is a zombie; the newer one goes on.
            Fenced | ProducerFenced | InvalidProducerEpoch => Failure::of(Infrastructure, false, false),
            _ => Failure::of(System, false, false),
        }
    }

    /// An HTTP answer (the schema registry); `None` is a connection that failed.
    pub fn of_http(status: Option<u16>) -> Failure {
        match status {
            // Rate limited (Confluent Cloud's 429), timed out, failing, or not reached: worth a retry of the sync.
            None | Some(408 | 429 | 500..) => Failure::of(Scope::Infrastructure, true, false),
            Some(_) => Failure::of(Scope::Config, false, false),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    System(String),
    /// One record cannot be written as it is (not encodable): a rejected record.
    #[error("{0}")]
    Record(String),
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
    /// librdkafka refused or failed something; the failure follows its error code.
    #[error("{context}: {}", describe(.source))]
    Kafka {
        context: String,
        #[source]
        source: KafkaError,
    },
    /// An HTTP service (the schema registry) refused or failed; the failure follows the status.
    #[error("{message}")]
    Http { message: String, status: Option<u16> },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The failure policy's verdict.
    pub fn failure(&self) -> Failure {
        match self {
            Error::Config(_) => Failure::of(Scope::Config, false, false),
            Error::Transient(_) => Failure::of(Scope::Infrastructure, true, false),
            Error::System(_) | Error::Input { .. } | Error::Io { .. } => Failure::of(Scope::System, false, false),
            Error::Record(_) => Failure::of(Scope::Record, false, false),
            Error::Kafka { source, .. } => {
                source.rdkafka_error_code().map_or(Failure::of(Scope::System, false, false), Failure::of_code)
            }
            Error::Http { status, .. } => Failure::of_http(*status),
            Error::Line { source, .. } => source.failure(),
        }
    }

    pub fn failure_type(&self) -> FailureType {
        self.failure().failure_type()
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

    /// This error, about the record of input line `line` (lines count from 1: 0 is no input line).
    pub fn at_line(self, line: u64) -> Error {
        match line {
            0 => self,
            line => Error::Line { line, source: Box::new(self) },
        }
    }

    /// The same error with `prefix: ` before its message, keeping its failure.
    pub fn context(self, prefix: &str) -> Error {
        match self {
            Error::Config(m) => Error::Config(format!("{prefix}: {m}")),
            Error::Transient(m) => Error::Transient(format!("{prefix}: {m}")),
            Error::System(m) => Error::System(format!("{prefix}: {m}")),
            Error::Record(m) => Error::Record(format!("{prefix}: {m}")),
            Error::Kafka { context, source } => Error::Kafka { context: format!("{prefix}: {context}"), source },
            Error::Http { message, status } => Error::Http { message: format!("{prefix}: {message}"), status },
            // The line number leads; where the line was read follows.
            Error::Input { line, reason } => Error::Input { line, reason: format!("{reason} (read from {prefix})") },
            other => other,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// librdkafka's words for an error, with a hint where the user has something to change.
pub fn describe(err: &KafkaError) -> String {
    use RDKafkaErrorCode::*;
    match err.rdkafka_error_code() {
        Some(MessageSizeTooLarge) => format!(
            "{err}; the message is larger than the producer's maximum message size: raise `max_request_size` \
             (and the topic's max.message.bytes)"
        ),
        Some(Fenced | ProducerFenced | InvalidProducerEpoch) => format!(
            "{err}; another writer with the same transactional.id took over (a newer sync of this connection), so \
             this one stops without committing"
        ),
        Some(InvalidRecord) => format!(
            "{err}; the broker refused the record as invalid (a compacted topic refuses a record without a key: \
             set `key`, or write to a topic that is not compacted)"
        ),
        Some(TopicAuthorizationFailed) => {
            format!("{err}; grant this user WRITE (and DESCRIBE) on the topic, or change `topic_pattern`")
        }
        Some(TransactionalIdAuthorizationFailed) => format!(
            "{err}; exactly_once needs WRITE and DESCRIBE on the transactional id (`transactional_id`, or the \
             derived `airbyte-destination-kafka-...`: a PREFIXED ACL on that prefix covers it)"
        ),
        Some(ClusterAuthorizationFailed) => format!(
            "{err}; the user lacks a cluster permission (IDEMPOTENT_WRITE for an idempotent producer, CREATE for \
             topic creation)"
        ),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy as a written-out table: code → (failure type, scope, retriable, hopeless).
    #[test]
    fn the_failure_table() {
        use FailureType::*;
        use RDKafkaErrorCode as C;
        let table = [
            (C::MessageSizeTooLarge, ConfigError, Scope::Record, false, false),
            (C::InvalidRecord, ConfigError, Scope::Record, false, false),
            (C::SaslAuthenticationFailed, ConfigError, Scope::Config, false, true),
            (C::SSL, ConfigError, Scope::Config, false, true),
            (C::Resolve, ConfigError, Scope::Config, false, true),
            (C::TopicAuthorizationFailed, ConfigError, Scope::Config, false, false),
            (C::TransactionalIdAuthorizationFailed, ConfigError, Scope::Config, false, false),
            (C::UnsupportedFeature, ConfigError, Scope::Config, false, false),
            (C::AllBrokersDown, TransientError, Scope::Infrastructure, true, true),
            (C::MessageTimedOut, TransientError, Scope::Infrastructure, true, false),
            (C::NotEnoughReplicas, TransientError, Scope::Infrastructure, true, false),
            (C::ProducerFenced, TransientError, Scope::Infrastructure, false, false),
            (C::Fail, SystemError, Scope::System, false, false),
        ];
        for (code, failure_type, scope, retriable, hopeless) in table {
            let f = Failure::of_code(code);
            assert_eq!(
                (f.failure_type(), f.scope, f.retriable, f.hopeless),
                (failure_type, scope, retriable, hopeless)
            );
        }
        let http =
            [(Some(409), ConfigError), (Some(401), ConfigError), (Some(429), TransientError), (None, TransientError)];
        for (status, failure_type) in http {
            assert_eq!(Failure::of_http(status).failure_type(), failure_type, "{status:?}");
        }
    }

    #[test]
    fn kafka_errors_follow_their_code_and_say_what_to_change() {
        let e = Error::kafka(
            "delivery to topic `t` failed",
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
        );
        assert_eq!((e.failure_type(), e.failure().scope), (FailureType::ConfigError, Scope::Record));
        assert!(e.to_string().contains("max_request_size"), "{e}");
        assert!(Error::kafka("x", KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)).is_transient());
        let line = Error::kafka("x", KafkaError::Global(RDKafkaErrorCode::Fail)).at_line(3);
        assert_eq!(
            (line.failure_type(), line.to_string().starts_with("input line 3: x")),
            (FailureType::SystemError, true)
        );
    }

    #[test]
    fn sources_are_kept() {
        use std::error::Error as _;
        let e = Error::io("cannot write to stdout", std::io::Error::other("pipe closed"));
        assert_eq!(e.source().unwrap().to_string(), "pipe closed");
        assert_eq!(e.to_string(), "cannot write to stdout: pipe closed");
    }
}
