//! Truncate refreshes on Apache Kafka: after a successful sync of generation G with `minimum_generation_id` = G, a
//! consumer reading the topic from its start sees only generation G's records, also those an earlier, failed
//! attempt of G wrote and checkpointed; a failed attempt deletes nothing; a topic shared with another stream is not
//! truncated; a user the broker denies DELETE gets a `config_error` naming the topic and the ACL, and loses
//! nothing.

use serde_json::{json, Value};
use test_support::*;

fn kafka() -> &'static Kafka {
    Kafka::shared()
}

/// A configured catalog of full-refresh streams, each with its generation and minimum generation.
fn refresh_catalog(streams: &[(&str, i64, i64)]) -> Value {
    json!({"streams": streams.iter().map(|(name, generation, minimum)| json!({
        "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        "sync_mode": "full_refresh", "destination_sync_mode": "overwrite",
        "generation_id": generation, "minimum_generation_id": minimum, "sync_id": generation})).collect::<Vec<_>>()})
}

fn config(pattern: &str, exactly_once: bool) -> Value {
    let mut config = java_config(&kafka().bootstrap());
    config["topic_pattern"] = json!(pattern);
    config["progress_topic"] = json!("refreshes_progress");
    if exactly_once {
        config["delivery_guarantee"] = json!("exactly_once");
        config["transaction_commit_interval_ms"] = json!(0);
    }
    config
}

fn ids(topic: &str, expected: usize) -> Vec<i64> {
    read_back_with(&kafka().bootstrap(), &[("isolation.level", "read_committed")], topic, expected)
        .iter()
        .map(|m| m.value_json()["_airbyte_data"]["i"].as_i64().unwrap())
        .collect()
}

fn sync(name: &str, config: &Value, generation: i64, minimum: i64, input: &str) -> Vec<Value> {
    let files = Files::new(name, config, &refresh_catalog(&[("users", generation, minimum)]));
    run_ok(&files.write_args(), input)
}

#[test]
fn kafka_a_truncate_refresh_leaves_only_its_generation() {
    let config = config("trunc_once.{stream}", false);
    sync("trunc_once", &config, 1, 0, &(records(0, 3) + &state(1)));
    assert_eq!(ids("trunc_once_users", 3), vec![0, 1, 2]);
    let msgs = sync("trunc_once", &config, 2, 2, &(records(10, 12) + &state(2)));
    assert!(log_lines(&msgs).iter().any(|l| l.contains("keeps generation 2 only")), "{:?}", log_lines(&msgs));
    // Read from the topic's start: generation 1 is gone.
    assert_eq!(ids("trunc_once_users", 2), vec![10, 11]);
}

/// Generation 1, then generation 2 whose first attempt is killed after a checkpoint: nothing is deleted then; the
/// second attempt succeeds and deletes generation 1 only, keeping what the first attempt checkpointed.
fn retried_truncate(name: &str, exactly_once: bool) {
    let config = config(&format!("{name}.{{stream}}"), exactly_once);
    let topic = format!("{name}_users");
    sync(name, &config, 1, 0, &(records(0, 3) + &state(1)));
    let files = Files::new(name, &config, &refresh_catalog(&[("users", 2, 2)]));
    let mut first = Live::start(&files.write_args());
    first.send(&(records(10, 12) + &state(2)));
    let (checkpoint, before) = first.until_state(PATIENCE);
    assert!(checkpoint.is_some(), "{before:?}");
    first.signal("KILL");
    let (status, _) = first.exit();
    assert!(!status.success());
    assert_eq!(ids(&topic, 5), vec![0, 1, 2, 10, 11], "a failed attempt deletes nothing");
    let out = run(&files.write_args(), &(records(12, 14) + &state(3)));
    assert!(out.status.success(), "{:?}", of_type(&messages(&out), "TRACE"));
    assert_eq!(ids(&topic, 4), vec![10, 11, 12, 13]);
}

#[test]
fn kafka_a_retried_truncate_refresh_keeps_what_its_first_attempt_checkpointed() {
    retried_truncate("trunc_retry", false);
}

#[test]
fn kafka_a_retried_truncate_refresh_with_exactly_once_too() {
    retried_truncate("trunc_retry_eos", true);
}

#[test]
fn kafka_a_topic_shared_with_another_stream_is_not_truncated() {
    let config = config("trunc_shared", false);
    let first = Files::new("trunc_shared", &config, &refresh_catalog(&[("users", 1, 0), ("orders", 1, 0)]));
    assert!(run(&first.write_args(), &(records(0, 2) + &state(1))).status.success());
    let second = Files::new("trunc_shared", &config, &refresh_catalog(&[("users", 2, 2), ("orders", 2, 0)]));
    let msgs = run_ok(&second.write_args(), &(records(10, 12) + &state(2)));
    let warning = log_lines(&msgs).into_iter().find(|l| l.contains("is not truncated")).expect("a warning");
    assert!(warning.contains("`orders`"), "{warning}");
    assert_eq!(ids("trunc_shared", 4), vec![0, 1, 10, 11]);
}

/// DeleteRecords needs DELETE on the topic: a user without it (scripts/kafka-broker's `no-delete`, every other
/// right) writes generation 2 and gets its STATE, then a `config_error` naming the topic and the ACL; nothing is
/// deleted. A user with every right on topics (`no-group`, which has none on consumer groups, which the progress
/// topic's reader does not need), on the same listener, truncates: the refusal is the ACL's doing.
#[test]
fn kafka_a_truncate_refresh_denied_delete_is_a_config_error_and_deletes_nothing() {
    let as_user = |user: &str, name: &str| {
        let mut config = config(&format!("{name}.{{stream}}"), false);
        kafka().as_plain_user(&mut config, user);
        config
    };
    let denied = as_user("no-delete", "trunc_nodelete");
    sync("trunc_nodelete", &denied, 1, 0, &(records(0, 3) + &state(1)));
    let files = Files::new("trunc_nodelete", &denied, &refresh_catalog(&[("users", 2, 2)]));
    let out = run(&files.write_args(), &(records(10, 12) + &state(2)));
    let msgs = messages(&out);
    assert!(!out.status.success(), "{msgs:?}");
    assert_eq!(state_ids(&msgs), vec![2], "generation 2's records are written: its STATE is out");
    let error = the_trace(&msgs);
    assert_eq!(error["failure_type"], "config_error", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("`trunc_nodelete_users`") && message.contains("grant DELETE"), "{message}");
    assert_eq!(ids("trunc_nodelete_users", 5), vec![0, 1, 2, 10, 11]);

    let allowed = as_user("no-group", "trunc_plain");
    sync("trunc_plain", &allowed, 1, 0, &(records(0, 3) + &state(1)));
    sync("trunc_plain", &allowed, 2, 2, &(records(10, 12) + &state(2)));
    assert_eq!(ids("trunc_plain_users", 2), vec![10, 11]);
}
