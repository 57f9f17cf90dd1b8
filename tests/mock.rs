//! Fault injection with librdkafka's mock cluster (a real Kafka protocol server inside this test process),
//! driving the connector binary as the platform does.

mod common;

use common::*;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{json, Value};
use std::time::Duration;

fn record(stream: &str, i: usize) -> String {
    format!("{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"{stream}\",\"emitted_at\":1602637589000,\"data\":{{\"i\":{i}}}}}}}\n")
}

fn state(n: usize) -> String {
    format!("{{\"type\":\"STATE\",\"state\":{{\"type\":\"LEGACY\",\"data\":{{\"n\":{n}}},\"id\":{n}}}}}\n")
}

/// A mock cluster with the topics of `streams` (pattern `{stream}`) and the files to run the connector on it.
struct Setup {
    mock: MockCluster<'static, DefaultProducerContext>,
    config: String,
    catalog: String,
    _scratch: Scratch,
}

fn setup(name: &str, streams: &[&str]) -> Setup {
    setup_with(name, streams, |_| {})
}

fn setup_with(name: &str, streams: &[&str], change: impl FnOnce(&mut Value)) -> Setup {
    let mock = MockCluster::new(1).unwrap();
    for s in streams {
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
fn live_past_state_1(s: &Setup) -> Live {
    let mut live = Live::start(&["write", "--config", &s.config, "--catalog", &s.catalog]);
    live.send(&(record("users", 0) + &state(1)));
    let first = live.next_state(Duration::from_secs(20)).expect("state 1 once its record is acknowledged");
    assert_eq!(first["state"]["id"], 1);
    live
}

/// Takes the broker down, then sends `input`, whose records now cannot be delivered.
fn send_to_dead_broker(s: &Setup, live: &mut Live, input: &str) {
    s.mock.broker_down(1).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    live.send(input);
}

#[test]
fn no_state_while_its_records_are_unacknowledged() {
    let s = setup("broker-down", &["users"]);
    let mut live = live_past_state_1(&s);

    send_to_dead_broker(&s, &mut live, &(record("users", 1) + &record("users", 2) + &state(2)));
    assert!(
        live.next_state(Duration::from_secs(3)).is_none(),
        "a state was emitted while its records could not reach the broker"
    );

    s.mock.broker_up(1).unwrap();
    let second = live.next_state(Duration::from_secs(30)).expect("state 2 once the broker is back");
    assert_eq!(second["state"]["id"], 2);
    assert_eq!(second["state"]["destinationStats"]["recordCount"], json!(2.0));

    let (status, rest) = live.finish();
    assert!(status.success());
    assert!(of_type(&rest, "TRACE").is_empty());
}

#[test]
fn a_failed_record_ends_the_sync_and_holds_every_later_state() {
    let s = setup("produce-error", &["users"]);
    let mut live = live_past_state_1(&s);

    // Not retriable: librdkafka fails the batch at once.
    s.mock.request_errors(RDKafkaApiKey::Produce, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED]);
    live.send(&(record("users", 1) + &state(2) + &record("users", 2) + &state(3)));
    let (status, rest) = live.finish();
    assert!(!status.success(), "a lost record must fail the sync");
    assert!(of_type(&rest, "STATE").is_empty(), "no state after the failed record: {rest:?}");
    let traces = of_type(&rest, "TRACE");
    assert_eq!(traces.len(), 1);
    let error = &traces[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "config_error");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("`users`") && message.contains("uthoriz"), "{message}");
}

#[test]
fn many_states_come_out_in_order_with_exact_counts() {
    let streams = ["a", "b", "c"];
    let s = setup("ordering", &streams);
    let mut input = String::new();
    let mut expected = Vec::new();
    let mut since = 0;
    for i in 0..3000 {
        input += &record(streams[i % 3], i);
        since += 1;
        if i % 7 == 6 {
            input += &state(i);
            expected.push((i, since));
            since = 0;
        }
    }
    let out = run(&["write", "--config", &s.config, "--catalog", &s.catalog], &input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let msgs = messages(&out);
    let states: Vec<(usize, usize)> = of_type(&msgs, "STATE")
        .iter()
        .map(|m| {
            let count = m["state"]["destinationStats"]["recordCount"].as_f64().unwrap();
            (m["state"]["id"].as_u64().unwrap() as usize, count as usize)
        })
        .collect();
    assert_eq!(states, expected);
}

#[test]
fn stream_states_count_per_stream() {
    let s = setup("stream-states", &["a", "b"]);
    let stream_state = |name: &str, id: u32| {
        format!(
            "{{\"type\":\"STATE\",\"state\":{{\"type\":\"STREAM\",\"stream\":{{\"stream_descriptor\":{{\"name\":\"{name}\"}},\"stream_state\":{{}}}},\"id\":{id}}}}}\n"
        )
    };
    let input = record("a", 0)
        + &record("b", 1)
        + &record("a", 2)
        + &stream_state("a", 1)
        + &record("b", 3)
        + &stream_state("b", 2);
    let out = run(&["write", "--config", &s.config, "--catalog", &s.catalog], &input);
    assert!(out.status.success());
    let msgs = messages(&out);
    let counts: Vec<Value> =
        of_type(&msgs, "STATE").iter().map(|m| m["state"]["destinationStats"]["recordCount"].clone()).collect();
    assert_eq!(counts, vec![json!(2.0), json!(2.0)]);
}

#[test]
fn oversized_records_fail_with_a_hint() {
    let s = setup("too-large", &["users"]);
    let big = format!(
        "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"users\",\"emitted_at\":1,\"data\":{{\"blob\":\"{}\"}}}}}}\n",
        "x".repeat(1_100_000)
    );
    let out = run(
        &["write", "--config", &s.config, "--catalog", &s.catalog],
        &(record("users", 0) + &state(1) + &big + &state(2)),
    );
    assert!(!out.status.success());
    let msgs = messages(&out);
    let states = of_type(&msgs, "STATE");
    assert!(states.iter().all(|m| m["state"]["id"] == 1), "no state past the oversized record");
    let error = &of_type(&msgs, "TRACE")[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "config_error");
    assert!(error["message"].as_str().unwrap().contains("max_request_size"), "{error}");
}

#[test]
fn sigterm_stops_reading_and_emits_only_kept_promises() {
    let s = setup("sigterm", &["users"]);
    let mut live = live_past_state_1(&s);

    // Records stuck behind a dead broker when the platform stops the sync: their state must not go out.
    send_to_dead_broker(&s, &mut live, &(record("users", 1) + &state(2)));
    std::thread::sleep(Duration::from_millis(300));
    let kill = std::process::Command::new("kill").args(["-TERM", &live.child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let started = std::time::Instant::now();
    // `try_wait`, not `wait`: stdin stays open, as it does when the platform stops a sync.
    let status = loop {
        if let Some(status) = live.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the stop is bounded");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "an interrupted sync exits non-zero");
    let rest: Vec<Value> = live.lines.iter().map(|l| serde_json::from_str(&l).unwrap()).collect();
    assert!(of_type(&rest, "STATE").is_empty(), "state 2 covers an unacknowledged record: {rest:?}");
    let traces = of_type(&rest, "TRACE");
    assert_eq!(traces.len(), 1);
    assert!(traces[0]["trace"]["error"]["message"].as_str().unwrap().contains("signal"));
}

/// A producer queue of 1,024 messages (the least `buffer_memory` gives, one message per KiB) fills up while the
/// broker is down.
fn small_queue(max_block_ms: &str) -> impl FnOnce(&mut Value) + '_ {
    move |c| {
        c["buffer_memory"] = json!("1048576");
        c["max_block_ms"] = json!(max_block_ms);
    }
}

fn records(from: usize, to: usize) -> String {
    (from..to).map(|i| record("users", i)).collect()
}

#[test]
fn a_full_queue_waits_for_the_broker_and_resumes() {
    let s = setup_with("queue-full-resumes", &["users"], small_queue("60000"));
    let mut live = live_past_state_1(&s);
    send_to_dead_broker(&s, &mut live, &(records(1, 3001) + &state(2)));
    assert!(live.next_state(Duration::from_secs(3)).is_none(), "state 2 while the queue is stuck");
    s.mock.broker_up(1).unwrap();
    let second = live.next_state(Duration::from_secs(60)).expect("state 2 once the broker is back");
    assert_eq!(second["state"]["destinationStats"]["recordCount"], json!(3000.0));
    let (status, rest) = live.finish();
    assert!(status.success(), "{rest:?}");
}

#[test]
fn a_full_queue_with_no_progress_fails_after_max_block_ms() {
    let s = setup_with("queue-full-gives-up", &["users"], small_queue("2000"));
    let mut live = live_past_state_1(&s);
    let started = std::time::Instant::now();
    send_to_dead_broker(&s, &mut live, &(records(1, 3001) + &state(2)));
    let (status, rest) = live.finish();
    assert!(!status.success());
    assert!(started.elapsed() < Duration::from_secs(30), "gave up in {:?}", started.elapsed());
    assert!(of_type(&rest, "STATE").is_empty(), "no state past records that never left: {rest:?}");
    let traces = of_type(&rest, "TRACE");
    assert_eq!(traces.len(), 1, "{rest:?}");
    let error = &traces[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "transient_error");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("max_block_ms") && message.contains("2000 ms"), "{message}");
}
