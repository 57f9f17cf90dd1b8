//! Our side of librdkafka: the client context (logs, errors, delivery reports), the producer's lifecycle, topic
//! creation and the diagnosis of connection problems.

use crate::checkpoint::{Checkpoints, SegmentId};
use crate::config::Settings;
use crate::error::{describe, Error, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::metadata::Metadata;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use std::cell::Cell;
use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long to keep asking for metadata while every attempt fails with an error.
const PATIENCE: Duration = Duration::from_secs(5);

/// Errors librdkafka reported on its own (connection refused, authentication failed, ...), newest last. A
/// timeout alone says nothing; these say why.
#[derive(Default)]
pub struct Diagnostics {
    recent: Mutex<VecDeque<(Option<RDKafkaErrorCode>, String)>>,
}

impl Diagnostics {
    /// Keeps one entry per error code (the newest), so a flood of "brokers are down" cannot push out the cause.
    fn push(&self, code: Option<RDKafkaErrorCode>, reason: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|(c, r)| *c != code || (code.is_none() && r != reason));
        if recent.len() == 16 {
            recent.pop_front();
        }
        recent.push_back((code, reason.to_string()));
    }

    /// The most telling error seen: an authentication or resolution problem outranks "all brokers down".
    pub fn cause(&self) -> Option<(Option<RDKafkaErrorCode>, String)> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let rank = |code: &Option<RDKafkaErrorCode>| match code {
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => 0,
            Some(RDKafkaErrorCode::SSL | RDKafkaErrorCode::Resolve) => 1,
            Some(RDKafkaErrorCode::AllBrokersDown) => 3,
            _ => 2,
        };
        recent.iter().rev().min_by_key(|(code, _)| rank(code)).cloned()
    }

    /// Whether waiting longer cannot help: credentials or names are wrong, or nothing answers at all.
    fn is_hopeless(&self) -> bool {
        self.cause().is_some_and(|(code, _)| {
            matches!(
                code,
                Some(
                    RDKafkaErrorCode::Authentication
                        | RDKafkaErrorCode::SaslAuthenticationFailed
                        | RDKafkaErrorCode::Resolve
                        | RDKafkaErrorCode::SSL
                        | RDKafkaErrorCode::AllBrokersDown
                )
            )
        })
    }

    /// A user-facing sentence for "we could not talk to the cluster".
    pub fn explain(&self, settings: &Settings, fallback: &str) -> Error {
        let servers = &settings.bootstrap_servers;
        let Some((code, reason)) = self.cause() else {
            return Error::Transient(format!("no answer from the brokers at {servers}: {fallback}"));
        };
        match code {
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
                Error::Config(format!(
                "authentication failed at {servers}: {reason}; check `protocol.sasl_mechanism` and the username and \
                 password in `protocol.sasl_jaas_config`"
            ))
            }
            Some(RDKafkaErrorCode::Resolve) => {
                Error::Config(format!("cannot resolve the broker address in `bootstrap_servers` ({servers}): {reason}"))
            }
            Some(RDKafkaErrorCode::SSL) => Error::Config(format!("TLS handshake with {servers} failed: {reason}")),
            _ => Error::Transient(format!(
                "cannot reach the brokers at {servers}: {reason}; check `bootstrap_servers`, the network path and \
                 `protocol.security_protocol`"
            )),
        }
    }
}

fn log_to_tracing(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!("librdkafka {facility}: {message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!("librdkafka {facility}: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!("librdkafka {facility}: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!("librdkafka {facility}: {message}"),
    }
}

/// Context of the producer: delivery reports settle records in the checkpoint tracker.
pub struct DeliveryContext {
    pub checkpoints: Mutex<Checkpoints>,
    pub diagnostics: Diagnostics,
}

impl ClientContext for DeliveryContext {
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

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = SegmentId;

    fn delivery(&self, result: &DeliveryResult<'_>, segment: SegmentId) {
        let mut checkpoints = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => checkpoints.acknowledged(segment),
            Err((error, message)) => {
                let mut what = format!("delivery to topic `{}` failed", message.topic());
                if let Some((_, reason)) = self.diagnostics.cause() {
                    what.push_str(&format!(" (last client error: {reason})"));
                }
                checkpoints.failed(segment, Error::kafka(what, error));
            }
        }
    }
}

/// The producer, with checkpoint tracking built into its delivery reports.
pub struct Producer {
    inner: BaseProducer<DeliveryContext>,
    /// Records sent but not yet counted in the tracker, all in the open segment: counted here without taking
    /// the lock, and handed over before any delivery report can arrive (reports are served only by `poll`).
    uncounted: Cell<u64>,
    open_segment: Cell<SegmentId>,
}

/// Whether librdkafka took a record.
pub enum Sent {
    Queued,
    /// Its queue is full: poll, then offer the record again.
    QueueFull,
}

impl Producer {
    pub fn new(settings: &Settings) -> Result<Producer> {
        let context =
            DeliveryContext { checkpoints: Mutex::new(Checkpoints::new()), diagnostics: Diagnostics::default() };
        Ok(Producer { inner: settings.client(context)?, uncounted: Cell::new(0), open_segment: Cell::new(0) })
    }

    /// The tracker, up to date with every record sent.
    pub fn checkpoints(&self) -> MutexGuard<'_, Checkpoints> {
        let mut checkpoints = self.inner.context().checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        let uncounted = self.uncounted.replace(0);
        if uncounted > 0 {
            checkpoints.sent(uncounted);
        }
        checkpoints
    }

    /// A STATE arrived: it waits for every record sent so far.
    pub fn close_segment(&self, rendered_state: String) {
        let mut checkpoints = self.checkpoints();
        checkpoints.close(rendered_state);
        self.open_segment.set(checkpoints.open_segment());
    }

    pub fn diagnostics(&self) -> &Diagnostics {
        &self.inner.context().diagnostics
    }

    /// Hands one record to librdkafka, which copies it. Never blocks.
    pub fn send(&self, topic: &str, key: &[u8], value: &[u8]) -> Result<Sent> {
        let record = BaseRecord::with_opaque_to(topic, self.open_segment.get()).key(key).payload(value);
        match self.inner.send(record) {
            Ok(()) => {
                self.uncounted.set(self.uncounted.get() + 1);
                Ok(Sent::Queued)
            }
            Err((error, _)) => match error.rdkafka_error_code() {
                Some(RDKafkaErrorCode::QueueFull) => Ok(Sent::QueueFull),
                _ => Err(Error::kafka(format!("cannot produce to topic `{topic}`"), &error)),
            },
        }
    }

    /// Serves librdkafka's events (delivery reports, which settle checkpoints; logs; errors) for `timeout`.
    /// rdkafka keeps polling until the timeout ends and spins through its last millisecond: use short waits
    /// only through `serve_reports`.
    fn poll(&self, timeout: Duration) {
        drop(self.checkpoints());
        self.inner.poll(timeout);
    }

    /// Serves every delivery report that is ready, without waiting; returns whether any record settled.
    pub fn serve_reports(&self) -> bool {
        let before = self.checkpoints().in_flight();
        let mut last = before;
        // Bounded, so a steady stream of reports cannot keep the caller from producing.
        for _ in 0..64 {
            self.inner.poll(Duration::ZERO);
            let now = self.checkpoints().in_flight();
            if now == last {
                break;
            }
            last = now;
        }
        last != before
    }

    /// Polls until every record sent is settled (acknowledged or failed) or the deadline passes.
    pub fn wait_settled(
        &self,
        deadline: Instant,
        mut on_progress: impl FnMut(&Producer) -> Result<()>,
    ) -> Result<bool> {
        loop {
            on_progress(self)?;
            if self.checkpoints().in_flight() == 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            // Not `poll(timeout)`: it would hold every caller (a sync producer's each record) for the whole timeout.
            if !self.serve_reports() {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

impl Drop for Producer {
    /// Dropping librdkafka's producer purges what it holds, which reports those records: count them first.
    fn drop(&mut self) {
        drop(self.checkpoints());
    }
}

impl Producer {
    /// The cluster's metadata, trying again until `timeout` unless librdkafka already said why it cannot connect.
    pub fn metadata(&self, settings: &Settings, timeout: Duration) -> Result<Metadata> {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            let attempt = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
            match self.inner.client().fetch_metadata(None, attempt) {
                Ok(metadata) => return Ok(metadata),
                Err(error) => {
                    // Serves librdkafka's error and log events, which say why.
                    self.poll(Duration::from_millis(100));
                    // Give up early when librdkafka says why, or has kept failing for a while (with idempotence
                    // on, a refused connection raises no "all brokers down" event).
                    let failing = self.diagnostics().cause().is_some() && started.elapsed() >= PATIENCE;
                    if Instant::now() >= deadline || self.diagnostics().is_hopeless() || failing {
                        return Err(self.diagnostics().explain(settings, &describe(&error)));
                    }
                }
            }
        }
    }

    /// Creates the topics that do not exist yet. Topics that exist are used as they are.
    pub fn ensure_topics(&self, settings: &Settings, topics: &[&str], timeout: Duration) -> Result<()> {
        let metadata = self.metadata(settings, timeout)?;
        let existing: HashSet<&str> =
            metadata.topics().iter().filter(|t| t.error().is_none()).map(|t| t.name()).collect();
        let missing: Vec<&str> = topics.iter().copied().filter(|t| !existing.contains(t)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let new_topics: Vec<NewTopic> = missing
            .iter()
            .map(|t| {
                let replication = TopicReplication::Fixed(settings.topic_replication_factor as i32);
                NewTopic::new(t, settings.topic_partitions as i32, replication)
            })
            .collect();
        let admin: AdminClient<DefaultClientContext> = settings.client(DefaultClientContext)?;
        let options = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| Error::System(format!("cannot start the admin runtime: {e}")))?;
        let results = runtime
            .block_on(admin.create_topics(&new_topics, &options))
            .map_err(|e| Error::kafka("cannot create topics", &e))?;
        for result in results {
            match result {
                Ok(topic) => tracing::info!(
                    "created topic `{topic}` (partitions {}, replication factor {}; -1 = broker default)",
                    settings.topic_partitions,
                    settings.topic_replication_factor
                ),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(topic_creation_error(&topic, code)),
            }
        }
        Ok(())
    }
}

fn topic_creation_error(topic: &str, code: RDKafkaErrorCode) -> Error {
    match code {
        RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed => {
            Error::Config(format!(
            "topic `{topic}` does not exist and the connector is not allowed to create it ({code}): grant the CREATE \
             permission on the topic (or the cluster) to this user, or create the topic beforehand"
        ))
        }
        RDKafkaErrorCode::InvalidReplicationFactor | RDKafkaErrorCode::InvalidPartitions => Error::Config(format!(
            "topic `{topic}` does not exist and cannot be created: {code}; check `topic_partitions` and \
             `topic_replication_factor`"
        )),
        code => {
            Error::kafka(format!("topic `{topic}` does not exist and cannot be created"), &KafkaError::AdminOp(code))
        }
    }
}
