"""spec and check, as Airbyte's destination acceptance test runs them."""

import jsonschema

from conftest import Result, java_acceptance_config, run


def test_spec_is_a_valid_connector_specification():
    result = run(["spec"])
    assert result.returncode == 0
    assert [m["type"] for m in result.messages] == ["SPEC"]
    spec = result.messages[0]["spec"]
    jsonschema.Draft7Validator.check_schema(spec["connectionSpecification"])
    assert spec["supported_destination_sync_modes"] == ["append", "append_dedup"]


def check(tmp_path, config) -> Result:
    result = run(["check"], tmp_path=tmp_path, config=config)
    assert result.returncode == 0, "check exits 0 whatever the outcome"
    return result


def status(result):
    statuses = result.of_type("CONNECTION_STATUS")
    assert len(statuses) == 1
    return statuses[0]["connectionStatus"]


def test_check_succeeds_on_a_valid_config(tmp_path, broker):
    assert status(check(tmp_path, java_acceptance_config(broker)))["status"] == "SUCCEEDED"


def test_check_fails_on_an_unreachable_broker(tmp_path, broker):
    # Port 1 (tcpmux): nothing listens there.
    result = status(check(tmp_path, java_acceptance_config(broker, "127.0.0.1:1")))
    assert result["status"] == "FAILED"
    assert "cannot reach the brokers" in result["message"]


def test_check_fails_on_bad_credentials(tmp_path, broker):
    config = java_acceptance_config(broker, broker.listener("sasl_plaintext"))
    config["protocol"] = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_jaas_config": 'org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="wrong-password";',
    }
    result = check(tmp_path, config)
    connection = status(result)
    assert connection["status"] == "FAILED"
    assert "authentication failed" in connection["message"]
    # The secret appears nowhere in the output.
    assert all("wrong-password" not in str(m) for m in result.messages)


def test_check_with_a_bad_config_names_the_field(tmp_path, broker):
    config = java_acceptance_config(broker, "127.0.0.1:9092")
    config["batch_size"] = "a lot"
    connection = status(check(tmp_path, config))
    assert connection["status"] == "FAILED" and "batch_size" in connection["message"]

