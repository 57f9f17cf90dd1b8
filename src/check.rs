//! `check`: always reaches the cluster, and with `test_topic` proves a record can be written there. With
//! exactly-once delivery it also proves the broker does transactions (and writes the test record in one).

use crate::airbyte::catalog::Stream;
use crate::airbyte::message::now_ms;
use crate::config::Settings;
use crate::delivery::{DeliveryListener, Undelivered};
use crate::error::{Error, Result};
use crate::format::registry::Registry;
use crate::format::{RecordIn, StreamEncoder};
use crate::kafka::admin::Topic;
use crate::kafka::producer::{Options, Producer, Sent, TxnError};
use crate::stop::Stop;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long check waits for the cluster to answer, so the UI never hangs on a dead address.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// The fate of the one test message.
#[derive(Default)]
struct Outcome(Mutex<Option<Result<()>>>);

impl DeliveryListener for Outcome {
    type Token = ();

    fn delivered(&self, _: (), outcome: std::result::Result<(), Undelivered>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome.map_err(|u| u.error));
    }
}

/// What the user should know (the settings' caveats, what check could not prove), or the reason it failed in
/// words a user can act on.
pub fn run(settings: &Settings, stop: &Stop) -> Result<Vec<String>> {
    let topic = settings.test_topic();
    reach(settings, stop, topic.as_deref())?;
    let mut notes = settings.caveats();
    if topic.is_none() {
        notes.push(
            "no `test_topic` is set: check reached the cluster and logged in, but did not prove that this user may \
             create and write to the sync's topics (set `test_topic` to prove it)"
                .into(),
        );
    }
    Ok(notes)
}

/// Reaches the cluster (and the registry), proves transactions work with exactly-once, and writes the test
/// message to `topic`.
fn reach(settings: &Settings, stop: &Stop, topic: Option<&str>) -> Result<()> {
    // Its own id, so that a check never fences a running sync.
    let id = settings.exactly_once().then(|| format!("{}-check", settings.transactional_id([])));
    let options = Options { transactional_id: id.as_deref(), ..Options::default() };
    let mut producer = Producer::new(settings, options, Outcome::default(), stop)?;
    producer.metadata(settings, CHECK_TIMEOUT)?;
    // The registry formats need the registry: reachable, taking the credentials.
    if let Some(registry) = settings.encoding.format.registry() {
        Registry::new(registry)?.check()?;
    }
    if id.is_some() {
        let id = id.as_deref().unwrap_or_default();
        producer
            .init_transactions(CHECK_TIMEOUT)
            .map_err(|e| e.into_error().context(&format!("transactional.id `{id}` (check's own)")))?;
    }
    let Some(topic) = topic else {
        return Ok(());
    };
    let topics = [Topic { name: topic, compact: false, configs: &[] }];
    producer.ensure_topics(settings, &topics, CHECK_TIMEOUT).map_err(|e| e.context("test topic"))?;
    if id.is_some() {
        producer.begin_transaction().map_err(TxnError::into_error)?;
    }
    // Java's test message, so whatever watches the test topic sees what it always saw.
    let stream = Stream { name: "test-topic-stream".into(), topic: topic.to_string(), ..Stream::default() };
    let mut encoder = StreamEncoder::java(&stream);
    let data = r#"{"test-key":"test-value"}"#;
    let record = encoder.encode(&RecordIn { emitted_at: now_ms(), data, meta: None })?;
    if let Sent::QueueFull(()) = producer.send(&record, ())? {
        return Err(Error::System("the producer queue is full before the first record".into()));
    }
    producer.flush(Instant::now() + CHECK_TIMEOUT);
    let outcome = producer.listener().0.lock().unwrap_or_else(|e| e.into_inner()).take();
    match outcome {
        Some(Ok(())) if id.is_some() => producer.commit_transaction(CHECK_TIMEOUT).map_err(TxnError::into_error),
        Some(outcome) => outcome.map_err(|e| producer.cause_of(e)),
        None => Err(producer.diagnostics().explain(
            settings,
            &format!("the test message to topic `{topic}` was not acknowledged within {} s", CHECK_TIMEOUT.as_secs()),
        )),
    }
}
