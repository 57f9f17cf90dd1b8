"""TLS, mutual TLS, SCRAM and PLAIN, black box: the release binary against Apache Kafka's own listeners
(scripts/kafka-broker: SSL, MTLS, SASL_PLAINTEXT, SASL_SSL), each success beside the refusal on the same listener."""

import json

from conftest import configured_catalog, java_acceptance_config, read_back, run


def config(broker, listener, protocol):
    c = java_acceptance_config(broker)
    c.update({"bootstrap_servers": broker.listener(listener), "topic_pattern": f"{broker.prefix}.{{stream}}",
              "sync_producer": False, "protocol": protocol})
    return c


def check(tmp_path, cfg):
    (status,) = run(["check"], tmp_path=tmp_path, config=cfg).of_type("CONNECTION_STATUS")
    return status["connectionStatus"]


def write_and_read(tmp_path, broker, cfg):
    catalog = configured_catalog({"streams": [{"name": "users", "json_schema": {}}]})
    lines = [json.dumps({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1, "data": {"i": i}}}) for i in range(3)]
    lines.append(json.dumps({"type": "STATE", "state": {"data": {"n": 1}}}))
    result = run(["write"], "\n".join(lines) + "\n", tmp_path=tmp_path, config=cfg, catalog=catalog)
    assert result.returncode == 0, result.messages
    assert len(result.of_type("STATE")) == 1
    got = read_back(broker.bootstrap, broker.topic("users"), 3)
    assert [json.loads(m.value())["_airbyte_data"]["i"] for m in got] == [0, 1, 2]


def pem(broker, name):
    with open(broker.info["tls"][name]) as f:
        return f.read()


def test_tls_with_the_ca(tmp_path, broker):
    protocol = {"security_protocol": "SSL", "ssl_ca_certificates": pem(broker, "ca")}
    assert check(tmp_path, config(broker, "ssl", protocol))["status"] == "SUCCEEDED"
    write_and_read(tmp_path, broker, config(broker, "ssl", protocol))
    wrong = {"security_protocol": "SSL", "ssl_ca_certificates": pem(broker, "other_ca")}
    status = check(tmp_path, config(broker, "ssl", wrong))
    assert status["status"] == "FAILED" and "protocol.ssl_ca_certificates" in status["message"], status


def test_mutual_tls(tmp_path, broker):
    protocol = {"security_protocol": "SSL", "ssl_ca_certificates": pem(broker, "ca"),
                "ssl_client_certificate": pem(broker, "client_cert"),
                "ssl_client_key": pem(broker, "client_key_encrypted"), "ssl_key_password": "key-password"}
    assert check(tmp_path, config(broker, "mtls", protocol))["status"] == "SUCCEEDED"
    write_and_read(tmp_path, broker, config(broker, "mtls", protocol))
    no_client = {"security_protocol": "SSL", "ssl_ca_certificates": pem(broker, "ca")}
    status = check(tmp_path, config(broker, "mtls", no_client))
    assert status["status"] == "FAILED" and "requires a client certificate" in status["message"], status
    result = run(["check"], tmp_path=tmp_path, config=config(broker, "mtls", protocol))
    assert all("key-password" not in json.dumps(m) for m in result.messages)


def test_scram_and_plain_logins(tmp_path, broker):
    scram = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
             "sasl_username": "bob", "sasl_password": "bob-secret"}
    write_and_read(tmp_path, broker, config(broker, "sasl_plaintext", scram))
    status = check(tmp_path, config(broker, "sasl_plaintext", dict(scram, sasl_password="not-bobs")))
    assert status["status"] == "FAILED" and "authentication failed" in status["message"], status
    plain = {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "plain",
             "sasl_password": "plain-secret", "ssl_ca_certificates": pem(broker, "ca")}
    assert check(tmp_path, config(broker, "sasl_ssl", plain))["status"] == "SUCCEEDED"
    status = check(tmp_path, config(broker, "sasl_ssl", dict(plain, sasl_password="wrong")))
    assert status["status"] == "FAILED" and "authentication failed" in status["message"], status


def test_a_ca_given_in_kafka_properties_reaches_the_progress_topic_reader(tmp_path, broker):
    """`kafka_properties` says how to reach the brokers for every client of the sync, not only the producer: here
    the only CA is `ssl.ca.location` there, and exactly-once with replay detection reads the progress topic before
    it writes. The same listener refuses the sync without it."""
    cfg = config(broker, "ssl", {"security_protocol": "SSL"})
    cfg.update({"delivery_guarantee": "exactly_once", "replay_detection": True,
                "progress_topic": f"{broker.prefix}_progress",
                # A producer-only property beside it: the reader must leave it out, not warn about it.
                "kafka_properties": {"ssl.ca.location": broker.info["tls"]["ca"], "sticky.partitioning.linger.ms": 5}})
    write_and_read(tmp_path, broker, cfg)
    result = run(["write"], "", tmp_path=tmp_path, config=cfg,
                 catalog=configured_catalog({"streams": [{"name": "users", "json_schema": {}}]}))
    assert result.returncode == 0, result.messages
    assert not any("sticky.partitioning" in json.dumps(m) for m in result.messages), result.messages
    del cfg["kafka_properties"]
    status = check(tmp_path, cfg)
    assert status["status"] == "FAILED" and "certificate" in status["message"].lower(), status
