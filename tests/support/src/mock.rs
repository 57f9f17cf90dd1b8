//! librdkafka's mock cluster (a real Kafka protocol server inside the test process) for injected faults: brokers
//! held down, errors injected into requests. It cannot show what only a real broker shows (read_committed
//! filtering, fencing, ACLs): those tests run on Apache Kafka.

use super::{java_config, record, state, Files, Live, PATIENCE};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use serde_json::{json, Value};

/// A mock cluster with the topics of `streams` (pattern `{stream}`) and the files to run the connector on it.
pub struct Setup {
    pub mock: MockCluster<'static, DefaultProducerContext>,
    pub files: Files,
}

impl Setup {
    pub fn new(name: &str, streams: &[&str]) -> Setup {
        Setup::with(name, streams, &[], |_| {})
    }

    /// `more_topics` are created too (the mock cluster does not create topics on request); `change` changes the
    /// config.
    pub fn with(name: &str, streams: &[&str], more_topics: &[&str], change: impl FnOnce(&mut Value)) -> Setup {
        let mock = MockCluster::new(1).unwrap();
        for s in streams.iter().chain(more_topics) {
            mock.create_topic(s, 1, 1).unwrap();
        }
        let mut config = java_config(&mock.bootstrap_servers());
        config["topic_pattern"] = json!("{stream}");
        config["acks"] = json!("1");
        change(&mut config);
        Setup { mock, files: Files::new(name, &config, &super::catalog(streams)) }
    }

    pub fn live(&self) -> Live {
        Live::start(&self.files.write_args())
    }

    /// A connector writing to the mock cluster, past its first record and state (the pipeline is known to work).
    pub fn live_past_state_1(&self) -> Live {
        self.live_past_state_1_with_env(&[])
    }

    pub fn live_past_state_1_with_env(&self, env: &[(&str, &str)]) -> Live {
        let mut live = Live::start_with_env(&self.files.write_args(), env);
        live.send(&(record("users", 0) + &state(1)));
        let first = live.next_state(PATIENCE).expect("state 1 once its record is acknowledged");
        assert_eq!(first["state"]["id"], 1);
        live
    }

    /// Takes the broker down (at once: it closes its connections and accepts none), then sends `input`, whose
    /// records now cannot be delivered.
    pub fn send_to_dead_broker(&self, live: &mut Live, input: &str) {
        self.mock.broker_down(1).unwrap();
        live.send(input);
    }
}
