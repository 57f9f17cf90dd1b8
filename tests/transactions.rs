//! Exactly-once delivery: a Kafka transaction per checkpoint.
//!
//! Two brokers, each for what it can show:
//! - librdkafka's mock cluster accepts the transactional requests and injects errors, but writes no commit/abort
//!   markers and does not fence: it is used for the state machine (commits per STATE, several STATEs per commit,
//!   errors on Produce and EndTxn, a retried commit timeout, a fatal fenced error, SIGTERM).
//! - the tansu build with transactions (scripts/tansu-broker --transactions) commits, aborts and fences for real:
//!   it is used for syncs end to end, for fencing by a second writer with the same transactional.id, and for a
//!   sync killed mid-transaction and started again. Its fetch does not filter aborted records for
//!   `read_committed` consumers, so no test here can show what such a consumer sees; none pretends to.

mod common;

use common::*;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{json, Value};
use std::time::Duration;

fn exactly_once(interval_ms: u64) -> impl FnOnce(&mut Value) {
    move |c| {
        c["delivery_guarantee"] = json!("exactly_once");
        c["transaction_commit_interval_ms"] = json!(interval_ms);
    }
}

fn write(s: &Setup, input: &str) -> std::process::Output {
    run(&["write", "--config", &s.config, "--catalog", &s.catalog], input)
}

fn log_lines(msgs: &[Value]) -> Vec<String> {
    of_type(msgs, "LOG").iter().map(|m| m["log"]["message"].as_str().unwrap().to_string()).collect()
}

fn commits(msgs: &[Value]) -> usize {
    let logs = log_lines(msgs);
    let line = logs.iter().find(|l| l.contains("transactions committed")).expect("the summary counts commits");
    line.split_whitespace().find_map(|w| w.parse().ok()).unwrap()
}

fn state_ids(msgs: &[Value]) -> Vec<u64> {
    of_type(msgs, "STATE").iter().map(|m| m["state"]["id"].as_u64().unwrap()).collect()
}

fn the_trace(msgs: &[Value]) -> Value {
    let traces = of_type(msgs, "TRACE");
    assert_eq!(traces.len(), 1, "{msgs:?}");
    traces[0]["trace"]["error"].clone()
}

#[test]
fn mock_a_commit_per_state_with_no_commit_interval() {
    let s = setup_with("txn-per-state", &["users"], exactly_once(0));
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
    let s = setup_with("txn-batched", &["users"], exactly_once(600_000));
    let mut live = Live::start(&["write", "--config", &s.config, "--catalog", &s.catalog]);
    // Five checkpoints in one write: the interval has not passed, so no commit until input pauses.
    let input: String = (1..=5).map(|n| records(n * 10, n * 10 + 10) + &state(n)).collect();
    live.send(&input);
    let first = live.next_state(Duration::from_secs(20)).expect("the states once input pauses");
    assert_eq!(first["state"]["id"], 1);
    let (status, rest) = live.finish();
    assert!(status.success(), "{rest:?}");
    assert_eq!(state_ids(&rest), vec![2, 3, 4, 5]);
    assert_eq!(commits(&rest), 1, "one commit for five states");
}

#[test]
fn mock_a_sync_without_states_commits_at_the_end() {
    let s = setup_with("txn-no-states", &["users"], exactly_once(0));
    let out = write(&s, &records(0, 20));
    let msgs = messages(&out);
    assert!(out.status.success(), "{msgs:?}");
    assert_eq!(commits(&msgs), 1);
}

#[test]
fn mock_a_failed_produce_aborts_and_emits_no_later_state() {
    let s = setup_with("txn-produce-error", &["users"], exactly_once(0));
    let mut live = Live::start(&["write", "--config", &s.config, "--catalog", &s.catalog]);
    live.send(&(records(0, 2) + &state(1)));
    assert_eq!(live.next_state(Duration::from_secs(20)).expect("state 1 committed")["state"]["id"], 1);
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
    let s = setup_with("txn-commit-error", &["users"], exactly_once(0));
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
    let s = setup_with("txn-commit-timeout", &["users"], exactly_once(0));
    let args = ["write", "--config", &s.config, "--catalog", &s.catalog];
    let mut live = Live::start_with_env(&args, &[("DESTINATION_KAFKA_PROGRESS_SECONDS", "1")]);
    live.send(&(records(0, 2) + &state(1)));
    assert!(live.next_state(Duration::from_secs(20)).is_some());
    // Records acknowledged first, then every answer takes 7 s: the commit's 5 s attempt times out (retriable).
    live.send(&records(2, 4));
    std::thread::sleep(Duration::from_secs(1));
    s.mock.broker_round_trip_time(1, Duration::from_secs(7)).unwrap();
    live.send(&state(2));
    let (second, before) = live.until_state(Duration::from_secs(60));
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
    let s = setup_with("txn-fenced", &["users"], exactly_once(0));
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
    let s = setup_with("txn-sigterm", &["users"], exactly_once(600_000));
    let mut live = Live::start(&["write", "--config", &s.config, "--catalog", &s.catalog]);
    live.send(&(records(0, 2) + &state(1)));
    assert_eq!(live.next_state(Duration::from_secs(20)).expect("state 1 at the first pause")["state"]["id"], 1);
    // A checkpoint whose commit waits for the interval (or a pause): a stop now must not commit it...
    live.send(&(records(2, 4) + &state(2) + &records(4, 5)));
    std::thread::sleep(Duration::from_millis(500));
    live.signal("TERM");
    let (status, took, rest) = live.exit_within(Duration::from_secs(20));
    assert!(!status.success());
    assert!(took < Duration::from_secs(9));
    assert!(state_ids(&rest).is_empty(), "state 2 was never committed: {rest:?}");
    assert!(the_trace(&rest)["message"].as_str().unwrap().contains("stopped by a signal"));
}

// ---- Against the tansu build with transactions.

/// Files for a sync to the transactional broker: (scratch, config, catalog).
fn on_broker(broker: &Broker, name: &str, change: impl FnOnce(&mut Value)) -> (Scratch, String, String) {
    let scratch = Scratch::new(name);
    let mut config = java_config(&broker.bootstrap());
    config["topic_pattern"] = json!("{stream}");
    config["delivery_guarantee"] = json!("exactly_once");
    change(&mut config);
    let config_path = scratch.json("config.json", &config);
    let catalog = scratch.json("catalog.json", &json!({"streams": [{"name": "users"}]}));
    (scratch, config_path, catalog)
}

#[test]
fn tansu_exactly_once_sync_end_to_end() {
    let broker = Broker::start_transactional();
    let (_scratch, config, catalog) = on_broker(&broker, "txn-e2e", |c| c["transaction_commit_interval_ms"] = json!(0));
    let input: String = (1..=20).map(|n| records(n * 10, n * 10 + 10) + &state(n)).collect();
    let out = run(&["write", "--config", &config, "--catalog", &catalog], &input);
    let msgs = messages(&out);
    assert!(out.status.success(), "{:?}", of_type(&msgs, "TRACE"));
    assert_eq!(state_ids(&msgs), (1..=20).collect::<Vec<_>>());
    assert!(of_type(&msgs, "STATE").iter().all(|m| m["state"]["destinationStats"]["recordCount"] == json!(10.0)));
    let got = consume(&broker.bootstrap(), "users", 200);
    let ids: Vec<i64> = got
        .iter()
        .map(|(_, _, value)| serde_json::from_slice::<Value>(value).unwrap()["_airbyte_data"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (10..210).collect::<Vec<_>>());
}

#[test]
fn tansu_a_second_writer_with_the_same_id_fences_the_first() {
    let broker = Broker::start_transactional();
    let (_scratch, config, catalog) =
        on_broker(&broker, "txn-fencing", |c| c["transaction_commit_interval_ms"] = json!(0));
    let args = ["write", "--config", config.as_str(), "--catalog", catalog.as_str()];
    let mut first = Live::start(&args);
    first.send(&(records(0, 2) + &state(1)));
    assert!(first.next_state(Duration::from_secs(30)).is_some());
    // The same connection again (same derived transactional.id): its start fences the first.
    let mut second = Live::start(&args);
    second.send(&(records(100, 102) + &state(11)));
    assert_eq!(second.next_state(Duration::from_secs(30)).expect("the newer sync commits")["state"]["id"], 11);
    first.send(&(records(2, 4) + &state(2)));
    let (status, rest) = first.finish();
    assert!(!status.success(), "the fenced sync must fail: {rest:?}");
    assert!(state_ids(&rest).is_empty(), "{rest:?}");
    let error = the_trace(&rest);
    assert_eq!(error["failure_type"], "transient_error", "{error}");
    assert!(error["message"].as_str().unwrap().contains("took over"), "{error}");
    let (status, rest) = second.finish();
    assert!(status.success(), "{rest:?}");
}

#[test]
fn tansu_a_sync_killed_mid_transaction_is_followed_by_one_that_completes() {
    let broker = Broker::start_transactional();
    let (_scratch, config, catalog) =
        on_broker(&broker, "txn-kill9", |c| c["transaction_commit_interval_ms"] = json!(600_000));
    let args = ["write", "--config", config.as_str(), "--catalog", catalog.as_str()];
    let mut zombie = Live::start(&args);
    zombie.send(&(records(0, 3) + &state(1)));
    assert!(zombie.next_state(Duration::from_secs(30)).is_some(), "state 1 at the first pause");
    // An open transaction (the interval keeps it open), then kill -9.
    zombie.send(&(records(3, 6) + &state(2) + &records(6, 7)));
    std::thread::sleep(Duration::from_millis(500));
    zombie.signal("KILL");
    let (status, _, _) = zombie.exit_within(Duration::from_secs(10));
    assert!(!status.success());
    // The next sync's init_transactions aborts what the zombie left open, and the sync completes.
    let out = run(&args, &(records(100, 105) + &state(3) + &records(105, 106) + &state(4)));
    let msgs = messages(&out);
    assert!(out.status.success(), "{:?}", of_type(&msgs, "TRACE"));
    assert_eq!(state_ids(&msgs), vec![3, 4]);
    let counts: Vec<Value> =
        of_type(&msgs, "STATE").iter().map(|m| m["state"]["destinationStats"]["recordCount"].clone()).collect();
    assert_eq!(counts, vec![json!(5.0), json!(1.0)]);
}

#[test]
fn tansu_without_transactions_fails_the_write_at_once_with_a_config_error() {
    // The tansu built by default starts transactions (InitProducerId) but answers EndTxn "unsupported", which
    // librdkafka reports as retriable: a write once tried that commit again forever, with no TRACE.
    let broker = Broker::start();
    let (_scratch, config, catalog) = on_broker(&broker, "txn-unsupported", |_| ());
    let mut live = Live::start(&["write", "--config", &config, "--catalog", &catalog]);
    live.send(&(records(0, 2) + &state(1)));
    let (status, _, rest) = live.exit_within(Duration::from_secs(30));
    assert!(!status.success());
    assert!(state_ids(&rest).is_empty(), "{rest:?}");
    let error = the_trace(&rest);
    assert_eq!(error["failure_type"], "config_error", "{error}");
    assert!(error["message"].as_str().unwrap().contains("the broker does not support transactions"), "{error}");
}
