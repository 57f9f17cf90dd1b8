//! `check`: always reaches the cluster, and with `test_topic` proves a record can be written there.

use crate::config::Settings;
use crate::envelope::{Encoder, StreamPart};
use crate::error::{Error, Result};
use crate::kafka::{Producer, Sent};
use crate::protocol::now_ms;
use std::time::{Duration, Instant};

/// How long check waits for the cluster to answer, so the UI never hangs on a dead address.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// Ok, or the reason in words a user can act on.
pub fn run(settings: &Settings) -> Result<()> {
    let producer = Producer::new(settings)?;
    producer.metadata(settings, CHECK_TIMEOUT)?;
    let Some(topic) = settings.test_topic() else {
        return Ok(());
    };
    producer.ensure_topics(settings, &[&topic], CHECK_TIMEOUT).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("test topic: {m}")),
        other => other,
    })?;
    // Java's test message, so whatever watches the test topic sees what it always saw.
    let mut encoder = Encoder::default();
    let (key, value) = encoder.encode(&StreamPart::new("test-topic-stream"), now_ms(), br#"{"test-key":"test-value"}"#);
    if let Sent::QueueFull = producer.send(&topic, key, value)? {
        return Err(Error::System("the producer queue is full before the first record".into()));
    }
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let settled = producer.wait_settled(deadline, |_| Ok(()))?;
    if let Some(error) = producer.checkpoints().take_failure() {
        return Err(error);
    }
    if !settled {
        return Err(producer.diagnostics().explain(
            settings,
            &format!("the test message to topic `{topic}` was not acknowledged within {} s", CHECK_TIMEOUT.as_secs()),
        ));
    }
    Ok(())
}
