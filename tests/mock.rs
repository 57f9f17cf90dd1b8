//! Fault injection with librdkafka's mock cluster (a real Kafka protocol server inside this test process),
//! driving the connector binary as the platform does. Waits are on what the connector says (its STATEs, its log
//! and progress lines), never on the clock.

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{json, Value};
use test_support::mock::Setup;
use test_support::*;

#[test]
fn no_state_while_its_records_are_unacknowledged() {
    let s = Setup::new("broker-down", &["users"]);
    let mut live = s.live_past_state_1_with_env(&[PROGRESS_EVERY_SECOND]);
    s.send_to_dead_broker(&mut live, &(record("users", 1) + &record("users", 2) + &state(2)));
    // The connector says it holds both records, read after state 1, unacknowledged: state 2 must not be out.
    let before = live.until_log("3 messages sent");
    assert!(of_type(&before, "STATE").is_empty(), "a state while its records could not reach the broker: {before:?}");
    let held = live.until_log("2 in flight");
    assert!(of_type(&held, "STATE").is_empty(), "{held:?}");
    s.mock.broker_up(1).unwrap();
    let second = live.next_state(PATIENCE).expect("state 2 once the broker is back");
    assert_eq!(second["state"]["id"], 2);
    assert_eq!(second["state"]["destinationStats"]["recordCount"], json!(2.0));
    let (status, rest) = live.finish();
    assert!(status.success());
    assert!(of_type(&rest, "TRACE").is_empty());
}

#[test]
fn a_failed_record_ends_the_sync_and_holds_every_later_state() {
    let s = Setup::new("produce-error", &["users"]);
    let mut live = s.live_past_state_1();

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
    let s = Setup::new("ordering", &streams);
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
    let out = run(&s.files.write_args(), &input);
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
    let s = Setup::new("stream-states", &["a", "b"]);
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
    let out = run(&s.files.write_args(), &input);
    assert!(out.status.success());
    let msgs = messages(&out);
    let counts: Vec<Value> =
        of_type(&msgs, "STATE").iter().map(|m| m["state"]["destinationStats"]["recordCount"].clone()).collect();
    assert_eq!(counts, vec![json!(2.0), json!(2.0)]);
}

#[test]
fn oversized_records_fail_with_a_hint() {
    let s = Setup::new("too-large", &["users"]);
    let big = format!(
        "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"users\",\"emitted_at\":1,\"data\":{{\"blob\":\"{}\"}}}}}}\n",
        "x".repeat(1_100_000)
    );
    let out = run(&s.files.write_args(), &(record("users", 0) + &state(1) + &big + &state(2)));
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
fn a_line_over_the_limit_is_refused_without_being_held_whole() {
    // max_request_size is 1048576: a line may hold that plus 1 MiB for the message around the data.
    let s = Setup::new("line-limit", &["users"]);
    let huge = format!(
        "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"users\",\"data\":{{\"blob\":\"{}\"}}}}}}\n",
        "x".repeat(3_000_000)
    );
    let out = run(&s.files.write_args(), &(record("users", 0) + &state(1) + &huge + &state(2)));
    assert!(!out.status.success());
    let msgs = messages(&out);
    assert_eq!(state_ids(&msgs), vec![1], "no state past the refused record");
    let error = the_trace(&msgs);
    assert_eq!(error["failure_type"], "config_error");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("input line 3: stream `users`: the RECORD is"), "{message}");
    assert!(message.contains("over the 2097152 bytes") && message.contains("`max_request_size`"), "{message}");
    // A line that never ends (no newline, 70 MB of something that is not a record) is given up on too.
    let endless = "y".repeat(70 << 20);
    let out = run(&s.files.write_args(), &(record("users", 0) + &state(1) + &endless));
    let msgs = messages(&out);
    assert_eq!(state_ids(&msgs), vec![1]);
    let message = the_trace(&msgs)["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("input line 3: a line of") && message.contains("bytes or more, over the"), "{message}");
}

/// Progress lines every second: the tests wait on what they say.
const PROGRESS_EVERY_SECOND: (&str, &str) = ("DESTINATION_KAFKA_PROGRESS_SECONDS", "1");

/// The end of a sync stopped by a signal while records were stuck: no state past them, one TRACE, and the wait for
/// them bounded by the grace (said in the log; without it, the delivery timeout of 120 s would outlast the test's
/// patience).
fn stopped_with_records_stuck(live: Live) {
    let (status, rest) = live.exit();
    assert!(!status.success(), "an interrupted sync exits non-zero");
    assert!(of_type(&rest, "STATE").is_empty(), "no state covers an unacknowledged record: {rest:?}");
    assert!(the_trace(&rest)["message"].as_str().unwrap().contains("stopped by a signal"), "{rest:?}");
    assert!(log_lines(&rest).iter().any(|l| l.contains("grace: given up")), "{rest:?}");
}

#[test]
fn sigterm_stops_reading_and_emits_only_kept_promises() {
    let s = Setup::new("sigterm", &["users"]);
    let mut live = s.live_past_state_1_with_env(&[PROGRESS_EVERY_SECOND]);
    // Records stuck behind a dead broker when the platform stops the sync: their state must not go out.
    s.send_to_dead_broker(&mut live, &(record("users", 1) + &state(2)));
    live.until_log("1 in flight");
    live.signal("TERM");
    stopped_with_records_stuck(live);
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
    let s = Setup::with("queue-full-resumes", &["users"], &[], small_queue("60000"));
    let mut live = s.live_past_state_1();
    s.send_to_dead_broker(&mut live, &(records(1, 3001) + &state(2)));
    let before = live.until_log("the producer queue is full");
    assert!(of_type(&before, "STATE").is_empty(), "state 2 while the queue is stuck: {before:?}");
    s.mock.broker_up(1).unwrap();
    let second = live.next_state(PATIENCE).expect("state 2 once the broker is back");
    assert_eq!(second["state"]["destinationStats"]["recordCount"], json!(3000.0));
    let (status, rest) = live.finish();
    assert!(status.success(), "{rest:?}");
}

#[test]
fn a_full_queue_with_no_progress_fails_after_max_block_ms() {
    let s = Setup::with("queue-full-gives-up", &["users"], &[], small_queue("2000"));
    let mut live = s.live_past_state_1();
    s.send_to_dead_broker(&mut live, &(records(1, 3001) + &state(2)));
    let (status, rest) = live.finish();
    assert!(!status.success());
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
    let s = Setup::with("sigterm-queue-full", &["users"], &[], small_queue("600000"));
    let mut live = s.live_past_state_1();
    s.send_to_dead_broker(&mut live, &(records(1, 3001) + &state(2)));
    // The queue is full (the connector says so), and max_block_ms would wait ten minutes for room.
    live.until_log("the producer queue is full");
    live.signal("TERM");
    stopped_with_records_stuck(live);
}

#[test]
fn a_record_larger_than_buffer_memory_but_allowed_by_max_request_size_is_written() {
    let s = Setup::with("big-record", &["users"], &[], |c| {
        c["buffer_memory"] = json!("1048576");
        c["max_request_size"] = json!(3_000_000);
    });
    let big = format!(
        "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"users\",\"emitted_at\":1,\"data\":{{\"blob\":\"{}\"}}}}}}\n",
        "x".repeat(2_000_000)
    );
    let msgs = run_ok(&s.files.write_args(), &(big + &state(1)));
    assert_eq!(of_type(&msgs, "STATE")[0]["state"]["destinationStats"]["recordCount"], json!(1.0));
    let said = of_type(&msgs, "LOG").iter().any(|m| {
        let text = m["log"]["message"].as_str().unwrap();
        m["log"]["level"] == "WARN" && text.contains("`buffer_memory`") && text.contains("3000000 bytes")
    });
    assert!(said, "the raised queue size is said in the log");
}

#[test]
fn progress_is_logged_during_a_stall_and_says_what_it_waits_for() {
    let s = Setup::new("progress", &["users"]);
    let mut live = s.live_past_state_1_with_env(&[PROGRESS_EVERY_SECOND]);
    s.send_to_dead_broker(&mut live, &(records(1, 11) + &state(2)));
    // Two progress lines while stalled, each saying what is held and for how long.
    let stalled = |m: &Value| m["type"] == "LOG" && m["log"]["message"].as_str().unwrap().contains("10 in flight");
    let (first, _) = live.until(PATIENCE, stalled);
    let (last, _) = live.until(PATIENCE, stalled);
    let lines: Vec<String> = [first, last].iter().map(|m| m.as_ref().unwrap()["log"]["message"].to_string()).collect();
    let last = &lines[1];
    assert!(last.contains("11 messages sent") && last.contains("10 in flight"), "{last}");
    assert!(last.contains("last acknowledgement") && last.contains("oldest unacknowledged record sent"), "{last}");
    assert!(last.contains("waiting"), "{last}");
    let (statistics, _) =
        live.until(PATIENCE, |m| m["log"]["message"].to_string().contains("librdkafka: broker round trip"));
    assert!(statistics.is_some(), "librdkafka's statistics in the progress line");
    s.mock.broker_up(1).unwrap();
    assert!(live.next_state(PATIENCE).is_some());
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
    let (listener, address) = silent_port();
    let mut config = java_config(&address);
    // Ten minutes of startup budget: only honouring the stop ends the sync within the test's patience.
    config["max_block_ms"] = json!("600000");
    let files = Files::new("sigterm-startup", &config, &catalog(&["users"]));
    let live = Live::start(&files.write_args());
    // The connector is in its startup once it has connected to the broker that never answers.
    let (_connection, _) = listener.accept().unwrap();
    live.signal("TERM");
    let (status, rest) = live.exit();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    let error = the_trace(&rest);
    assert_eq!(error["failure_type"], "transient_error");
    assert!(error["message"].as_str().unwrap().contains("stopped by a signal"), "{error}");
}

fn trace_message(out: &std::process::Output) -> String {
    the_trace(&messages(out))["message"].as_str().unwrap().to_string()
}

#[test]
fn hostile_input_is_never_dropped_silently() {
    let s = Setup::new("hostile-input", &["users"]);
    let write = |input: &str| run(&s.files.write_args(), input);

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
    let s = Setup::with("acks-0", &["users"], &[], |c| c["acks"] = json!("0"));
    let out = run(&s.files.write_args(), &(record("users", 0) + &state(1)));
    assert!(out.status.success());
    let msgs = messages(&out);
    assert!(of_type(&msgs, "LOG")
        .iter()
        .any(|m| m["log"]["level"] == "WARN" && m["log"]["message"].as_str().unwrap().contains("sent, not stored")));
    let out = run(&["check", "--config", &s.files.config], "");
    let msgs = messages(&out);
    let status = &of_type(&msgs, "CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED");
    assert!(status["message"].as_str().unwrap().contains("sent, not stored"), "{status}");
}
