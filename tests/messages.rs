//! Keys, headers, timestamps and append_dedup, written to a real broker (tansu) and read back.

mod common;

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use serde_json::{json, Value};

fn line(stream: &str, emitted_at: i64, data: Value) -> String {
    json!({"type": "RECORD", "record": {"stream": stream, "emitted_at": emitted_at, "data": data}}).to_string() + "\n"
}

fn sync(broker: &Broker, name: &str, change: impl FnOnce(&mut Value), catalog: Value, input: &str) -> Vec<Value> {
    let scratch = Scratch::new(name);
    let mut config = java_config(&broker.bootstrap());
    config["topic_pattern"] = json!("{stream}");
    change(&mut config);
    let config = scratch.json("config.json", &config);
    let catalog = scratch.json("catalog.json", &catalog);
    messages(&run(&["write", "--config", &config, "--catalog", &catalog], input))
}

fn text(bytes: &Option<Vec<u8>>) -> Option<&str> {
    bytes.as_deref().map(|b| std::str::from_utf8(b).unwrap())
}

#[test]
fn keys_from_fields_headers_and_timestamps_from_a_field() {
    let broker = Broker::start();
    let catalog = json!({"streams": [{"stream": {"name": "orders", "namespace": "shop"}, "sync_mode": "incremental",
        "destination_sync_mode": "append", "sync_id": 42, "generation_id": 3}]});
    let input =
        line("orders", 1700000000000, json!({"id": 7, "customer": {"id": "c-1"}, "at": "2024-01-01T00:00:01Z"}))
            .replace("\"stream\"", "\"namespace\":\"shop\",\"stream\"")
            + &line("orders", 1700000000001, json!({"customer": {"id": "c-2"}, "id": 8, "at": "2024-01-02"}))
                .replace("\"stream\"", "\"namespace\":\"shop\",\"stream\"");
    let msgs = sync(
        &broker,
        "keys-fields",
        |c| {
            c["key"] = json!({"mode": "fields", "fields": ["customer.id", "id"]});
            c["headers"] = json!(true);
            c["timestamp"] = json!({"source": "field", "field": "at"});
        },
        catalog,
        &input,
    );
    assert!(of_type(&msgs, "TRACE").is_empty(), "{msgs:?}");
    let got = read_back(&broker.bootstrap(), "orders", 2);
    assert_eq!(text(&got[0].key), Some(r#"["c-1",7]"#));
    assert_eq!(text(&got[1].key), Some(r#"["c-2",8]"#));
    assert_eq!((got[0].timestamp, got[1].timestamp), (Some(1704067201000), Some(1704153600000)));
    let envelope: Value = serde_json::from_slice(got[0].value.as_ref().unwrap()).unwrap();
    let headers: Vec<(&str, &str)> =
        got[0].headers.iter().map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap())).collect();
    assert_eq!(
        headers,
        vec![
            ("airbyte.stream", "orders"),
            ("airbyte.namespace", "shop"),
            ("airbyte.emitted_at", "1700000000000"),
            ("airbyte.ab_id", envelope["_airbyte_ab_id"].as_str().unwrap()),
            ("airbyte.sync_id", "42"),
            ("airbyte.generation_id", "3"),
        ]
    );
}

#[test]
fn primary_keys_no_keys_and_emitted_at_timestamps() {
    let broker = Broker::start();
    let catalog =
        json!({"streams": [{"stream": {"name": "users"}, "primary_key": [["id"]], "destination_sync_mode": "append"}]});
    let without_key = json!({"streams": [{"stream": {"name": "events"}, "destination_sync_mode": "append"}]});
    let input = line("users", 1700000000000, json!({"id": "u-1"})) + &line("users", 1700000000500, json!({"id": 2}));
    let msgs = sync(
        &broker,
        "keys-pk",
        |c| {
            c["key"] = json!({"mode": "primary_key"});
            c["timestamp"] = json!({"source": "emitted_at"});
        },
        catalog,
        &input,
    );
    assert!(of_type(&msgs, "TRACE").is_empty(), "{msgs:?}");
    let got = read_back(&broker.bootstrap(), "users", 2);
    assert_eq!((text(&got[0].key), text(&got[1].key)), (Some("u-1"), Some("2")));
    assert_eq!((got[0].timestamp, got[1].timestamp), (Some(1700000000000), Some(1700000000500)));
    assert!(got[0].headers.is_empty());

    // A stream without a primary key cannot be keyed by it: a config error naming the stream, before any record.
    let msgs = sync(
        &broker,
        "keys-pk-missing",
        |c| c["key"] = json!({"mode": "primary_key"}),
        without_key.clone(),
        &line("events", 1, json!({})),
    );
    let error = &of_type(&msgs, "TRACE")[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "config_error");
    assert!(error["message"].as_str().unwrap().contains("stream `events`"), "{error}");

    let msgs = sync(
        &broker,
        "keys-none",
        |c| c["key"] = json!({"mode": "none"}),
        without_key,
        &line("events", 1, json!({"x": 1})),
    );
    assert!(of_type(&msgs, "TRACE").is_empty(), "{msgs:?}");
    assert_eq!(read_back(&broker.bootstrap(), "events", 1)[0].key, None);
}

#[test]
fn a_record_without_its_key_field_fails_the_sync_naming_the_line() {
    let broker = Broker::start();
    let catalog = json!({"streams": [{"name": "users"}]});
    let input = line("users", 1, json!({"id": 1})) + &line("users", 1, json!({"name": "no id"}));
    let msgs =
        sync(&broker, "keys-missing", |c| c["key"] = json!({"mode": "fields", "fields": ["id"]}), catalog, &input);
    let error = &of_type(&msgs, "TRACE")[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "config_error");
    assert_eq!(error["message"], "input line 2: stream `users`: key field `id` is missing");
}

fn cleanup_policy(bootstrap: &str, topic: &str) -> Option<String> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let results =
        runtime.block_on(admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())).unwrap();
    let resource = results.into_iter().next().unwrap().unwrap();
    resource.get("cleanup.policy").and_then(|e| e.value.clone())
}

#[test]
fn append_dedup_keys_by_primary_key_into_a_compacted_topic_with_tombstones() {
    let broker = Broker::start();
    let catalog = json!({"streams": [{"stream": {"name": "customers"}, "primary_key": [["id"]],
        "sync_mode": "incremental", "destination_sync_mode": "append_dedup"}]});
    let input = line("customers", 1, json!({"id": 1, "name": "a", "_ab_cdc_deleted_at": null}))
        + &line("customers", 2, json!({"id": 1, "name": "b"}))
        + &line("customers", 3, json!({"id": 1, "_ab_cdc_deleted_at": "2024-01-01T00:00:00Z"}));
    // `key` says uuid: append_dedup keys by the primary key whatever `key` says.
    let msgs = sync(&broker, "dedup", |c| c["key"] = json!({"mode": "uuid"}), catalog, &input);
    assert!(of_type(&msgs, "TRACE").is_empty(), "{msgs:?}");
    let got = read_back(&broker.bootstrap(), "customers", 3);
    assert!(got.iter().all(|m| text(&m.key) == Some("1")), "{got:?}");
    assert!(got[0].value.is_some() && got[1].value.is_some());
    assert_eq!(got[2].value, None, "a CDC delete is a tombstone");
    assert_eq!(cleanup_policy(&broker.bootstrap(), "customers").as_deref(), Some("compact"));
}

#[test]
fn append_dedup_into_an_existing_topic_that_is_not_compacted_is_used_with_a_warning() {
    let broker = Broker::start();
    let plain = json!({"streams": [{"name": "accounts"}]});
    let msgs = sync(&broker, "dedup-existing-1", |_| {}, plain, &line("accounts", 1, json!({"id": 1})));
    assert!(of_type(&msgs, "TRACE").is_empty());
    let dedup = json!({"streams": [{"stream": {"name": "accounts"}, "primary_key": [["id"]], "destination_sync_mode": "append_dedup"}]});
    let msgs = sync(&broker, "dedup-existing-2", |_| {}, dedup, &line("accounts", 2, json!({"id": 1})));
    assert!(of_type(&msgs, "TRACE").is_empty(), "{msgs:?}");
    let warned = of_type(&msgs, "LOG").iter().any(|m| {
        m["log"]["level"] == "WARN"
            && m["log"]["message"]
                .as_str()
                .unwrap()
                .contains("topic `accounts` receives a stream in append_dedup mode but is not compacted")
    });
    assert!(warned, "{msgs:?}");
    assert_eq!(read_back(&broker.bootstrap(), "accounts", 2).len(), 2);
}
