//! Keys, headers, timestamps and append_dedup, written to Apache Kafka and read back; compaction by Kafka's own
//! log cleaner; the broker's refusals of records (no key on a compacted topic, a topic's size limit).

use serde_json::{json, Value};
use test_support::admin::{create_topic, topic_config};
use test_support::*;

fn line(stream: &str, emitted_at: i64, data: Value) -> String {
    json!({"type": "RECORD", "record": {"stream": stream, "emitted_at": emitted_at, "data": data}}).to_string() + "\n"
}

/// A write to the shared broker into topics of the test's own: `<name>_<stream>` (`name` in `[a-z_]`).
fn sync(name: &str, change: impl FnOnce(&mut Value), catalog: Value, input: &str) -> Vec<Value> {
    let mut config = java_config(&bootstrap());
    config["topic_pattern"] = json!(format!("{name}.{{stream}}"));
    change(&mut config);
    messages(&run(&Files::new(name, &config, &catalog).write_args(), input))
}

fn bootstrap() -> String {
    Kafka::shared().bootstrap()
}

fn text(bytes: &Option<Vec<u8>>) -> Option<&str> {
    bytes.as_deref().map(|b| std::str::from_utf8(b).unwrap())
}

#[test]
fn keys_from_fields_headers_and_timestamps_from_a_field() {
    let catalog = json!({"streams": [{"stream": {"name": "orders", "namespace": "shop"}, "sync_mode": "incremental",
        "destination_sync_mode": "append", "sync_id": 42, "generation_id": 3}]});
    let input =
        line("orders", 1700000000000, json!({"id": 7, "customer": {"id": "c-1"}, "at": "2024-01-01T00:00:01Z"}))
            .replace("\"stream\"", "\"namespace\":\"shop\",\"stream\"")
            + &line("orders", 1700000000001, json!({"customer": {"id": "c-2"}, "id": 8, "at": "2024-01-02"}))
                .replace("\"stream\"", "\"namespace\":\"shop\",\"stream\"");
    let msgs = sync(
        "keys_fields",
        |c| {
            c["key"] = json!({"mode": "fields", "fields": ["customer.id", "id"]});
            c["headers"] = json!(true);
            c["timestamp"] = json!({"source": "field", "field": "at"});
        },
        catalog,
        &input,
    );
    assert!(of_type(&msgs, "TRACE").is_empty(), "{msgs:?}");
    let got = read_back(&bootstrap(), "keys_fields_orders", 2);
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
    let catalog =
        json!({"streams": [{"stream": {"name": "users"}, "primary_key": [["id"]], "destination_sync_mode": "append"}]});
    let without_key = json!({"streams": [{"stream": {"name": "events"}, "destination_sync_mode": "append"}]});
    let input = line("users", 1700000000000, json!({"id": "u-1"})) + &line("users", 1700000000500, json!({"id": 2}));
    let msgs = sync(
        "keys_pk",
        |c| {
            c["key"] = json!({"mode": "primary_key"});
            c["timestamp"] = json!({"source": "emitted_at"});
        },
        catalog,
        &input,
    );
    assert!(of_type(&msgs, "TRACE").is_empty(), "{msgs:?}");
    let got = read_back(&bootstrap(), "keys_pk_users", 2);
    assert_eq!((text(&got[0].key), text(&got[1].key)), (Some("u-1"), Some("2")));
    assert_eq!((got[0].timestamp, got[1].timestamp), (Some(1700000000000), Some(1700000000500)));
    assert!(got[0].headers.is_empty());

    // A stream without a primary key cannot be keyed by it: a config error naming the stream, before any record.
    let msgs = sync(
        "keys_pk_missing",
        |c| c["key"] = json!({"mode": "primary_key"}),
        without_key.clone(),
        &line("events", 1, json!({})),
    );
    let error = &of_type(&msgs, "TRACE")[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "config_error");
    assert!(error["message"].as_str().unwrap().contains("stream `events`"), "{error}");

    let msgs =
        sync("keys_none", |c| c["key"] = json!({"mode": "none"}), without_key, &line("events", 1, json!({"x": 1})));
    assert!(of_type(&msgs, "TRACE").is_empty(), "{msgs:?}");
    assert_eq!(read_back(&bootstrap(), "keys_none_events", 1)[0].key, None);
}

#[test]
fn a_record_without_its_key_field_fails_the_sync_naming_the_line() {
    let catalog = json!({"streams": [{"name": "users"}]});
    let input = line("users", 1, json!({"id": 1})) + &line("users", 1, json!({"name": "no id"}));
    let msgs = sync("keys_missing", |c| c["key"] = json!({"mode": "fields", "fields": ["id"]}), catalog, &input);
    let error = &of_type(&msgs, "TRACE")[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "config_error");
    assert_eq!(error["message"], "input line 2: stream `users`: key field `id` is missing");
}

#[test]
fn append_dedup_keys_by_primary_key_into_a_compacted_topic_with_tombstones() {
    let catalog = json!({"streams": [{"stream": {"name": "customers"}, "primary_key": [["id"]],
        "sync_mode": "incremental", "destination_sync_mode": "append_dedup"}]});
    let input = line("customers", 1, json!({"id": 1, "name": "a", "_ab_cdc_deleted_at": null}))
        + &line("customers", 2, json!({"id": 1, "name": "b"}))
        + &line("customers", 3, json!({"id": 1, "_ab_cdc_deleted_at": "2024-01-01T00:00:00Z"}));
    // `key` says uuid: append_dedup keys by the primary key whatever `key` says.
    let msgs = sync("dedup", |c| c["key"] = json!({"mode": "uuid"}), catalog, &input);
    assert!(of_type(&msgs, "TRACE").is_empty(), "{msgs:?}");
    let got = read_back(&bootstrap(), "dedup_customers", 3);
    assert!(got.iter().all(|m| text(&m.key) == Some("1")), "{got:?}");
    assert!(got[0].value.is_some() && got[1].value.is_some());
    assert_eq!(got[2].value, None, "a CDC delete is a tombstone");
    assert_eq!(topic_config(&bootstrap(), "dedup_customers", "cleanup.policy").as_deref(), Some("compact"));
}

#[test]
fn append_dedup_into_an_existing_topic_that_is_not_compacted_is_used_with_a_warning() {
    let plain = json!({"streams": [{"name": "accounts"}]});
    let msgs = sync("dedup_existing", |_| {}, plain, &line("accounts", 1, json!({"id": 1})));
    assert!(of_type(&msgs, "TRACE").is_empty());
    let dedup = json!({"streams": [{"stream": {"name": "accounts"}, "primary_key": [["id"]], "destination_sync_mode": "append_dedup"}]});
    let msgs = sync("dedup_existing", |_| {}, dedup, &line("accounts", 2, json!({"id": 1})));
    assert!(of_type(&msgs, "TRACE").is_empty(), "{msgs:?}");
    let warned = of_type(&msgs, "LOG").iter().any(|m| {
        m["log"]["level"] == "WARN"
            && m["log"]["message"]
                .as_str()
                .unwrap()
                .contains("topic `dedup_existing_accounts` receives a stream in append_dedup mode but is not compacted")
    });
    assert!(warned, "{msgs:?}");
    assert_eq!(read_back(&bootstrap(), "dedup_existing_accounts", 2).len(), 2);
}

#[test]
fn kafka_compacts_an_append_dedup_topic_to_the_latest_record_per_key_and_drops_tombstones() {
    // The topic as an operator would set it up for quick compaction: small segments, tombstones kept briefly.
    let topic = "compaction_customers";
    let quick = [
        ("cleanup.policy", "compact"),
        ("segment.ms", "100"),
        ("min.cleanable.dirty.ratio", "0.001"),
        ("delete.retention.ms", "100"),
        ("min.compaction.lag.ms", "0"),
    ];
    create_topic(&bootstrap(), topic, 1, &quick);
    let catalog = json!({"streams": [{"stream": {"name": "customers"}, "primary_key": [["id"]],
        "sync_mode": "incremental", "destination_sync_mode": "append_dedup"}]});
    let json_values = |c: &mut Value| c["format"] = json!({"type": "json"});
    let input = line("customers", 1, json!({"id": 1, "v": "a1"}))
        + &line("customers", 2, json!({"id": 2, "v": "b1"}))
        + &line("customers", 3, json!({"id": 1, "v": "a2"}))
        + &line("customers", 4, json!({"id": 3, "v": "c1"}))
        + &line("customers", 5, json!({"id": 2, "_ab_cdc_deleted_at": "2024-01-01T00:00:00Z"}));
    assert!(of_type(&sync("compaction", json_values, catalog.clone(), &input), "TRACE").is_empty());
    assert_eq!(read_back(&bootstrap(), topic, 5).len(), 5, "every record first");
    // What the log cleaner must leave: key 1's latest record, key 3's, and of key 2 nothing but (for
    // delete.retention.ms) its tombstone; the records they replace gone.
    let compacted = |got: &[(String, Option<String>)]| {
        let of = |key: &str| got.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_deref()).collect::<Vec<_>>();
        of("1") == [Some(r#"{"id":1,"v":"a2"}"#)]
            && of("3") == [Some(r#"{"id":3,"v":"c1"}"#)]
            && (of("2").is_empty() || of("2") == [None])
    };
    let mut last = Vec::new();
    for round in 0..120 {
        // Records written later roll the segment (segment.ms) and keep the log dirty, so the cleaner runs.
        let later = line("customers", 10 + round, json!({"id": 9, "v": round}));
        assert!(of_type(&sync("compaction", json_values, catalog.clone(), &later), "TRACE").is_empty());
        last = test_support::consume::everything(&bootstrap(), topic)
            .into_iter()
            .map(|m| (m.key_text().to_string(), m.value.map(|v| String::from_utf8(v).unwrap())))
            .collect();
        if compacted(&last) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("{topic} was never compacted: {last:?}");
}

#[test]
fn records_the_broker_refuses_are_said_clearly() {
    // A compacted topic refuses a record without a key (a stream not in append_dedup, keyed by nothing).
    create_topic(&bootstrap(), "refusals_keyless", 1, &[("cleanup.policy", "compact")]);
    let msgs = sync(
        "refusals",
        |c| c["key"] = json!({"mode": "none"}),
        catalog(&["keyless"]),
        &line("keyless", 1, json!({"id": 1})),
    );
    let error = the_trace(&msgs);
    assert_eq!(error["failure_type"], "config_error", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("`refusals_keyless`") && message.contains("without a key"), "{message}");
    assert!(of_type(&msgs, "STATE").is_empty());
    // A topic whose max.message.bytes is smaller than the record, which max_request_size allows.
    create_topic(&bootstrap(), "refusals_small", 1, &[("max.message.bytes", "1000")]);
    let big = line("small", 1, json!({"blob": "x".repeat(5000)}));
    let msgs = sync("refusals", |_| {}, catalog(&["small"]), &big);
    let error = the_trace(&msgs);
    assert_eq!(error["failure_type"], "config_error", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("`refusals_small`") && message.contains("max.message.bytes"), "{message}");
}
