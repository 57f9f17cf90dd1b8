//! The cluster's side of a sync: metadata (is anyone there?), the creation of missing topics, where partitions end,
//! and deleting what a truncate refresh leaves behind.

use super::client;
use super::msk_iam::MskIam;
use super::producer::Producer;
use crate::config::Settings;
use crate::delivery::DeliveryListener;
use crate::error::{describe, Error, Result};
use crate::stop::Stop;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How long to keep asking for metadata while every attempt fails with an error.
const PATIENCE: Duration = Duration::from_secs(5);

/// A topic a sync writes to, as it must exist before the first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topic<'a> {
    pub name: &'a str,
    /// `cleanup.policy=compact`: the topic keeps the latest record per key.
    pub compact: bool,
    /// More topic configs, when the connector creates it.
    pub configs: &'a [(&'a str, &'a str)],
}

impl<L: DeliveryListener> Producer<L> {
    /// The cluster's metadata, trying again until `timeout` unless librdkafka already said why it cannot connect.
    pub fn metadata(&self, settings: &Settings, timeout: Duration) -> Result<Metadata> {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            self.stop().check()?;
            let attempt = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
            match self.inner().client().fetch_metadata(None, attempt) {
                Ok(metadata) => {
                    // librdkafka's logs wait in its queue until served: serve them (a quick check polls nothing else).
                    self.serve_reports();
                    return Ok(metadata);
                }
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

    /// Where each partition of `topic` ends now (its high watermark): where the next record written goes.
    pub fn end_offsets(&self, settings: &Settings, topic: &str) -> Result<Vec<(i32, i64)>> {
        let timeout = settings.metadata_timeout();
        let metadata = self
            .inner()
            .client()
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| Error::kafka(format!("cannot read the partitions of `{topic}`"), e))?;
        let partitions: Vec<i32> =
            metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
        partitions
            .into_iter()
            .map(|p| {
                let (_, high) = self
                    .inner()
                    .client()
                    .fetch_watermarks(topic, p, timeout)
                    .map_err(|e| Error::kafka(format!("cannot read where `{topic}` partition {p} ends"), e))?;
                Ok((p, high))
            })
            .collect()
    }

    /// Creates the topics that do not exist yet (compacted ones with `cleanup.policy=compact`). Topics that exist
    /// are used as they are; one that should be compacted and is not gets a warning.
    pub fn ensure_topics(&self, settings: &Settings, topics: &[Topic<'_>], timeout: Duration) -> Result<()> {
        let metadata = self.metadata(settings, timeout)?;
        let existing: HashSet<&str> =
            metadata.topics().iter().filter(|t| t.error().is_none()).map(|t| t.name()).collect();
        let (present, missing): (Vec<&Topic>, Vec<&Topic>) = topics.iter().partition(|t| existing.contains(t.name));
        let compacted: Vec<&str> = present.iter().filter(|t| t.compact).map(|t| t.name).collect();
        if missing.is_empty() && compacted.is_empty() {
            return Ok(());
        }
        let admin = Admin::new(settings, self.msk_iam(), self.stop())?;
        if !compacted.is_empty() {
            admin.warn_unless_compacted(&compacted, timeout)?;
        }
        if missing.is_empty() {
            return Ok(());
        }
        let new_topics: Vec<NewTopic> = missing
            .iter()
            .map(|t| {
                let replication = TopicReplication::Fixed(settings.topic_replication_factor as i32);
                let topic = NewTopic::new(t.name, settings.topic_partitions as i32, replication);
                let topic = if t.compact { topic.set("cleanup.policy", "compact") } else { topic };
                t.configs.iter().fold(topic, |topic, (key, value)| topic.set(key, value))
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
        let results = admin
            .run(admin.client.create_topics(&new_topics, &options))?
            .map_err(|e| Error::kafka("cannot create topics", e))?;
        for result in results {
            match result {
                Ok(topic) => tracing::info!(
                    "created topic `{topic}` (partitions {}, replication factor {}; -1 = broker default{})",
                    settings.topic_partitions,
                    settings.topic_replication_factor,
                    if topics.iter().any(|t| t.name == topic && t.compact) { "; cleanup.policy=compact" } else { "" }
                ),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(topic_creation_error(&topic, code)),
            }
        }
        Ok(())
    }
}

/// Deletes the records of `topic` before `offsets` (per partition), as Kafka's DeleteRecords does: the log start
/// moves up, nothing after it is touched.
pub fn delete_before(settings: &Settings, stop: &Stop, topic: &str, offsets: &[(i32, i64)]) -> Result<()> {
    let admin = Admin::new(settings, MskIam::of(settings)?.as_ref(), stop)?;
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| Error::kafka("cannot name the records to delete", e))?;
    }
    let timeout = settings.metadata_timeout();
    let options = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let deleted = admin.run(admin.client.delete_records(&list, &options))?;
    let refused = |e: KafkaError| match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) => Error::Config(format!(
            "the records of earlier generations in `{topic}` cannot be deleted ({e}): grant DELETE on the topic"
        )),
        _ => Error::kafka(format!("cannot delete the records of earlier generations in `{topic}`"), e),
    };
    for element in deleted.map_err(refused)?.elements() {
        if let Err(e) = element.error() {
            return Err(refused(e));
        }
    }
    Ok(())
}

/// An admin client and the runtime its futures need.
struct Admin {
    client: AdminClient<DefaultClientContext>,
    runtime: tokio::runtime::Runtime,
    stop: Stop,
}

impl Admin {
    fn new(settings: &Settings, msk_iam: Option<&MskIam>, stop: &Stop) -> Result<Admin> {
        let client: AdminClient<DefaultClientContext> = client::create(&settings.properties()?, DefaultClientContext)?;
        if let Some(iam) = msk_iam {
            set_token(&client, iam)?;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| Error::io("cannot start the admin runtime", e))?;
        Ok(Admin { client, runtime, stop: stop.clone() })
    }

    /// Waits for an admin operation in slices, so a stop is seen while the broker takes its time.
    fn run<T>(&self, operation: impl std::future::Future<Output = T>) -> Result<T> {
        let mut operation = std::pin::pin!(operation);
        loop {
            let slice =
                self.runtime.block_on(async { tokio::time::timeout(Duration::from_millis(100), &mut operation).await });
            match slice {
                Ok(done) => return Ok(done),
                Err(_) => self.stop.check()?,
            }
        }
    }

    /// `append_dedup` into a topic that exists: the connector does not change a topic's config, but says so.
    fn warn_unless_compacted(&self, topics: &[&str], timeout: Duration) -> Result<()> {
        let resources: Vec<ResourceSpecifier> = topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let options = AdminOptions::new().request_timeout(Some(timeout));
        let described = self.run(self.client.describe_configs(&resources, &options))?;
        let results = described.map_err(|e| Error::kafka("cannot describe topics", e))?;
        for (topic, result) in topics.iter().zip(results) {
            let policy = result.ok().and_then(|r| r.get("cleanup.policy").and_then(|e| e.value.clone()));
            if !policy.as_deref().is_some_and(|p| p.contains("compact")) {
                tracing::warn!(
                    "topic `{topic}` receives a stream in append_dedup mode but is not compacted (cleanup.policy is \
                     `{}`): it keeps every record, not only the latest per key; set cleanup.policy=compact on it",
                    policy.as_deref().unwrap_or("not reported")
                );
            }
        }
        Ok(())
    }
}

/// rdkafka 0.39's admin client never asks its context for an OAUTHBEARER token (it does not serve that event): the
/// token is given to it here, once, at creation (topic creation takes far less than the token's 15 minutes).
fn set_token(client: &AdminClient<DefaultClientContext>, iam: &MskIam) -> Result<()> {
    use std::ffi::CString;
    let token = iam.token().map_err(|why| Error::Config(format!("AWS MSK IAM: {why}")))?;
    let value = CString::new(token.value).map_err(|_| Error::System("an MSK IAM token with a NUL byte".into()))?;
    let principal = CString::new("destination-kafka").expect("no NUL");
    let mut errstr = [0 as std::ffi::c_char; 512];
    // SAFETY: the client's handle is alive for the call; the strings are NUL-terminated and outlive it; librdkafka
    // copies them, and writes at most `errstr.len()` bytes of error text.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_oauthbearer_set_token(
            client.inner().native_ptr(),
            value.as_ptr(),
            token.expires_ms,
            principal.as_ptr(),
            std::ptr::null_mut(),
            0,
            errstr.as_mut_ptr(),
            errstr.len(),
        )
    };
    if err != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        // SAFETY: librdkafka NUL-terminates what it writes in `errstr`.
        let why = unsafe { std::ffi::CStr::from_ptr(errstr.as_ptr()) }.to_string_lossy().into_owned();
        return Err(Error::System(format!("cannot give the admin client its MSK IAM token: {why}")));
    }
    Ok(())
}

fn topic_creation_error(topic: &str, code: RDKafkaErrorCode) -> Error {
    match code {
        RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed => {
            Error::Config(format!(
                "topic `{topic}` is not visible to this user (it does not exist, or the user lacks DESCRIBE on it) \
                 and the user may not create it ({code}): grant DESCRIBE and WRITE on the topic, and CREATE on the \
                 topic (or the cluster) so that the connector can create missing topics, or create it beforehand"
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
