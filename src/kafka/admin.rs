//! The cluster's side of a sync: metadata (is anyone there?) and the creation of missing topics.

use super::producer::{DeliveryListener, Producer};
use crate::config::Settings;
use crate::error::{describe, Error, Result};
use crate::stop;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::producer::Producer as _;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How long to keep asking for metadata while every attempt fails with an error.
const PATIENCE: Duration = Duration::from_secs(5);

impl<L: DeliveryListener> Producer<L> {
    /// The cluster's metadata, trying again until `timeout` unless librdkafka already said why it cannot connect.
    pub fn metadata(&self, settings: &Settings, timeout: Duration) -> Result<Metadata> {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            stop::check()?;
            let attempt = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
            match self.inner().client().fetch_metadata(None, attempt) {
                Ok(metadata) => return Ok(metadata),
                Err(error) => {
                    // Serves librdkafka's error and log events, which say why.
                    self.poll(Duration::from_millis(100));
                    // Give up early when librdkafka says why, or has kept failing for a while (with idempotence
                    // on, a refused connection raises no "all brokers down" event).
                    let failing = self.diagnostics().cause().is_some() && started.elapsed() >= PATIENCE;
                    if Instant::now() >= deadline || self.diagnostics().is_hopeless() || failing {
                        let waited =
                            format!("no metadata after {} s: {}", started.elapsed().as_secs(), describe(&error));
                        return Err(self.diagnostics().explain(settings, &waited));
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
        let admin: AdminClient<DefaultClientContext> = settings.properties()?.create(DefaultClientContext)?;
        let options = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| Error::io("cannot start the admin runtime", e))?;
        let mut creation = std::pin::pin!(admin.create_topics(&new_topics, &options));
        let results = loop {
            // In slices, so a stop is seen while the broker takes its time.
            match runtime.block_on(async { tokio::time::timeout(Duration::from_millis(100), &mut creation).await }) {
                Ok(results) => break results.map_err(|e| Error::kafka("cannot create topics", e))?,
                Err(_) => stop::check()?,
            }
        };
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
                "topic `{topic}` does not exist and the connector is not allowed to create it ({code}): grant the \
                 CREATE permission on the topic (or the cluster) to this user, or create the topic beforehand"
            ))
        }
        RDKafkaErrorCode::InvalidReplicationFactor | RDKafkaErrorCode::InvalidPartitions => Error::Config(format!(
            "topic `{topic}` does not exist and cannot be created: {code}; check `topic_partitions` and \
             `topic_replication_factor`"
        )),
        code => {
            Error::kafka(format!("topic `{topic}` does not exist and cannot be created"), KafkaError::AdminOp(code))
        }
    }
}
