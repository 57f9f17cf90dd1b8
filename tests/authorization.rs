//! What a broker that enforces ACLs answers (Apache Kafka's StandardAuthorizer, nothing allowed without an ACL;
//! the users of scripts/kafka-broker): each missing permission is a `config_error` of `write` and a FAILED `check`
//! naming the topic or the transactional id and the operation to grant, and no STATE is ever emitted for a
//! record that was refused. A user with every right writes on the same listener (`plain`), so the refusals are
//! the ACLs' doing.

use serde_json::{json, Value};
use test_support::admin::create_topic;
use test_support::*;

fn kafka() -> &'static Kafka {
    Kafka::shared()
}

/// A config for `user` (PLAIN, on SASL_PLAINTEXT) writing to `acl_<name>_<stream>`.
fn as_user(user: &str, name: &str) -> Value {
    let mut config = java_config(&kafka().bootstrap());
    kafka().as_plain_user(&mut config, user);
    config["topic_pattern"] = json!(format!("acl.{name}.{{stream}}"));
    config
}

/// `write` of two records and a state: (succeeded, messages).
fn write(config: &Value) -> (bool, Vec<Value>) {
    let files = Files::new("acl", config, &catalog(&["users"]));
    let out = run(&files.write_args(), &(records(0, 2) + &state(1)));
    (out.status.success(), messages(&out))
}

fn check(config: &Value) -> Value {
    let files = Files::new("acl-check", config, &catalog(&[]));
    let out = run(&["check", "--config", &files.config], "");
    of_type(&messages(&out), "CONNECTION_STATUS")[0]["connectionStatus"].clone()
}

/// A refused write: no state, one config_error whose message holds every word of `words`.
fn refused(result: (bool, Vec<Value>), words: &[&str]) {
    let (ok, msgs) = result;
    assert!(!ok, "{msgs:?}");
    assert!(state_ids(&msgs).is_empty(), "a state past a refused record: {msgs:?}");
    let error = the_trace(&msgs);
    assert_eq!(error["failure_type"], "config_error", "{error}");
    let message = error["message"].as_str().unwrap();
    for word in words {
        assert!(message.contains(word), "`{word}` not in: {message}");
    }
}

fn check_failed(status: Value, words: &[&str]) {
    assert_eq!(status["status"], "FAILED", "{status}");
    let message = status["message"].as_str().unwrap();
    for word in words {
        assert!(message.contains(word), "`{word}` not in: {message}");
    }
}

#[test]
fn a_user_with_every_right_writes_on_the_same_listener() {
    let (ok, msgs) = write(&as_user("plain", "allowed"));
    assert!(ok, "{msgs:?}");
    assert_eq!(state_ids(&msgs), vec![1]);
    let mut config = as_user("plain", "allowed");
    config["test_topic"] = json!("acl.allowed.check");
    assert_eq!(check(&config)["status"], "SUCCEEDED");
}

#[test]
fn no_write_on_the_topic() {
    refused(write(&as_user("no-write", "nowrite")), &["`acl_nowrite_users`", "Topic authorization failed", "WRITE"]);
    let mut config = as_user("no-write", "nowrite");
    config["test_topic"] = json!("acl.nowrite.check");
    check_failed(check(&config), &["`acl_nowrite_check`", "WRITE"]);
    // With idempotence, the producer needs IDEMPOTENT_WRITE on the cluster (or WRITE on some topic): librdkafka
    // stops with a "fatal error", whose cause is what the user is told.
    let mut idempotent = as_user("no-write", "nowrite_idempotent");
    idempotent["enable_idempotence"] = json!(true);
    let result = write(&idempotent);
    refused(result, &["Cluster authorization failed", "IDEMPOTENT_WRITE"]);
}

#[test]
fn no_create_on_the_cluster_or_the_topic() {
    refused(write(&as_user("no-create", "nocreate")), &["`acl_nocreate_users`", "CREATE"]);
    let mut config = as_user("no-create", "nocreate");
    config["test_topic"] = json!("acl.nocreate.check");
    check_failed(check(&config), &["`acl_nocreate_check`", "CREATE"]);
    // A topic made beforehand is written to.
    create_topic(&kafka().bootstrap(), "acl_nocreate_made_users", 1, &[]);
    let (ok, msgs) = write(&as_user("no-create", "nocreate_made"));
    assert!(ok && state_ids(&msgs) == vec![1], "{msgs:?}");
}

#[test]
fn no_write_on_the_transactional_id() {
    let mut config = as_user("no-txn", "notxn");
    config["delivery_guarantee"] = json!("exactly_once");
    config["transactional_id"] = json!("airbyte-no-txn-sync");
    refused(
        write(&config),
        &["transactional.id `airbyte-no-txn-sync`", "Transactional Id authorization failed", "WRITE"],
    );
    check_failed(
        check(&config),
        &["transactional.id `airbyte-no-txn-sync-check`", "Transactional Id authorization failed"],
    );
    // At least once, the same user writes.
    let (ok, msgs) = write(&as_user("no-txn", "notxn"));
    assert!(ok, "{msgs:?}");
}

#[test]
fn no_describe_a_topic_that_exists_is_invisible() {
    create_topic(&kafka().bootstrap(), "acl_nobody_users", 1, &[]);
    refused(write(&as_user("nobody", "nobody")), &["`acl_nobody_users`", "DESCRIBE", "WRITE"]);
    let mut config = as_user("nobody", "nobody");
    config["test_topic"] = json!("acl.nobody.users");
    check_failed(check(&config), &["`acl_nobody_users`", "DESCRIBE"]);
}
