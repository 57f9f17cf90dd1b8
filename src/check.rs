//! `check`: always reaches the cluster, and with `test_topic` proves a record can be written there.

use crate::airbyte::catalog::Stream;
use crate::airbyte::message::now_ms;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::format::{RecordIn, StreamEncoder};
use crate::kafka::producer::{DeliveryListener, Producer, Sent};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long check waits for the cluster to answer, so the UI never hangs on a dead address.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// The fate of the one test message.
#[derive(Default)]
struct Outcome(Mutex<Option<Result<()>>>);

impl DeliveryListener for Outcome {
    type Token = ();

    fn delivered(&self, _: (), outcome: Result<()>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
    }
}

/// Ok, or the reason in words a user can act on.
pub fn run(settings: &Settings) -> Result<()> {
    let producer = Producer::new(settings, Outcome::default())?;
    producer.metadata(settings, CHECK_TIMEOUT)?;
    let Some(topic) = settings.test_topic() else {
        return Ok(());
    };
    producer.ensure_topics(settings, &[&topic], CHECK_TIMEOUT).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("test topic: {m}")),
        other => other,
    })?;
    // Java's test message, so whatever watches the test topic sees what it always saw.
    let stream = Stream { namespace: None, name: "test-topic-stream".into(), topic: topic.clone() };
    let mut encoder = StreamEncoder::new(&stream);
    let record = encoder.encode(&RecordIn { emitted_at: now_ms(), data: br#"{"test-key":"test-value"}"# });
    if let Sent::QueueFull(()) = producer.send(&record, ())? {
        return Err(Error::System("the producer queue is full before the first record".into()));
    }
    producer.flush(Instant::now() + CHECK_TIMEOUT);
    let outcome = producer.listener().0.lock().unwrap_or_else(|e| e.into_inner()).take();
    match outcome {
        Some(outcome) => outcome,
        None => Err(producer.diagnostics().explain(
            settings,
            &format!("the test message to topic `{topic}` was not acknowledged within {} s", CHECK_TIMEOUT.as_secs()),
        )),
    }
}
