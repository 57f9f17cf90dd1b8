//! Shared by the integration tests: a real tansu broker started by the project's script, the connector binary
//! run as a child process, and a consumer that reads topics back from the earliest offset.
#![allow(dead_code)]

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_destination-kafka");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of `tests/fixtures` (Airbyte's acceptance-test datasets, the Java spec).
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// A tansu broker on a free 127.0.0.1 port, stopped when dropped.
pub struct Broker {
    child: Child,
    pub port: u16,
}

impl Broker {
    pub fn start() -> Broker {
        Broker::launch(&[])
    }

    /// A broker that demands SASL authentication (and knows no users).
    pub fn start_sasl() -> Broker {
        Broker::launch(&["--sasl"])
    }

    /// The tansu build that does transactions (commits, aborts, fences; see scripts/tansu-broker).
    pub fn start_transactional() -> Broker {
        Broker::launch(&["--transactions"])
    }

    pub fn launch(options: &[&str]) -> Broker {
        Broker::launch_on(free_port(), options)
    }

    pub fn launch_on(port: u16, options: &[&str]) -> Broker {
        let mut cmd = Command::new(repo().join("scripts/tansu-broker"));
        cmd.arg(port.to_string()).args(options).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().expect("scripts/tansu-broker (install tansu with scripts/install-deps)");
        let broker = Broker { child, port };
        // The first start of the transactional build installs it (a cached venv); SASL creates users first.
        wait_for_port(port, Duration::from_secs(if options.is_empty() { 20 } else { 180 }));
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_for_port(port: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on port {port}: is tansu installed (scripts/install-deps)?"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A config shaped like the ones Airbyte saved for the Java connector, with numbers as strings.
pub fn java_config(bootstrap: &str) -> Value {
    json!({
        "bootstrap_servers": bootstrap,
        "topic_pattern": "{namespace}.{stream}.test.topic",
        "protocol": {"security_protocol": "PLAINTEXT"},
        "acks": "all", "enable_idempotence": false, "compression_type": "none",
        "batch_size": "16384", "linger_ms": "0", "max_in_flight_requests_per_connection": "5",
        "client_dns_lookup": "use_all_dns_ips", "buffer_memory": "33554432", "max_request_size": "1048576",
        "retries": "2147483647", "socket_connection_setup_timeout_ms": "10000",
        "socket_connection_setup_timeout_max_ms": "30000", "max_block_ms": "60000",
        "request_timeout_ms": "30000", "delivery_timeout_ms": "120000",
        "send_buffer_bytes": "-1", "receive_buffer_bytes": "-1",
        "sync_producer": false, "topic_partitions": 1
    })
}

/// A directory for a test's files, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        // Unique per call: tests of one binary run in parallel in one process, and may share a name.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dk-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn write(&self, name: &str, content: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    pub fn json(&self, name: &str, value: &Value) -> String {
        self.write(name, &value.to_string())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configured catalog (append, full refresh) from a plain catalog file or value.
pub fn configured(catalog: &Value) -> Value {
    let streams: Vec<Value> = catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!({"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "append"}))
        .collect();
    json!({ "streams": streams })
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The binary with piped stdin and stdout.
fn spawn(args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Child {
    let mut command = Command::new(BIN);
    command.args(args).envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr);
    command.spawn().unwrap()
}

/// Runs the binary to completion with `stdin` as its input.
pub fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = spawn(args, &[], Stdio::piped());
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Output lines parsed as JSON; fails the test on any line that is not (stdout carries only Airbyte messages).
pub fn messages(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}")))
        .collect()
}

pub fn of_type<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["type"] == kind).collect()
}

/// A running connector whose stdout is read line by line, for tests that watch it mid-sync.
pub struct Live {
    pub child: Child,
    pub lines: Receiver<String>,
}

impl Live {
    pub fn start(args: &[&str]) -> Live {
        Live::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Live {
        let mut child = spawn(args, env, Stdio::null());
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Live { child, lines }
    }

    pub fn send(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the next STATE (skipping LOGs), or gives up after `wait`.
    pub fn next_state(&self, wait: Duration) -> Option<Value> {
        self.until_state(wait).0
    }

    /// The next STATE (or none within `wait`) and the messages written before it.
    pub fn until_state(&self, wait: Duration) -> (Option<Value>, Vec<Value>) {
        let deadline = Instant::now() + wait;
        let mut before = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else { break };
            let msg: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if msg["type"] == "STATE" {
                return (Some(msg), before);
            }
            before.push(msg);
        }
        (None, before)
    }

    /// Every message written within `wait`.
    pub fn messages_for(&self, wait: Duration) -> Vec<Value> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => out.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))),
                Err(_) => break,
            }
        }
        out
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits (stdin left open, as the platform does when it stops a sync) for the exit, at most `limit`; returns
    /// the status, how long it took, and every remaining output message.
    pub fn exit_within(mut self, limit: Duration) -> (std::process::ExitStatus, Duration, Vec<Value>) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < limit, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = started.elapsed();
        let rest = self.lines.iter().map(|l| serde_json::from_str(&l).unwrap()).collect();
        (status, took, rest)
    }

    /// Closes stdin and returns the exit status and every remaining output message.
    pub fn finish(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        let rest = self.lines.iter().map(|l| serde_json::from_str(&l).unwrap()).collect();
        (status, rest)
    }
}

/// One message as a consumer reads it back.
#[derive(Debug)]
pub struct Read {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    /// `None`: a tombstone.
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp: Option<i64>,
}

/// Every message of a topic (all partitions) from the earliest offset: (partition, key, value), in offset order
/// per partition. Stops when `expected` messages are read, or fails after a timeout.
pub fn consume(bootstrap: &str, topic: &str, expected: usize) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    read_back(bootstrap, topic, expected)
        .into_iter()
        .map(|m| (m.partition, m.key.unwrap_or_default(), m.value.unwrap_or_default()))
        .collect()
}

/// Like `consume`, with everything a message carries.
pub fn read_back(bootstrap: &str, topic: &str, expected: usize) -> Vec<Read> {
    read_back_with(bootstrap, &[], topic, expected)
}

/// Like `read_back`, with more consumer properties (TLS, SASL).
pub fn read_back_with(bootstrap: &str, properties: &[(&str, &str)], topic: &str, expected: usize) -> Vec<Read> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "destination-kafka-tests")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10");
    for (key, value) in properties {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config.create().unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < expected {
        assert!(Instant::now() < deadline, "read {} of {expected} messages from {topic}", out.len());
        if let Some(msg) = consumer.poll(Duration::from_millis(100)) {
            let msg = msg.unwrap();
            let headers = msg
                .headers()
                .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
                .unwrap_or_default();
            out.push(Read {
                partition: msg.partition(),
                key: msg.key().map(<[u8]>::to_vec),
                value: msg.payload().map(<[u8]>::to_vec),
                headers,
                timestamp: msg.timestamp().to_millis(),
            });
        }
    }
    // Nothing more than expected: poll a little longer to catch extra messages.
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        if let Some(msg) = consumer.poll(Duration::from_millis(50)) {
            let msg = msg.unwrap();
            panic!("unexpected extra message in {topic} at offset {}", msg.offset());
        }
    }
    out
}

// ---- Input lines and librdkafka's mock cluster, for the fault-injection tests.

pub fn record(stream: &str, i: usize) -> String {
    format!("{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"{stream}\",\"emitted_at\":1602637589000,\"data\":{{\"i\":{i}}}}}}}\n")
}

pub fn state(n: usize) -> String {
    format!("{{\"type\":\"STATE\",\"state\":{{\"type\":\"LEGACY\",\"data\":{{\"n\":{n}}},\"id\":{n}}}}}\n")
}

/// A mock cluster with the topics of `streams` (pattern `{stream}`) and the files to run the connector on it.
pub struct Setup {
    pub mock: MockCluster<'static, DefaultProducerContext>,
    pub config: String,
    pub catalog: String,
    _scratch: Scratch,
}

pub fn setup(name: &str, streams: &[&str]) -> Setup {
    setup_with(name, streams, |_| {})
}

pub fn setup_with(name: &str, streams: &[&str], change: impl FnOnce(&mut Value)) -> Setup {
    setup_with_topics(name, streams, &[], change)
}

/// The same, with `more_topics` created too (the mock cluster does not create topics on request).
pub fn setup_with_topics(name: &str, streams: &[&str], more_topics: &[&str], change: impl FnOnce(&mut Value)) -> Setup {
    let mock = MockCluster::new(1).unwrap();
    for s in streams.iter().chain(more_topics) {
        mock.create_topic(s, 1, 1).unwrap();
    }
    let scratch = Scratch::new(name);
    let mut config = java_config(&mock.bootstrap_servers());
    config["topic_pattern"] = json!("{stream}");
    config["acks"] = json!("1");
    change(&mut config);
    let config = scratch.json("config.json", &config);
    let catalog = scratch
        .json("catalog.json", &json!({"streams": streams.iter().map(|s| json!({"name": s})).collect::<Vec<_>>()}));
    Setup { mock, config, catalog, _scratch: scratch }
}

/// A connector writing to the mock cluster, past its first record and state (so the pipeline is known to work).
pub fn live_past_state_1(s: &Setup) -> Live {
    let mut live = Live::start(&["write", "--config", &s.config, "--catalog", &s.catalog]);
    live.send(&(record("users", 0) + &state(1)));
    let first = live.next_state(Duration::from_secs(20)).expect("state 1 once its record is acknowledged");
    assert_eq!(first["state"]["id"], 1);
    live
}

/// Takes the broker down, then sends `input`, whose records now cannot be delivered.
pub fn send_to_dead_broker(s: &Setup, live: &mut Live, input: &str) {
    s.mock.broker_down(1).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    live.send(input);
}

pub fn records(from: usize, to: usize) -> String {
    (from..to).map(|i| record("users", i)).collect()
}
