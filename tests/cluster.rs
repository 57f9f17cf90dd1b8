//! A three-node Apache Kafka cluster (scripts/kafka-broker --nodes 3: replication factor 3, min.insync.replicas 2,
//! topic auto-creation off, so the connector creates its topics itself): a partition leader killed mid-sync, and
//! two nodes lost at once.

use serde_json::{json, Value};
use test_support::admin::leaders;
use test_support::*;

/// The files of a sync to the cluster: acks=all, idempotent, replicated topics, failures within 20 s.
fn files(cluster: &Kafka, name: &str) -> Files {
    let mut config = java_config(&cluster.bootstrap());
    config["topic_pattern"] = json!(format!("{name}.{{stream}}"));
    config["acks"] = json!("all");
    config["enable_idempotence"] = json!(true);
    config["topic_replication_factor"] = json!(3);
    config["delivery_timeout_ms"] = json!("20000");
    config["request_timeout_ms"] = json!("5000");
    Files::new(name, &config, &catalog(&["users"]))
}

fn ids(cluster: &Kafka, topic: &str, expected: usize) -> Vec<i64> {
    let mut got: Vec<i64> = read_back(&cluster.bootstrap(), topic, expected)
        .iter()
        .map(|m| m.value_json()["_airbyte_data"]["i"].as_i64().unwrap())
        .collect();
    got.sort_unstable();
    got
}

fn counts(msgs: &[Value]) -> Vec<Value> {
    of_type(msgs, "STATE").iter().map(|m| m["state"]["destinationStats"]["recordCount"].clone()).collect()
}

#[test]
fn the_partition_leader_killed_mid_sync_loses_nothing_and_duplicates_nothing() {
    let cluster = Kafka::cluster();
    let files = files(&cluster, "failover");
    let mut live = Live::start(&files.write_args());
    live.send(&(records(0, 1000) + &state(1)));
    assert_eq!(live.next_state(PATIENCE).expect("state 1")["state"]["id"], 1);
    let leader = leaders(&cluster.bootstrap(), "failover_users")[0];
    cluster.command(&format!("kill {leader}"));
    // Records keep coming while a new leader is elected; the idempotent producer retries what was in flight.
    for n in 2..=5 {
        live.send(&(records(n * 1000, n * 1000 + 1000) + &state(n)));
    }
    let (status, rest) = live.finish();
    assert!(status.success(), "{:?}", of_type(&rest, "TRACE"));
    assert_eq!(state_ids(&rest), vec![2, 3, 4, 5], "every state out");
    assert!(counts(&rest).iter().all(|c| *c == json!(1000.0)), "{:?}", counts(&rest));
    assert_ne!(leaders(&cluster.bootstrap(), "failover_users")[0], leader, "another node leads now");
    let expected: Vec<i64> = (0..1000).chain(2000..6000).collect();
    assert_eq!(ids(&cluster, "failover_users", expected.len()), expected, "every record once");
}

#[test]
fn two_nodes_lost_is_a_transient_error_with_no_false_state_and_nothing_acknowledged_is_lost() {
    let cluster = Kafka::cluster();
    let files = files(&cluster, "outage");
    let mut live = Live::start(&files.write_args());
    live.send(&(records(0, 100) + &state(1)));
    assert_eq!(live.next_state(PATIENCE).expect("state 1")["state"]["id"], 1);
    // Two of three nodes down: no in-sync quorum for acks=all (min.insync.replicas 2), no controller quorum.
    let leader = leaders(&cluster.bootstrap(), "outage_users")[0] as u64;
    let other = (1..=3).find(|n| *n != leader).unwrap();
    cluster.command(&format!("kill {leader}"));
    cluster.command(&format!("kill {other}"));
    live.send(&(records(100, 200) + &state(2)));
    let (status, rest) = live.exit();
    assert!(!status.success());
    assert!(state_ids(&rest).is_empty(), "state 2 covers records no quorum stored: {rest:?}");
    let error = the_trace(&rest);
    assert_eq!(error["failure_type"], "transient_error", "{error}");
    // Back up: the 100 records acknowledged before are all there.
    cluster.command(&format!("start {leader}"));
    cluster.command(&format!("start {other}"));
    let got = ids(&cluster, "outage_users", 100);
    assert_eq!(got[..100], (0..100).collect::<Vec<_>>()[..]);
}
