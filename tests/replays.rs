//! Replay detection on Apache Kafka: a sync is killed right after a commit and before the STATE it covers reaches
//! stdout (`DESTINATION_KAFKA_TEST_ABORT_AFTER_COMMITS`: the process aborts there, as a `kill -9` would), so the
//! platform never stored that STATE and resends from the one before. What `read_committed` consumers (librdkafka's
//! and Kafka's own console consumer) then see is the proof: each record once when the retry resends the same
//! records, every record when it sends others.

use serde_json::{json, Value};
use test_support::*;

fn kafka() -> &'static Kafka {
    Kafka::shared()
}

/// An exactly-once sync with replay detection into `<name>_users`, a commit per STATE. The tests share one progress
/// topic (each sync its own key, the derived transactional id), as the connections of a cluster do.
fn files(name: &str) -> Files {
    Files::new(name, &config(&kafka().bootstrap(), name), &catalog(&["users"]))
}

fn config(bootstrap: &str, name: &str) -> Value {
    let mut config = java_config(bootstrap);
    config["topic_pattern"] = json!(format!("{name}.{{stream}}"));
    config["delivery_guarantee"] = json!("exactly_once");
    config["transaction_commit_interval_ms"] = json!(0);
    config["replay_detection"] = json!(true);
    config["progress_topic"] = json!("replays_progress");
    config
}

/// A STATE as the platform forwards it: the source's `data` and the platform's own `id` (new on every attempt).
fn platform_state(n: usize, id: usize) -> String {
    format!("{{\"type\":\"STATE\",\"state\":{{\"type\":\"LEGACY\",\"data\":{{\"n\":{n}}},\"id\":{id}}}}}\n")
}

const CRASH_AFTER_SECOND_COMMIT: (&str, &str) = ("DESTINATION_KAFKA_TEST_ABORT_AFTER_COMMITS", "2");

/// The first attempt: three checkpoints of three records; it dies right after committing the second.
fn first_attempt(files: &Files, topic: &str) {
    let input = records(0, 3)
        + &platform_state(1, 1)
        + &records(3, 6)
        + &platform_state(2, 2)
        + &records(6, 9)
        + &platform_state(3, 3);
    let out = run_with_env(&files.write_args(), &[CRASH_AFTER_SECOND_COMMIT], &input);
    assert!(!out.status.success(), "the attempt must die");
    let msgs = messages(&out);
    assert_eq!(state_ids(&msgs), vec![1], "the STATE of the second commit never got out: {msgs:?}");
    assert_eq!(ids(topic, 6), (0..6).collect::<Vec<_>>(), "yet its records are committed");
}

fn ids(topic: &str, expected: usize) -> Vec<i64> {
    read_back_with(&kafka().bootstrap(), &[("isolation.level", "read_committed")], topic, expected)
        .iter()
        .map(|m| m.value_json()["_airbyte_data"]["i"].as_i64().unwrap())
        .collect()
}

fn counts(msgs: &[Value]) -> Vec<Value> {
    of_type(msgs, "STATE").iter().map(|m| m["state"]["destinationStats"]["recordCount"].clone()).collect()
}

#[test]
fn kafka_a_retry_resending_what_was_committed_writes_each_record_once() {
    let files = files("replay_same");
    first_attempt(&files, "replay_same_users");
    // The platform stored state 1: the retry resends from there, the same records and states under new ids.
    let retry = records(3, 6) + &platform_state(2, 12) + &records(6, 9) + &platform_state(3, 13);
    let msgs = run_ok(&files.write_args(), &retry);
    assert_eq!(state_ids(&msgs), vec![12, 13], "every STATE goes out, the replayed one too");
    assert_eq!(counts(&msgs), vec![json!(3.0), json!(3.0)]);
    assert!(
        log_lines(&msgs).iter().any(|l| l.contains("1 checkpoints (3 records) were replays")),
        "{:?}",
        log_lines(&msgs)
    );
    assert_eq!(ids("replay_same_users", 9), (0..9).collect::<Vec<_>>());
    // Kafka's own consumer agrees: nine records, none twice.
    assert_eq!(kafka().console_consume("replay_same_users", "read_committed", 20, 5000).len(), 9);
}

#[test]
fn kafka_a_retry_sending_other_records_for_the_same_range_keeps_them_all() {
    let files = files("replay_other");
    first_attempt(&files, "replay_other_users");
    // The source's replay differs (other records before the same STATE): nothing may be dropped.
    let retry = records(103, 106) + &platform_state(2, 12) + &records(6, 9) + &platform_state(3, 13);
    let msgs = run_ok(&files.write_args(), &retry);
    assert_eq!(state_ids(&msgs), vec![12, 13]);
    let expected: Vec<i64> = (0..6).chain(103..106).chain(6..9).collect();
    assert_eq!(ids("replay_other_users", 12), expected);
}

#[test]
fn kafka_a_later_sync_with_new_data_is_not_taken_for_a_replay() {
    let files = files("replay_next");
    let out = run(&files.write_args(), &(records(0, 2) + &platform_state(1, 1)));
    assert!(out.status.success());
    // The next sync starts from state 1: its first checkpoint is new, and so is everything after it.
    let msgs = run_ok(&files.write_args(), &(records(2, 4) + &platform_state(2, 1) + &records(4, 5)));
    assert!(log_lines(&msgs).iter().any(|l| l.contains("0 checkpoints (0 records) were replays")));
    assert_eq!(ids("replay_next_users", 5), (0..5).collect::<Vec<_>>());
}

#[test]
fn kafka_a_pause_past_the_transaction_bound_while_checking_commits_instead_of_failing() {
    let mut config = java_config(&kafka().bootstrap());
    config["topic_pattern"] = json!("replay_pause.{stream}");
    config["delivery_guarantee"] = json!("exactly_once");
    config["transaction_commit_interval_ms"] = json!(0);
    // Transactions the broker aborts after 2 s (twice the bound).
    config["transaction_max_ms"] = json!(1000);
    config["replay_detection"] = json!(true);
    config["progress_topic"] = json!("replays_progress");
    let files = Files::new("replay_pause", &config, &catalog(&["users"]));
    assert!(run(&files.write_args(), &(records(0, 2) + &platform_state(1, 1))).status.success());
    // The next sync is checked against that history; its first checkpoint's input pauses for longer than the
    // broker keeps a transaction open: the bound commits it (and checking ends) rather than the broker aborting it.
    let mut live = Live::start(&files.write_args());
    live.send(&records(2, 4));
    std::thread::sleep(std::time::Duration::from_secs(3));
    live.send(&platform_state(2, 1));
    let (status, msgs) = live.finish();
    assert!(status.success(), "{:?}", of_type(&msgs, "TRACE"));
    assert_eq!(state_ids(&msgs), vec![1]);
    assert_eq!(ids("replay_pause_users", 4), (0..4).collect::<Vec<_>>());
}

#[test]
fn kafka_a_retry_with_other_settings_recognises_nothing() {
    let files = files("replay_changed");
    first_attempt(&files, "replay_changed_users");
    // The retry runs with another `max_request_size`: records may have gone elsewhere (a dead-letter topic) in
    // the first attempt, so nothing is taken for a replay, and what was committed is written again.
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&files.config).unwrap()).unwrap();
    config["max_request_size"] = json!(2_000_000);
    let changed = Files::new("replay_changed_retry", &config, &catalog(&["users"]));
    let retry = records(3, 6) + &platform_state(2, 12) + &records(6, 9) + &platform_state(3, 13);
    let msgs = run_ok(&changed.write_args(), &retry);
    assert!(log_lines(&msgs).iter().any(|l| l.contains("0 checkpoints (0 records) were replays")));
    let expected: Vec<i64> = (0..6).chain(3..9).collect();
    assert_eq!(ids("replay_changed_users", 12), expected);
}

/// The progress topic is read from its partitions' beginning, assigned: no group is joined and no offset fetched, so
/// replay detection needs no ACL on consumer groups. scripts/kafka-broker's `no-group` (every right but none on
/// groups) gets a replay recognised, while the broker refuses it a consumer group.
#[test]
fn kafka_replay_detection_needs_no_group_acl() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::RDKafkaErrorCode;
    use rdkafka::ClientConfig;
    use std::time::{Duration, Instant};

    let (user, password) = ("no-group", kafka().password("no-group"));
    let mut config = config(&kafka().bootstrap(), "replay_nogroup");
    kafka().as_plain_user(&mut config, user);
    let files = Files::new("replay_nogroup", &config, &catalog(&["users"]));
    first_attempt(&files, "replay_nogroup_users");
    let retry = records(3, 6) + &platform_state(2, 12) + &records(6, 9) + &platform_state(3, 13);
    let msgs = run_ok(&files.write_args(), &retry);
    assert!(log_lines(&msgs).iter().any(|l| l.contains("1 checkpoints (3 records) were replays")), "{msgs:?}");
    assert_eq!(ids("replay_nogroup_users", 9), (0..9).collect::<Vec<_>>());

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka().listener("sasl_plaintext"))
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", user)
        .set("sasl.password", &password)
        .set("group.id", "replays-no-group")
        .create()
        .unwrap();
    consumer.subscribe(&["replay_nogroup_users"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        assert!(Instant::now() < deadline, "the broker never refused `no-group` its consumer group");
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
            break e;
        }
    };
    assert_eq!(refused.rdkafka_error_code(), Some(RDKafkaErrorCode::GroupAuthorizationFailed), "{refused}");
}
