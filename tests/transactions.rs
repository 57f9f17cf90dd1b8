//! Exactly-once delivery: a Kafka transaction per checkpoint.
//!
//! Two brokers, each for what it can show:
//! - librdkafka's mock cluster accepts the transactional requests and injects errors, but writes no commit/abort
//!   markers and does not fence: it is used for the state machine (commits per STATE, several STATEs per commit,
//!   errors on Produce and EndTxn, a retried commit timeout, an unsupported or fenced commit, SIGTERM).
//! - Apache Kafka commits, aborts and fences for real, and filters aborted and open transactions for
//!   `read_committed` consumers: what such consumers (librdkafka's and Kafka's own console consumer) see after a
//!   sync, a `kill -9`, a SIGTERM or a failed produce mid-transaction, and a zombie writer fenced by the
//!   coordinator.

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{json, Value};
use std::time::Duration;
use test_support::admin::create_topic;
use test_support::mock::Setup;
use test_support::*;

fn exactly_once(interval_ms: u64) -> impl FnOnce(&mut Value) {
    move |c| {
        c["delivery_guarantee"] = json!("exactly_once");
        c["transaction_commit_interval_ms"] = json!(interval_ms);
    }
}

fn write(s: &Setup, input: &str) -> std::process::Output {
    run(&s.files.write_args(), input)
}

fn commits(msgs: &[Value]) -> usize {
    let logs = log_lines(msgs);
    let line = logs.iter().find(|l| l.contains("transactions committed")).expect("the summary counts commits");
    line.split_whitespace().find_map(|w| w.parse().ok()).unwrap()
}

/// Progress lines every second: the tests wait on what they say.
const PROGRESS_EVERY_SECOND: (&str, &str) = ("DESTINATION_KAFKA_PROGRESS_SECONDS", "1");

#[test]
fn mock_a_commit_per_state_with_no_commit_interval() {
    let s = Setup::with("txn-per-state", &["users"], &[], exactly_once(0));
    let input = records(0, 3) + &state(1) + &records(3, 5) + &state(2) + &state(3) + &records(5, 6) + &state(4);
    let out = write(&s, &input);
    let msgs = messages(&out);
    assert!(out.status.success(), "{msgs:?}");
    assert_eq!(state_ids(&msgs), vec![1, 2, 3, 4]);
    let counts: Vec<Value> =
        of_type(&msgs, "STATE").iter().map(|m| m["state"]["destinationStats"]["recordCount"].clone()).collect();
    assert_eq!(counts, vec![json!(3.0), json!(2.0), json!(0.0), json!(1.0)]);
    // State 3 has no records of its own: it needs no commit.
    assert_eq!(commits(&msgs), 3);
}

#[test]
fn mock_one_commit_covers_the_states_that_arrive_within_the_interval() {
    let s = Setup::with("txn-batched", &["users"], &[], exactly_once(600_000));
    let mut live = s.live();
    // Five checkpoints in one write: the interval has not passed, so no commit until input pauses.
    let input: String = (1..=5).map(|n| records(n * 10, n * 10 + 10) + &state(n)).collect();
    live.send(&input);
    let first = live.next_state(PATIENCE).expect("the states once input pauses");
    assert_eq!(first["state"]["id"], 1);
    let (status, rest) = live.finish();
    assert!(status.success(), "{rest:?}");
    assert_eq!(state_ids(&rest), vec![2, 3, 4, 5]);
    assert_eq!(commits(&rest), 1, "one commit for five states");
}

#[test]
fn mock_a_sync_without_states_commits_at_the_end() {
    let s = Setup::with("txn-no-states", &["users"], &[], exactly_once(0));
    let out = write(&s, &records(0, 20));
    let msgs = messages(&out);
    assert!(out.status.success(), "{msgs:?}");
    assert_eq!(commits(&msgs), 1);
}

#[test]
fn mock_a_failed_produce_aborts_and_emits_no_later_state() {
    let s = Setup::with("txn-produce-error", &["users"], &[], exactly_once(0));
    let mut live = s.live();
    live.send(&(records(0, 2) + &state(1)));
    assert_eq!(live.next_state(PATIENCE).expect("state 1 committed")["state"]["id"], 1);
    s.mock.request_errors(RDKafkaApiKey::Produce, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED]);
    live.send(&(records(2, 4) + &state(2) + &records(4, 5) + &state(3)));
    let (status, rest) = live.finish();
    assert!(!status.success());
    assert!(state_ids(&rest).is_empty(), "{rest:?}");
    let error = the_trace(&rest);
    assert_eq!(error["failure_type"], "config_error");
    assert!(error["message"].as_str().unwrap().contains("uthoriz"), "{error}");
}

#[test]
fn mock_a_failed_commit_aborts_and_emits_no_state() {
    let s = Setup::with("txn-commit-error", &["users"], &[], exactly_once(0));
    s.mock.request_errors(RDKafkaApiKey::EndTxn, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_TXN_STATE]);
    let out = write(&s, &(records(0, 3) + &state(1) + &records(3, 4) + &state(2)));
    let msgs = messages(&out);
    assert!(!out.status.success());
    assert!(state_ids(&msgs).is_empty(), "{msgs:?}");
    let error = the_trace(&msgs);
    assert!(error["message"].as_str().unwrap().contains("commit"), "{error}");
}

#[test]
fn mock_a_commit_that_times_out_is_tried_again() {
    let s = Setup::with("txn-commit-timeout", &["users"], &[], exactly_once(0));
    let mut live = Live::start_with_env(&s.files.write_args(), &[PROGRESS_EVERY_SECOND]);
    live.send(&(records(0, 2) + &state(1)));
    assert!(live.next_state(PATIENCE).is_some());
    // Records acknowledged first (the progress line says so), then every answer takes 7 s: the commit's 5 s
    // attempt times out (retriable).
    live.send(&records(2, 4));
    live.until_log("4 acknowledged");
    s.mock.broker_round_trip_time(1, Duration::from_secs(7)).unwrap();
    live.send(&state(2));
    let (second, before) = live.until_state(PATIENCE);
    assert_eq!(second.expect("state 2 once the retried commit succeeds")["state"]["id"], 2);
    let waiting =
        log_lines(&before).into_iter().any(|l| l.contains("waiting for the broker to commit the transaction"));
    assert!(waiting, "the progress line says what the sync waits for between attempts: {before:?}");
    s.mock.broker_round_trip_time(1, Duration::ZERO).unwrap();
    let (status, rest) = live.finish();
    assert!(status.success(), "{rest:?}");
}

#[test]
fn mock_a_fenced_producer_fails_with_a_transient_error_saying_who_took_over() {
    let s = Setup::with("txn-fenced", &["users"], &[], exactly_once(0));
    s.mock.request_errors(RDKafkaApiKey::EndTxn, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED]);
    let out = write(&s, &(records(0, 3) + &state(1)));
    let msgs = messages(&out);
    assert!(!out.status.success());
    assert!(state_ids(&msgs).is_empty());
    let error = the_trace(&msgs);
    assert_eq!(error["failure_type"], "transient_error", "{error}");
    assert!(error["message"].as_str().unwrap().contains("another writer with the same transactional.id took over"));
}

#[test]
fn mock_sigterm_aborts_the_open_transaction_and_emits_only_committed_states() {
    let s = Setup::with("txn-sigterm", &["users"], &[], exactly_once(600_000));
    let mut live = Live::start_with_env(&s.files.write_args(), &[PROGRESS_EVERY_SECOND]);
    live.send(&(records(0, 2) + &state(1)));
    assert_eq!(live.next_state(PATIENCE).expect("state 1 at the first pause")["state"]["id"], 1);
    // A checkpoint whose commit waits for the interval (or a pause): a stop now must not commit it...
    live.send(&(records(2, 4) + &state(2) + &records(4, 5)));
    live.until_log("5 messages sent");
    live.signal("TERM");
    let (status, rest) = live.exit();
    assert!(!status.success());
    assert!(state_ids(&rest).is_empty(), "state 2 was never committed: {rest:?}");
    assert!(the_trace(&rest)["message"].as_str().unwrap().contains("stopped by a signal"));
}

#[test]
fn mock_a_broker_without_transactions_fails_the_write_at_once_with_a_config_error() {
    // librdkafka reports "unsupported" as retriable: a write once tried the commit again forever, with no TRACE.
    let s = Setup::with("txn-unsupported", &["users"], &[], exactly_once(0));
    s.mock.request_errors(RDKafkaApiKey::EndTxn, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION]);
    let mut live = s.live();
    live.send(&(records(0, 2) + &state(1)));
    let (status, rest) = live.exit();
    assert!(!status.success());
    assert!(state_ids(&rest).is_empty(), "{rest:?}");
    let error = the_trace(&rest);
    assert_eq!(error["failure_type"], "config_error", "{error}");
    assert!(error["message"].as_str().unwrap().contains("the broker does not support transactions"), "{error}");
}

// ---- Apache Kafka: what consumers see.

fn kafka() -> &'static Kafka {
    Kafka::shared()
}

/// The files of an exactly-once sync to Kafka into `<name>_users` (a stream `users`), with this commit interval.
fn eos_files(name: &str, interval_ms: u64) -> Files {
    let mut config = java_config(&kafka().bootstrap());
    config["topic_pattern"] = json!(format!("{name}.{{stream}}"));
    exactly_once(interval_ms)(&mut config);
    Files::new(name, &config, &catalog(&["users"]))
}

/// The `i` of each record a consumer with this isolation level reads from `topic` (`expected` of them).
fn ids(topic: &str, isolation: &str, expected: usize) -> Vec<i64> {
    read_back_with(&kafka().bootstrap(), &[("isolation.level", isolation)], topic, expected)
        .iter()
        .map(|m| m.value_json()["_airbyte_data"]["i"].as_i64().unwrap())
        .collect()
}

fn range(from: i64, to: i64) -> Vec<i64> {
    (from..to).collect()
}

#[test]
fn kafka_read_committed_consumers_see_every_committed_record_once() {
    let files = eos_files("eos_e2e", 0);
    let input: String = (1..=20).map(|n| records(n * 10, n * 10 + 10) + &state(n)).collect();
    let msgs = run_ok(&files.write_args(), &input);
    assert_eq!(state_ids(&msgs), (1..=20).collect::<Vec<_>>());
    assert_eq!(ids("eos_e2e_users", "read_committed", 200), range(10, 210));
    // Kafka's own console consumer agrees.
    let console = kafka().console_consume("eos_e2e_users", "read_committed", 201, 5000);
    assert_eq!(console.len(), 200, "{console:?}");
}

#[test]
fn kafka_kill_9_mid_transaction_leaves_nothing_visible_and_the_next_sync_completes() {
    let files = eos_files("eos_kill", 600_000);
    let mut zombie = Live::start_with_env(&files.write_args(), &[PROGRESS_EVERY_SECOND]);
    zombie.send(&(records(0, 3) + &state(1)));
    assert_eq!(zombie.next_state(PATIENCE).expect("state 1 at the first pause")["state"]["id"], 1);
    // An open transaction (the interval keeps it open) whose records the broker holds, then kill -9.
    zombie.send(&(records(3, 6) + &state(2) + &records(6, 7)));
    zombie.until_log("7 acknowledged");
    zombie.signal("KILL");
    let (status, rest) = zombie.exit();
    assert!(!status.success() && state_ids(&rest).is_empty(), "{rest:?}");
    // The broker holds 7 records; a read_committed consumer sees only the 3 committed ones.
    assert_eq!(ids("eos_kill_users", "read_uncommitted", 7), range(0, 7));
    assert_eq!(ids("eos_kill_users", "read_committed", 3), range(0, 3));
    assert_eq!(kafka().console_consume("eos_kill_users", "read_committed", 10, 5000).len(), 3);
    // The next sync's start fences the zombie and aborts what it left open; its records become visible, once.
    let msgs = run_ok(&files.write_args(), &(records(100, 105) + &state(3) + &records(105, 106) + &state(4)));
    assert_eq!(state_ids(&msgs), vec![3, 4]);
    let counts: Vec<Value> =
        of_type(&msgs, "STATE").iter().map(|m| m["state"]["destinationStats"]["recordCount"].clone()).collect();
    assert_eq!(counts, vec![json!(5.0), json!(1.0)]);
    assert_eq!(ids("eos_kill_users", "read_committed", 9), [range(0, 3), range(100, 106)].concat());
}

#[test]
fn kafka_sigterm_mid_transaction_aborts_it() {
    let files = eos_files("eos_term", 600_000);
    let mut live = Live::start_with_env(&files.write_args(), &[PROGRESS_EVERY_SECOND]);
    live.send(&(records(0, 2) + &state(1)));
    assert!(live.next_state(PATIENCE).is_some());
    live.send(&(records(2, 4) + &state(2) + &records(4, 5)));
    live.until_log("5 acknowledged");
    live.signal("TERM");
    let (status, rest) = live.exit();
    assert!(!status.success() && state_ids(&rest).is_empty(), "{rest:?}");
    // The aborted records are in the log, and filtered for read_committed consumers.
    assert_eq!(ids("eos_term_users", "read_uncommitted", 5), range(0, 5));
    assert_eq!(ids("eos_term_users", "read_committed", 2), range(0, 2));
}

#[test]
fn kafka_a_failed_produce_aborts_the_transaction_and_no_later_state_goes_out() {
    // The topic takes records of at most 1000 bytes; the sync's max_request_size allows more.
    create_topic(&kafka().bootstrap(), "eos_refused_users", 1, &[("max.message.bytes", "1000")]);
    let files = eos_files("eos_refused", 600_000);
    let big = record("users", 99).replace("{\"i\":99}", &format!("{{\"i\":99,\"blob\":\"{}\"}}", "x".repeat(5000)));
    let mut live = Live::start_with_env(&files.write_args(), &[PROGRESS_EVERY_SECOND]);
    live.send(&(records(0, 2) + &state(1)));
    assert!(live.next_state(PATIENCE).is_some());
    // Records 2 and 3 written (acknowledged) in the open transaction, then one the topic refuses.
    live.send(&records(2, 4));
    live.until_log("4 acknowledged");
    live.send(&(big + &state(2)));
    let (status, msgs) = live.finish();
    assert!(!status.success());
    assert!(state_ids(&msgs).is_empty(), "{msgs:?}");
    assert_eq!(the_trace(&msgs)["failure_type"], "config_error");
    // Records 2 and 3 were written in the transaction the refusal aborted.
    assert_eq!(ids("eos_refused_users", "read_uncommitted", 4), range(0, 4));
    assert_eq!(ids("eos_refused_users", "read_committed", 2), range(0, 2));
}

#[test]
fn kafka_a_zombie_writer_is_fenced_by_the_coordinator() {
    let files = eos_files("eos_fence", 0);
    let mut first = Live::start(&files.write_args());
    first.send(&(records(0, 2) + &state(1)));
    assert!(first.next_state(PATIENCE).is_some());
    // The same connection again (same derived transactional.id): its start fences the first.
    let mut second = Live::start(&files.write_args());
    second.send(&(records(100, 102) + &state(11)));
    assert_eq!(second.next_state(PATIENCE).expect("the newer sync commits")["state"]["id"], 11);
    first.send(&(records(2, 4) + &state(2)));
    let (status, rest) = first.finish();
    assert!(!status.success(), "the fenced sync must fail: {rest:?}");
    assert!(state_ids(&rest).is_empty(), "{rest:?}");
    let error = the_trace(&rest);
    assert_eq!(error["failure_type"], "transient_error", "{error}");
    assert!(error["message"].as_str().unwrap().contains("took over"), "{error}");
    let (status, rest) = second.finish();
    assert!(status.success(), "{rest:?}");
    // Nothing the zombie sent after it was fenced is visible.
    assert_eq!(ids("eos_fence_users", "read_committed", 4), [range(0, 2), range(100, 102)].concat());
}
