//! `check`: always reaches the cluster, and with `test_topic` proves a record can be written there. With
//! exactly-once delivery it also proves the broker does transactions (and writes the test record in one).

use crate::airbyte::catalog::{Catalog, Stream, Topic};
use crate::airbyte::message::now_ms;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::format::registry::Registry;
use crate::format::{RecordIn, StreamEncoder};
use crate::kafka::producer::{DeliveryListener, Options, Producer, Sent, TxnError, Undelivered};
use crate::write::transactions::{transactional_id, unsupported};
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

/// Ok, or the reason in words a user can act on.
pub fn run(settings: &Settings) -> Result<()> {
    // Its own id, so that a check never fences a running sync.
    let id = settings.exactly_once().then(|| format!("{}-check", transactional_id(settings, &Catalog::default())));
    let producer =
        Producer::new(settings, Options { transactional_id: id.as_deref(), ..Options::default() }, Outcome::default())?;
    producer.metadata(settings, CHECK_TIMEOUT)?;
    // The registry formats need the registry: reachable, taking the credentials.
    if let Some(registry) = settings.format.registry() {
        Registry::new(registry)?.check()?;
    }
    if id.is_some() {
        producer.init_transactions(CHECK_TIMEOUT).map_err(|e| unsupported(e.into_error()))?;
    }
    let Some(topic) = settings.test_topic() else {
        return Ok(());
    };
    producer.ensure_topics(settings, &[Topic { name: &topic, compact: false }], CHECK_TIMEOUT).map_err(
        |e| match e {
            Error::Config(m) => Error::Config(format!("test topic: {m}")),
            other => other,
        },
    )?;
    if id.is_some() {
        producer.begin_transaction().map_err(TxnError::into_error)?;
    }
    // Java's test message, so whatever watches the test topic sees what it always saw.
    let stream = Stream { name: "test-topic-stream".into(), topic: topic.clone(), ..Stream::default() };
    let mut encoder = StreamEncoder::java(&stream);
    let data = br#"{"test-key":"test-value"}"#;
    let record = encoder.encode(&RecordIn { emitted_at: now_ms(), data, meta: None }).map_err(Error::System)?;
    if let Sent::QueueFull(()) = producer.send(&record, ())? {
        return Err(Error::System("the producer queue is full before the first record".into()));
    }
    producer.flush(Instant::now() + CHECK_TIMEOUT);
    let outcome = producer.listener().0.lock().unwrap_or_else(|e| e.into_inner()).take();
    match outcome {
        Some(Ok(())) if id.is_some() => {
            producer.commit_transaction(CHECK_TIMEOUT).map_err(|e| unsupported(e.into_error()))
        }
        Some(outcome) => outcome,
        None => Err(producer.diagnostics().explain(
            settings,
            &format!("the test message to topic `{topic}` was not acknowledged within {} s", CHECK_TIMEOUT.as_secs()),
        )),
    }
}
