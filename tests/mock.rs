//! Fault injection with librdkafka's mock cluster (a real Kafka protocol server inside this test process),
//! driving the connector binary as the platform does.

mod common;

use common::*;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{json, Value};
use std::time::Duration;

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
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("input line 3: ") && message.contains("max_request_size"), "{message}");
}

#[test]
fn sigterm_stops_reading_and_emits_only_kept_promises() {
    let s = setup("sigterm", &["users"]);
    let mut live = live_past_state_1(&s);

    // Records stuck behind a dead broker when the platform stops the sync: their state must not go out.
    send_to_dead_broker(&s, &mut live, &(record("users", 1) + &state(2)));
    std::thread::sleep(Duration::from_millis(300));
    live.signal("TERM");
    let (status, took, rest) = live.exit_within(Duration::from_secs(20));
    assert!(!status.success(), "an interrupted sync exits non-zero");
    assert!(took < Duration::from_secs(9), "inside docker stop's 10 s: {took:?}");
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

#[test]
fn sigterm_while_the_queue_is_full_stops_within_the_grace() {
    let s = setup_with("sigterm-queue-full", &["users"], small_queue("60000"));
    let mut live = live_past_state_1(&s);
    send_to_dead_broker(&s, &mut live, &(records(1, 3001) + &state(2)));
    std::thread::sleep(Duration::from_secs(1));
    live.signal("TERM");
    let (status, took, rest) = live.exit_within(Duration::from_secs(20));
    assert!(!status.success());
    assert!(took < Duration::from_secs(9), "inside docker stop's 10 s: {took:?}");
    assert!(of_type(&rest, "STATE").is_empty(), "{rest:?}");
    let traces = of_type(&rest, "TRACE");
    assert_eq!(traces.len(), 1, "{rest:?}");
    assert!(traces[0]["trace"]["error"]["message"].as_str().unwrap().contains("stopped by a signal"), "{rest:?}");
}

#[test]
fn a_record_larger_than_buffer_memory_but_allowed_by_max_request_size_is_written() {
    let s = setup_with("big-record", &["users"], |c| {
        c["buffer_memory"] = json!("1048576");
        c["max_request_size"] = json!(3_000_000);
    });
    let big = format!(
        "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"users\",\"emitted_at\":1,\"data\":{{\"blob\":\"{}\"}}}}}}\n",
        "x".repeat(2_000_000)
    );
    let started = std::time::Instant::now();
    let out = run(&["write", "--config", &s.config, "--catalog", &s.catalog], &(big + &state(1)));
    let msgs = messages(&out);
    assert!(out.status.success(), "{:?}", of_type(&msgs, "TRACE"));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(of_type(&msgs, "STATE")[0]["state"]["destinationStats"]["recordCount"], json!(1.0));
    let said = of_type(&msgs, "LOG").iter().any(|m| {
        let text = m["log"]["message"].as_str().unwrap();
        m["log"]["level"] == "WARN" && text.contains("`buffer_memory`") && text.contains("3000000 bytes")
    });
    assert!(said, "the raised queue size is said in the log");
}

#[test]
fn progress_is_logged_during_a_stall_and_says_what_it_waits_for() {
    let s = setup("progress", &["users"]);
    let args = ["write", "--config", &s.config, "--catalog", &s.catalog];
    let mut live = Live::start_with_env(&args, &[("DESTINATION_KAFKA_PROGRESS_SECONDS", "1")]);
    live.send(&(record("users", 0) + &state(1)));
    assert!(live.next_state(Duration::from_secs(20)).is_some());
    send_to_dead_broker(&s, &mut live, &(records(1, 11) + &state(2)));
    let logs: Vec<String> = live
        .messages_for(Duration::from_secs(4))
        .iter()
        .filter(|m| m["type"] == "LOG")
        .map(|m| m["log"]["message"].as_str().unwrap().to_string())
        .filter(|m| m.contains("records read"))
        .collect();
    assert!(logs.len() >= 2, "a progress line every second while stalled: {logs:?}");
    let last = logs.last().unwrap();
    assert!(last.contains("11 records read") && last.contains("10 in flight"), "{last}");
    assert!(last.contains("last acknowledgement") && last.contains("oldest unacknowledged record sent"), "{last}");
    assert!(last.contains("waiting"), "{last}");
    assert!(logs.iter().any(|l| l.contains("librdkafka: broker round trip")), "librdkafka's statistics: {logs:?}");
    s.mock.broker_up(1).unwrap();
    assert!(live.next_state(Duration::from_secs(30)).is_some());
    assert!(live.finish().0.success());
}

/// A TCP port that accepts connections (the kernel's backlog) and never answers: a broker stuck at startup.
fn silent_port() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    (listener, address)
}

#[test]
fn sigterm_during_startup_is_a_trace_and_exit_1() {
    let (_listener, address) = silent_port();
    let scratch = Scratch::new("sigterm-startup");
    let mut config = java_config(&address);
    config["max_block_ms"] = json!("60000");
    let config = scratch.json("config.json", &config);
    let catalog = scratch.json("catalog.json", &json!({"streams": [{"name": "users"}]}));
    let live = Live::start(&["write", "--config", &config, "--catalog", &catalog]);
    std::thread::sleep(Duration::from_millis(1500));
    live.signal("TERM");
    let (status, took, rest) = live.exit_within(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{rest:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let traces = of_type(&rest, "TRACE");
    assert_eq!(traces.len(), 1, "{rest:?}");
    let error = &traces[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "transient_error");
    assert!(error["message"].as_str().unwrap().contains("stopped by a signal"), "{error}");
}

fn trace_message(out: &std::process::Output) -> String {
    let msgs = messages(out);
    let traces = of_type(&msgs, "TRACE");
    assert_eq!(traces.len(), 1, "{msgs:?}");
    traces[0]["trace"]["error"]["message"].as_str().unwrap().to_string()
}

#[test]
fn hostile_input_is_never_dropped_silently() {
    let s = setup("hostile-input", &["users"]);
    let write = |input: &str| run(&["write", "--config", &s.config, "--catalog", &s.catalog], input);

    // A lower-case type is a broken record, not a new message type.
    let lower = record("users", 0) + &record("users", 1).replace("\"RECORD\"", "\"record\"") + &state(1);
    let out = write(&lower);
    assert!(!out.status.success());
    let message = trace_message(&out);
    assert!(message.starts_with("input line 2:") && message.contains("upper case"), "{message}");

    // No type at all: fails, naming the line.
    let out = write(&(record("users", 0) + "{\"record\":{\"stream\":\"users\",\"data\":{}}}\n"));
    assert!(trace_message(&out).starts_with("input line 2: not an Airbyte message: no `type`"));

    // A JSON array is not a message.
    let out = write("[\"RECORD\",{\"stream\":\"users\",\"data\":{}},null]\n");
    assert!(trace_message(&out).starts_with("input line 1:"));

    // An unknown type is skipped, with its line in the log; the counts stay exact.
    let input = record("users", 0) + "{\"type\":\"FUTURE\",\"future\":{}}\n" + &record("users", 1) + &state(1);
    let out = write(&input);
    assert!(out.status.success());
    let msgs = messages(&out);
    assert_eq!(of_type(&msgs, "STATE")[0]["state"]["destinationStats"]["recordCount"], json!(2.0));
    let warned = of_type(&msgs, "LOG").iter().any(|m| {
        let text = m["log"]["message"].as_str().unwrap();
        text.contains("input line 2") && text.contains("`FUTURE`")
    });
    assert!(warned, "{msgs:?}");

    // emitted_at as a numeric string is accepted; out of range is refused with the line.
    let as_string = record("users", 0).replace("1602637589000", "\"1602637589000\"") + &state(1);
    assert!(write(&as_string).status.success());
    let out = write(&(record("users", 0) + &record("users", 1).replace("1602637589000", "1.7e300")));
    let message = trace_message(&out);
    assert!(message.starts_with("input line 2:") && message.contains("out of range"), "{message}");

    // A STREAM state nested deeper than serde's recursion limit (128) still counts its stream. (Read back as text:
    // this test's own JSON parser has that limit.)
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let stream_state = format!(
        "{{\"type\":\"STATE\",\"state\":{{\"type\":\"STREAM\",\"stream\":{{\"stream_descriptor\":{{\"name\":\"users\"}},\"stream_state\":{deep}}}}}}}\n"
    );
    let out = write(&(record("users", 0) + &record("users", 1) + &stream_state + &record("users", 2) + &stream_state));
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let counts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("{\"type\":\"STATE\""))
        .map(|l| l.rsplit_once("\"destinationStats\":").unwrap().1)
        .collect();
    assert_eq!(counts, vec!["{\"recordCount\":2.0}}}", "{\"recordCount\":1.0}}}"]);
}

#[test]
fn acks_0_is_accepted_with_a_warning_that_states_mean_sent() {
    let s = setup_with("acks-0", &["users"], |c| c["acks"] = json!("0"));
    let out = run(&["write", "--config", &s.config, "--catalog", &s.catalog], &(record("users", 0) + &state(1)));
    assert!(out.status.success());
    let msgs = messages(&out);
    assert!(of_type(&msgs, "LOG")
        .iter()
        .any(|m| m["log"]["level"] == "WARN" && m["log"]["message"].as_str().unwrap().contains("sent, not stored")));
    let out = run(&["check", "--config", &s.config], "");
    let msgs = messages(&out);
    let status = &of_type(&msgs, "CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED");
    assert!(status["message"].as_str().unwrap().contains("sent, not stored"), "{status}");
}
