//! `record_errors: dead_letter`: records rejected on their own account go to a dead-letter topic with headers
//! saying why, are counted in the STATEs, and the sync goes on. Broker refusals are injected with librdkafka's
//! mock cluster, and shown as Apache Kafka makes them (a keyless record for a compacted topic); records the
//! connector cannot encode, and lines over the limit, on Apache Kafka too.

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{json, Value};
use test_support::admin::create_topic;
use test_support::mock::Setup;
use test_support::*;

fn dead_letter(change: impl FnOnce(&mut Value)) -> impl FnOnce(&mut Value) {
    move |c| {
        c["record_errors"] = json!({"policy": "dead_letter", "topic_pattern": "{stream}.dlq"});
        change(c);
    }
}

fn header<'a>(message: &'a Read, name: &str) -> &'a str {
    let value =
        message.headers.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no header {name}: {message:?}"));
    std::str::from_utf8(&value.1).unwrap()
}

fn stats(msgs: &[Value]) -> Vec<Value> {
    of_type(msgs, "STATE").iter().map(|m| m["state"]["destinationStats"].clone()).collect()
}

fn big_record(i: usize) -> String {
    format!(
        "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"users\",\"emitted_at\":1602637589000,\"data\":{{\"i\":{i},\"blob\":\"{}\"}}}}}}\n",
        "x".repeat(1_100_000)
    )
}

#[test]
fn a_record_over_max_request_size_is_dead_lettered_without_its_value() {
    let s = Setup::with("dlq-too-large", &["users"], &["users_dlq"], dead_letter(|_| {}));
    let input = records(0, 2) + &big_record(2) + &records(3, 4) + &state(1);
    let msgs = run_ok(&s.files.write_args(), &input);
    assert_eq!(stats(&msgs), vec![json!({"recordCount": 4.0, "rejectedRecordCount": 1.0})]);
    assert_eq!(read_back(&s.mock.bootstrap_servers(), "users", 3).len(), 3);
    let dlq = read_back(&s.mock.bootstrap_servers(), "users_dlq", 1);
    let letter = &dlq[0];
    assert_eq!(letter.value, None, "the value could not be written anywhere");
    assert_eq!(letter.key.as_ref().map(|k| k.len()), Some(36), "the original key (a UUID)");
    assert_eq!(header(letter, "__connect.errors.topic"), "users");
    assert_eq!(header(letter, "__connect.errors.stage"), "KAFKA_PRODUCE");
    assert_eq!(header(letter, "__connect.errors.exception.class.name"), "MessageSizeTooLarge");
    assert!(header(letter, "__connect.errors.exception.message").contains("max_request_size"));
    assert_eq!((header(letter, "airbyte.stream"), header(letter, "airbyte.input_line")), ("users", "3"));
    assert_eq!(header(letter, "airbyte.emitted_at"), "1602637589000");
    let dropped = header(letter, "airbyte.value_dropped");
    let size: usize = dropped.split(' ').next().unwrap().parse().unwrap();
    assert!(size > 1_100_000 && dropped.ends_with("bytes, over max_request_size"), "{dropped}");
    let summary = of_type(&msgs, "LOG")
        .iter()
        .any(|m| m["log"]["message"].as_str().unwrap().contains("1 rejected to `users_dlq`"));
    assert!(summary, "the per-stream summary counts rejections");
}

/// `debezium_json`: a delete event too large to send is dead-lettered, and no tombstone follows it (it would delete
/// the key downstream though the event that says so is not there); a delete event that is sent is followed by its
/// tombstone.
#[test]
fn a_dead_lettered_delete_event_has_no_tombstone() {
    let s = Setup::with("dlq-debezium", &["users"], &["users_dlq"], |_| {});
    let mut config = java_config(&s.mock.bootstrap_servers());
    config["topic_pattern"] = json!("{stream}");
    config["format"] = json!({"type": "debezium_json"});
    dead_letter(|_| {})(&mut config);
    let schema = json!({"type": "object", "properties": {"i": {"type": "integer"}, "blob": {"type": "string"},
        "_ab_cdc_deleted_at": {"type": ["null", "string"]}}});
    let catalog = json!({"streams": [{"stream": {"name": "users", "json_schema": schema,
        "supported_sync_modes": ["incremental"]}, "sync_mode": "incremental",
        "destination_sync_mode": "append", "primary_key": [["i"]]}]});
    let files = Files::new("dlq-debezium", &config, &catalog);
    let delete = |i: usize, blob: usize| {
        let data = json!({"i": i, "blob": "x".repeat(blob), "_ab_cdc_deleted_at": "2024-01-01T00:00:00Z"});
        format!("{}\n", json!({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1, "data": data}}))
    };
    let msgs = run_ok(&files.write_args(), &(delete(1, 1_100_000) + &delete(2, 1) + &state(1)));
    assert_eq!(stats(&msgs), vec![json!({"recordCount": 2.0, "rejectedRecordCount": 1.0})]);
    let letter = &read_back(&s.mock.bootstrap_servers(), "users_dlq", 1)[0];
    assert_eq!(letter.key.as_deref(), Some(&br#"{"i":1}"#[..]));
    // Record 2's delete event and its tombstone, and nothing for record 1 (read_back fails on a third message).
    let users = read_back(&s.mock.bootstrap_servers(), "users", 2);
    let keys: Vec<_> = users.iter().map(|m| (m.key.clone().unwrap(), m.value.is_none())).collect();
    assert_eq!(keys, vec![(br#"{"i":2}"#.to_vec(), false), (br#"{"i":2}"#.to_vec(), true)]);
}

#[test]
fn records_the_broker_refuses_keep_their_bytes_in_the_dead_letter_topic() {
    let s = Setup::with("dlq-refused", &["users"], &["users_dlq"], dead_letter(|c| c["sync_producer"] = json!(true)));
    let mut live = s.live();
    live.send(&(records(0, 1) + &state(1)));
    assert!(live.next_state(std::time::Duration::from_secs(20)).is_some());
    // The broker refuses the next produce request: its one record (a sync producer sends one at a time).
    s.mock.request_errors(RDKafkaApiKey::Produce, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE]);
    live.send(&(records(1, 3) + &state(2)));
    let (status, rest) = live.finish();
    assert!(status.success(), "{rest:?}");
    assert_eq!(stats(&rest), vec![json!({"recordCount": 2.0, "rejectedRecordCount": 1.0})]);
    let letter = &read_back(&s.mock.bootstrap_servers(), "users_dlq", 1)[0];
    let value: Value = serde_json::from_slice(letter.value.as_ref().unwrap()).unwrap();
    assert_eq!(value["_airbyte_data"], json!({"i": 1}), "the original envelope");
    assert_eq!(letter.key.as_ref().unwrap(), value["_airbyte_ab_id"].as_str().unwrap().as_bytes());
    assert_eq!(header(letter, "airbyte.input_line"), "3");
    assert_eq!(header(letter, "__connect.errors.exception.class.name"), "MessageSizeTooLarge");
    let users: Vec<Value> = read_back(&s.mock.bootstrap_servers(), "users", 2)
        .iter()
        .map(|m| serde_json::from_slice::<Value>(m.value.as_ref().unwrap()).unwrap()["_airbyte_data"].clone())
        .collect();
    assert_eq!(users, vec![json!({"i": 0}), json!({"i": 2})]);
}

#[test]
fn a_failed_dead_letter_write_fails_the_sync() {
    let s = Setup::with("dlq-fails", &["users"], &["users_dlq"], dead_letter(|c| c["sync_producer"] = json!(true)));
    s.mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        ],
    );
    let out = run(&s.files.write_args(), &(records(0, 1) + &state(1)));
    let msgs = messages(&out);
    assert!(!out.status.success());
    assert!(of_type(&msgs, "STATE").is_empty(), "{msgs:?}");
    let error = &of_type(&msgs, "TRACE")[0]["trace"]["error"];
    assert!(error["message"].as_str().unwrap().contains("users_dlq"), "{error}");
}

#[test]
fn unencodable_records_go_to_the_dead_letter_topic_with_their_data() {
    let broker = Kafka::shared();
    let mut config = java_config(&broker.bootstrap());
    config["topic_pattern"] = json!("{namespace}.{stream}");
    config["key"] = json!({"mode": "fields", "fields": ["id"]});
    config["record_errors"] = json!({"policy": "dead_letter", "topic_pattern": "{namespace}.{stream}.dlq"});
    let catalog = json!({"streams": [
        {"stream": {"name": "a", "namespace": "ns"}, "destination_sync_mode": "append"},
        {"stream": {"name": "b", "namespace": "ns"}, "destination_sync_mode": "append"}]});
    let files = Files::new("dlq-encode", &config, &catalog);
    let rec = |stream: &str, data: Value| {
        json!({"type": "RECORD", "record": {"namespace": "ns", "stream": stream, "emitted_at": 5, "data": data}})
            .to_string()
            + "\n"
    };
    let stream_state = |stream: &str| {
        json!({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": stream, "namespace": "ns"}}}})
            .to_string()
            + "\n"
    };
    let input = rec("a", json!({"id": 1}))
        + &rec("a", json!({"no_id": true}))
        + &rec("b", json!({"no_id": 2}))
        + &stream_state("a")
        + &rec("b", json!({"id": 3}))
        + &stream_state("b");
    let msgs = run_ok(&files.write_args(), &input);
    assert_eq!(
        stats(&msgs),
        vec![
            json!({"recordCount": 2.0, "rejectedRecordCount": 1.0}),
            json!({"recordCount": 2.0, "rejectedRecordCount": 1.0})
        ]
    );
    let letters = read_back(&broker.bootstrap(), "ns_a_dlq", 1);
    assert_eq!(letters[0].value.as_deref(), Some(&br#"{"no_id":true}"#[..]), "the record's data");
    assert_eq!(letters[0].key, None);
    assert_eq!(header(&letters[0], "__connect.errors.stage"), "ENCODE");
    assert_eq!(header(&letters[0], "__connect.errors.exception.class.name"), "RecordNotEncodable");
    assert_eq!(header(&letters[0], "__connect.errors.exception.message"), "key field `id` is missing");
    assert_eq!((header(&letters[0], "airbyte.namespace"), header(&letters[0], "airbyte.input_line")), ("ns", "2"));
    assert_eq!(read_back(&broker.bootstrap(), "ns_b_dlq", 1)[0].value.as_deref(), Some(&br#"{"no_id":2}"#[..]));
    assert_eq!(read_back(&broker.bootstrap(), "ns_a", 1).len(), 1);
    assert_eq!(read_back(&broker.bootstrap(), "ns_b", 1).len(), 1);
}

#[test]
fn records_kafka_refuses_and_lines_over_the_limit_are_dead_lettered_on_kafka() {
    let broker = Kafka::shared();
    // A compacted topic refuses records without a key; the dead-letter topic (not compacted) takes them.
    create_topic(&broker.bootstrap(), "refused_keyless", 1, &[("cleanup.policy", "compact")]);
    let mut config = java_config(&broker.bootstrap());
    config["topic_pattern"] = json!("refused.{stream}");
    config["key"] = json!({"mode": "none"});
    config["record_errors"] = json!({"policy": "dead_letter", "topic_pattern": "refused.{stream}.dlq"});
    let files = Files::new("dlq-kafka", &config, &catalog(&["keyless"]));
    let keyless = |i: usize| record("keyless", i);
    let huge = format!(
        "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"keyless\",\"emitted_at\":7,\"data\":{{\"blob\":\"{}\"}}}}}}\n",
        "x".repeat(3_000_000)
    );
    let msgs = run_ok(&files.write_args(), &(keyless(0) + &huge + &keyless(2) + &state(1)));
    assert_eq!(stats(&msgs), vec![json!({"recordCount": 3.0, "rejectedRecordCount": 3.0})]);
    // A refused record goes to the dead-letter topic once the broker's refusal comes back, so the letters of the
    // two kinds of rejection may come in either order.
    let letters = read_back(&broker.bootstrap(), "refused_keyless_dlq", 3);
    let refused: Vec<&Read> =
        letters.iter().filter(|l| header(l, "__connect.errors.stage") == "KAFKA_PRODUCE").collect();
    assert_eq!(refused.len(), 2, "{letters:?}");
    assert_eq!(header(refused[0], "__connect.errors.exception.class.name"), "InvalidRecord");
    assert!(header(refused[0], "__connect.errors.exception.message").contains("without a key"), "{:?}", refused[0]);
    let values: Vec<Value> = refused
        .iter()
        .map(|l| serde_json::from_slice::<Value>(l.value.as_deref().unwrap()).unwrap()["_airbyte_data"].clone())
        .collect();
    assert_eq!(values, vec![json!({"i": 0}), json!({"i": 2})], "the refused messages' own bytes");
    // The over-long line: its stream and line known from its head, its value never held.
    let too_long = letters.iter().find(|l| header(l, "__connect.errors.stage") == "READ").expect("the long line");
    assert_eq!(header(too_long, "__connect.errors.exception.class.name"), "RecordTooLarge");
    assert_eq!((header(too_long, "airbyte.input_line"), header(too_long, "airbyte.emitted_at")), ("2", "7"));
    assert!(header(too_long, "airbyte.value_dropped").contains("over the line limit"), "{too_long:?}");
    assert_eq!(too_long.value, None);
}
