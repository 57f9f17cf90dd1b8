//! Against Apache Kafka (scripts/kafka-broker): the acceptance datasets byte for byte, check, discover, topic
//! creation and input errors.

use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use test_support::*;

/// What the Java connector would have written for one input RECORD line, given the key it chose.
fn expected_value(key: &str, line: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        record: Rec<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Rec<'a> {
        stream: String,
        emitted_at: i64,
        #[serde(borrow)]
        data: &'a RawValue,
    }
    let line: Line = serde_json::from_str(line).unwrap();
    format!(
        r#"{{"_airbyte_ab_id":"{key}","_airbyte_stream":{},"_airbyte_emitted_at":{},"_airbyte_data":{}}}"#,
        serde_json::to_string(&line.record.stream).unwrap(),
        line.record.emitted_at,
        line.record.data.get()
    )
}

/// The topic of each dataset stream under the Java pattern `{namespace}.{stream}.test.topic` (no namespace), as
/// the Java connector's naming rule gives it: written out, not computed by the code under test.
const TOPICS: &[(&str, &str)] = &[
    ("exchange_rate", "_exchange_rate_test_topic"),
    ("streamWithCamelCase", "_streamWithCamelCase_test_topic"),
    ("stream_with_underscores", "_stream_with_underscores_test_topic"),
    ("STREAM_WITH_ALL_CAPS", "_STREAM_WITH_ALL_CAPS_test_topic"),
    ("stream_with_edge_case_field_names", "_stream_with_edge_case_field_names_test_topic"),
    ("stream-with:spécial:character_names", "_stream_with_special_character_names_test_topic"),
    ("CapitalCase", "_CapitalCase_test_topic"),
    ("reserved_keywords", "_reserved_keywords_test_topic"),
    ("groups", "_groups_test_topic"),
    ("ProperCase", "_ProperCase_test_topic"),
    ("stream_name", "_stream_name_test_topic"),
    ("stream_name_next", "_stream_name_next_test_topic"),
    ("stream_with_binary_data", "_stream_with_binary_data_test_topic"),
];

fn java_topic(stream: &str) -> &'static str {
    TOPICS.iter().find(|(s, _)| *s == stream).unwrap_or_else(|| panic!("no expected topic for {stream}")).1
}

fn sync_dataset(name: &str, sync_producer: bool) {
    let broker = Kafka::shared();
    let scratch = Scratch::new(&format!("dataset-{name}"));
    let mut config = java_config(&broker.bootstrap());
    config["sync_producer"] = json!(sync_producer);
    let config_path = scratch.json("config.json", &config);
    let catalog = read_json(&fixture(&format!("{name}_catalog.json")));
    let catalog_path = scratch.json("catalog.json", &configured(&catalog));
    let input = std::fs::read_to_string(fixture(&format!("{name}_messages.txt"))).unwrap();

    let out = run(&["write", "--config", &config_path, "--catalog", &catalog_path], &input);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "write failed: {stdout}");

    // States: every input state, in order, verbatim but for destinationStats = records since the previous one.
    let mut expected_states = Vec::new();
    let mut since = 0;
    let mut per_topic: HashMap<&str, Vec<&str>> = HashMap::new();
    for line in input.lines().filter(|l| !l.trim().is_empty()) {
        let msg: Value = serde_json::from_str(line).unwrap();
        if msg["type"] == "RECORD" {
            since += 1;
            per_topic.entry(java_topic(msg["record"]["stream"].as_str().unwrap())).or_default().push(line);
        } else if msg["type"] == "STATE" {
            let mut state = msg.clone();
            state["state"]["destinationStats"] = json!({"recordCount": since as f64});
            expected_states.push(state);
            since = 0;
        }
    }
    let states: Vec<Value> = of_type(&messages(&out), "STATE").into_iter().cloned().collect();
    assert_eq!(states, expected_states);
    // The acceptance test's own check: the last state out is the last state in.
    let last_in: Value = serde_json::from_str(input.lines().rev().find(|l| l.contains("\"STATE\"")).unwrap()).unwrap();
    let mut last_out = states.last().unwrap().clone();
    last_out["state"].as_object_mut().unwrap().remove("destinationStats");
    assert_eq!(last_out, last_in);

    // Every stream's topic, read from the earliest offset, holds the Java connector's bytes, in input order, and
    // nothing else (a stream without records: an empty topic).
    for stream in catalog["streams"].as_array().unwrap() {
        let topic = java_topic(stream["name"].as_str().unwrap());
        let lines = per_topic.get(topic).cloned().unwrap_or_default();
        let got = consume(&broker.bootstrap(), topic, lines.len());
        for ((partition, key, value), line) in got.iter().zip(&lines) {
            assert_eq!(*partition, 0);
            let key = std::str::from_utf8(key).unwrap();
            let uuid = uuid::Uuid::parse_str(key).unwrap();
            assert_eq!((uuid.get_version_num(), key.len(), key.to_lowercase()), (4, 36, key.to_string()));
            assert_eq!(std::str::from_utf8(value).unwrap(), expected_value(key, line), "topic {topic}");
        }
    }
}

#[test]
fn exchange_rate_byte_for_byte_with_sync_producer() {
    sync_dataset("exchange_rate", true);
}

#[test]
fn edge_case_byte_for_byte() {
    sync_dataset("edge_case", false);
}

/// The files of a write to the shared broker, into topics of this test's own (`<name>.<stream>`).
fn write_setup(name: &str, config: impl FnOnce(&mut Value), catalog: Value) -> Files {
    let mut value = java_config(&Kafka::shared().bootstrap());
    value["topic_pattern"] = json!(format!("{name}.{{stream}}"));
    config(&mut value);
    Files::new(name, &value, &catalog)
}

fn check(config: &Value) -> Value {
    let scratch = Scratch::new("check");
    let path = scratch.json("config.json", config);
    let out = run(&["check", "--config", &path], "");
    assert!(out.status.success(), "check exits 0 either way");
    let msgs = messages(&out);
    let status = of_type(&msgs, "CONNECTION_STATUS");
    assert_eq!(status.len(), 1);
    status[0]["connectionStatus"].clone()
}

#[test]
fn check_writes_the_java_test_message() {
    let broker = Kafka::shared();
    let mut config = java_config(&broker.bootstrap());
    config["test_topic"] = json!("check.test.topic");
    assert_eq!(check(&config)["status"], "SUCCEEDED");
    let got = consume(&broker.bootstrap(), "check_test_topic", 1);
    let value: Value = serde_json::from_slice(&got[0].2).unwrap();
    assert_eq!(value["_airbyte_stream"], "test-topic-stream");
    assert_eq!(value["_airbyte_data"], json!({"test-key": "test-value"}));
    assert_eq!(value["_airbyte_ab_id"], std::str::from_utf8(&got[0].1).unwrap());
}

#[test]
fn check_without_test_topic_still_reaches_the_cluster() {
    let broker = Kafka::shared();
    let status = check(&java_config(&broker.bootstrap()));
    assert_eq!(status["status"], "SUCCEEDED");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("`test_topic`"), "what check could not prove is said: {message}");
    // Port 1 (tcpmux): nothing listens there.
    let status = check(&java_config("127.0.0.1:1"));
    assert_eq!(status["status"], "FAILED");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("cannot reach the brokers") && message.contains("Connection refused"), "{message}");
}

#[test]
fn check_names_bad_credentials() {
    let broker = Kafka::shared();
    let mut config = java_config(&broker.listener("sasl_plaintext"));
    config["protocol"] = json!({
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_jaas_config": "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"not-her-password\";"
    });
    let status = check(&config);
    assert_eq!(status["status"], "FAILED");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("authentication failed"), "{message}");
    assert!(!message.contains("not-her-password"), "the password must never be shown");
}

#[test]
fn discover_lists_topics_with_the_envelope_schema() {
    let files = write_setup("discover", |_| {}, catalog(&["users"]));
    assert!(run(&files.write_args(), "").status.success());
    let out = run(&["discover", "--config", &files.config], "");
    assert!(out.status.success());
    let msgs = messages(&out);
    let catalog = of_type(&msgs, "DESTINATION_CATALOG");
    let ops = catalog[0]["destination_catalog"]["operations"].as_array().unwrap();
    let op = ops.iter().find(|o| o["object_name"] == "discover_users").expect("the created topic");
    assert_eq!(op["sync_mode"], "append");
    assert_eq!(op["json_schema"]["properties"]["_airbyte_data"]["type"], "object");
}

#[test]
fn created_topics_get_the_configured_partitions() {
    let files = write_setup("partitions", |c| c["topic_partitions"] = json!(3), catalog(&["s"]));
    let records: String = (0..30)
        .map(|i| {
            format!("{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"s\",\"emitted_at\":1,\"data\":{{\"i\":{i}}}}}}}\n")
        })
        .collect();
    assert!(run(&files.write_args(), &records).status.success());
    let got = consume(&Kafka::shared().bootstrap(), "partitions_s", 30);
    let partitions: std::collections::HashSet<i32> = got.iter().map(|m| m.0).collect();
    assert!(partitions.len() > 1 && partitions.iter().all(|p| (0..3).contains(p)), "{partitions:?}");
}

fn trace_error(out: &std::process::Output) -> Value {
    the_trace(&messages(out))
}

#[test]
fn bad_input_fails_the_sync_with_the_line_number() {
    let files = write_setup("bad-input", |_| {}, catalog(&["s"]));
    let record = r#"{"type":"RECORD","record":{"stream":"s","emitted_at":1,"data":{"a":1}}}"#;
    let state = r#"{"type":"STATE","state":{"data":{"n":1}}}"#;

    let input = format!("{record}\n{state}\n\n{{oops this is not json\n{record}\n");
    let out = run(&files.write_args(), &input);
    assert!(!out.status.success());
    let error = trace_error(&out);
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("input line 4") && message.contains("{oops"), "{message}");
    assert_eq!(error["failure_type"], "system_error");
    // The state before the bad line covers an acknowledged record: it is still a promise we can keep.
    assert_eq!(of_type(&messages(&out), "STATE").len(), 1);

    let input = format!("{record}\n{}\n", record.replace("\"s\"", "\"elsewhere\""));
    let out = run(&files.write_args(), &input);
    assert!(!out.status.success());
    let message = trace_error(&out)["message"].as_str().unwrap().to_string();
    assert!(message.contains("`elsewhere`") && message.contains("input line 2"), "{message}");

    let out = run(&files.write_args(), r#"{"type":"RECORD","record":{"data":{}}}"#);
    assert!(trace_error(&out)["message"].as_str().unwrap().contains("without `stream`"));
}

#[test]
fn config_errors_stop_write_before_reading() {
    let mut config = java_config("127.0.0.1:9");
    config["batch_size"] = json!("lots");
    let files = Files::new("config-error", &config, &catalog(&["s"]));
    let out = run(&files.write_args(), "");
    assert!(!out.status.success());
    let error = trace_error(&out);
    assert_eq!(error["failure_type"], "config_error");
    assert!(error["message"].as_str().unwrap().contains("`batch_size`"));
}
