//! Exactly-once delivery (`delivery_guarantee: exactly_once`): the records between commits go in one Kafka
//! transaction, and a STATE goes out only after the transaction holding its records is committed.
//!
//! Commits happen at a STATE boundary (never in the middle of a checkpoint, so a killed sync leaves nothing
//! committed past its last emitted STATE), at most once per `transaction_commit_interval_ms`: one commit then
//! covers every STATE since the previous one. Input pausing, the end of input, and the bounds
//! `transaction_max_ms` / `transaction_max_records` also commit; only the bounds may commit records whose STATE
//! has not arrived yet.

use super::checkpoint::Tracker;
use crate::airbyte::catalog::Catalog;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::kafka::producer::{Producer, TxnError};
use crate::stop;
use rdkafka::error::RDKafkaErrorCode;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// How long one attempt of a transaction call may block; a retriable timeout is tried again (and a stop looked at).
const ATTEMPT: Duration = Duration::from_secs(5);
/// Between two attempts of a transaction call that failed at once.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

pub struct Transactions {
    id: String,
    interval: Duration,
    max_age: Duration,
    max_records: u64,
    /// When the open transaction got its first record.
    began: Option<Instant>,
    last_commit: Instant,
    /// Records in the open transaction.
    records: u64,
    pub commits: u64,
}

impl Transactions {
    pub fn new(settings: &Settings, catalog: &Catalog) -> Transactions {
        Transactions {
            id: transactional_id(settings, catalog),
            interval: settings.transaction_commit_interval,
            max_age: settings.transaction_max_age,
            max_records: settings.transaction_max_records.max(1) as u64,
            began: None,
            last_commit: Instant::now(),
            records: 0,
            commits: 0,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Fences any older writer with the same id (aborting what it left open), then opens the first transaction.
    pub fn start(&mut self, producer: &Producer<Tracker>, settings: &Settings) -> Result<()> {
        let deadline = Instant::now() + settings.metadata_timeout();
        while !retried(producer.init_transactions(ATTEMPT), "start transactions", deadline)? {}
        producer.begin_transaction().map_err(TxnError::into_error)?;
        tracing::info!("exactly-once: transactional.id `{}`, a transaction per checkpoint", self.id);
        Ok(())
    }

    pub fn sent(&mut self) {
        self.records += 1;
        self.began.get_or_insert_with(Instant::now);
    }

    /// Records went into the open transaction since the last commit.
    pub fn open(&self) -> bool {
        self.records > 0
    }

    /// At a STATE boundary: whether to commit now.
    pub fn due(&self) -> bool {
        self.open() && (self.last_commit.elapsed() >= self.interval || self.overdue())
    }

    /// Past a bound: commit even without a STATE.
    pub fn overdue(&self) -> bool {
        self.records >= self.max_records || self.began.is_some_and(|b| b.elapsed() >= self.max_age)
    }

    /// One attempt to commit, once every record sent is acknowledged (the caller waits for that, so that its
    /// progress line keeps going). `Ok(false)`: a retriable failure before `deadline`, try again. Committed: marks
    /// everything sent so far committed and opens the next transaction. Any other failure is returned: the caller
    /// aborts, no later STATE goes out.
    pub fn try_commit(&mut self, producer: &Producer<Tracker>, deadline: Instant) -> Result<bool> {
        if !retried(producer.commit_transaction(ATTEMPT), "commit the transaction", deadline)? {
            return Ok(false);
        }
        producer.listener().lock().committed();
        self.commits += 1;
        tracing::debug!("transaction {} committed: {} records", self.commits, self.records);
        self.records = 0;
        self.began = None;
        self.last_commit = Instant::now();
        producer.begin_transaction().map_err(TxnError::into_error)?;
        Ok(true)
    }

    /// After a failure or a stop: nothing of the open transaction may become visible.
    pub fn abort(&mut self, producer: &Producer<Tracker>) {
        if let Err(e) = producer.abort_transaction(ATTEMPT) {
            tracing::warn!("the open transaction could not be aborted ({}); the broker aborts it when it times out or when the next sync with transactional.id `{}` starts", e.into_error(), self.id);
        }
    }
}

/// `transactional_id`, or when blank one derived from what identifies this connection's writer: the bootstrap
/// servers, the topic pattern and the catalog's streams (namespace and name, sorted). Two syncs of the same
/// connection get the same id, so the newer fences a zombie older one; a changed stream set gets a new id.
pub fn transactional_id(settings: &Settings, catalog: &Catalog) -> String {
    if let Some(id) = settings.transactional_id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
        return id.to_string();
    }
    let mut streams: Vec<String> =
        catalog.streams.iter().map(|s| format!("{}\u{1f}{}", s.namespace.as_deref().unwrap_or(""), s.name)).collect();
    streams.sort_unstable();
    let mut hash = Sha256::new();
    hash.update(settings.bootstrap_servers.trim().as_bytes());
    hash.update(b"\n");
    hash.update(settings.topic_pattern.as_bytes());
    for stream in streams {
        hash.update(b"\n");
        hash.update(stream.as_bytes());
    }
    let digest = hash.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("airbyte-destination-kafka-{hex}")
}

/// The outcome of one attempt of a transaction call: done, to be tried again (a retriable failure before
/// `deadline`, after a pause so that an instant failure does not spin), or the failure.
fn retried(attempt: std::result::Result<(), TxnError>, call: &str, deadline: Instant) -> Result<bool> {
    match attempt {
        Ok(()) => Ok(true),
        Err(TxnError::Retriable(e)) if Instant::now() < deadline => {
            tracing::debug!("could not {call} yet: {e}; trying again");
            stop::check()?;
            std::thread::sleep(RETRY_PAUSE);
            Ok(false)
        }
        Err(TxnError::Retriable(e)) => Err(Error::Transient(format!(
            "the broker did not {call} before the deadline, it kept answering with a retriable error: {e}"
        ))),
        Err(e) => Err(unsupported(e.into_error())),
    }
}

/// A broker without transactions answers the first transactional request (init, or the first commit) with
/// "unsupported": say what to change.
pub fn unsupported(error: Error) -> Error {
    match error.kafka_code() {
        Some(RDKafkaErrorCode::UnsupportedVersion | RDKafkaErrorCode::UnsupportedFeature) => Error::Config(format!(
            "`delivery_guarantee` is exactly_once but the broker does not support transactions ({error}); use \
             at_least_once or a broker with transactions"
        )),
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{java_config, with};
    use serde_json::json;

    fn catalog(streams: serde_json::Value) -> Catalog {
        Catalog::from_value(&json!({ "streams": streams }), "{stream}", None).unwrap()
    }

    #[test]
    fn derived_ids_are_stable_and_name_the_connection() {
        let s = Settings::from_value(java_config()).unwrap();
        let a = catalog(json!([{"name": "users"}, {"name": "orders", "namespace": "shop"}]));
        let reordered = catalog(json!([{"name": "orders", "namespace": "shop"}, {"name": "users"}]));
        let id = transactional_id(&s, &a);
        assert!(id.starts_with("airbyte-destination-kafka-") && id.len() == 42, "{id}");
        assert_eq!(id, transactional_id(&s, &reordered), "the stream set, not its order");
        assert_ne!(id, transactional_id(&s, &catalog(json!([{"name": "users"}]))));
        let other = Settings::from_value(with(java_config(), "bootstrap_servers", json!("elsewhere:9092"))).unwrap();
        assert_ne!(id, transactional_id(&other, &a));
        let given = Settings::from_value(with(java_config(), "transactional_id", json!(" mine "))).unwrap();
        assert_eq!(transactional_id(&given, &a), "mine");
        // The derivation is part of the contract (a new version must not change a connection's id): SHA-256 of
        // "<bootstrap_servers>\n<topic_pattern>\n<namespace>\x1f<name>..." as Python's hashlib gives it.
        assert_eq!(
            transactional_id(&s, &catalog(json!([{"name": "users"}]))),
            "airbyte-destination-kafka-4f8dad29220ad316"
        );
    }
}
