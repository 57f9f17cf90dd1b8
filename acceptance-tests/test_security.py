"""TLS, mutual TLS and SCRAM, black box: the release binary against tansu behind stunnel (scripts/tls-front) and
tansu with SCRAM users (scripts/tansu-broker --sasl), certificates made by scripts/test-certs."""

import json
import socket
import subprocess
import time

import pytest

from conftest import REPO, Broker, configured_catalog, java_acceptance_config, read_back, run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, limit=30):
    deadline = time.monotonic() + limit
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    subprocess.run([str(REPO / "scripts" / "test-certs"), str(directory)], check=True)
    return directory


class TlsBroker:
    """tansu advertising a stunnel front: every connection goes through TLS."""

    def __init__(self, certs, clients_ca=None, *tansu_options):
        self.port = free_port()
        self.broker = Broker("--advertise", f"127.0.0.1:{self.port}", *tansu_options)
        args = [str(REPO / "scripts" / "tls-front"), str(self.port), str(self.broker.port),
                str(certs / "server.pem"), str(certs / "server.key")]
        if clients_ca:
            args += ["--clients", str(certs / clients_ca)]
        self.front = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.port)
        self.bootstrap = f"127.0.0.1:{self.port}"

    def stop(self):
        self.front.kill()
        self.front.wait()
        self.broker.stop()


def config(bootstrap, protocol):
    c = java_acceptance_config(bootstrap)
    c.update({"topic_pattern": "{stream}", "sync_producer": False, "protocol": protocol})
    return c


def check(tmp_path, cfg):
    (status,) = run(["check"], tmp_path=tmp_path, config=cfg).of_type("CONNECTION_STATUS")
    return status["connectionStatus"]


def write_and_read(tmp_path, cfg, bootstrap, consumer_config):
    catalog = configured_catalog({"streams": [{"name": "users", "json_schema": {}}]})
    lines = [json.dumps({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1, "data": {"i": i}}}) for i in range(3)]
    lines.append(json.dumps({"type": "STATE", "state": {"data": {"n": 1}}}))
    result = run(["write"], "\n".join(lines) + "\n", tmp_path=tmp_path, config=cfg, catalog=catalog)
    assert result.returncode == 0, result.messages
    assert len(result.of_type("STATE")) == 1
    got = read_back(bootstrap, "users", 3, consumer_config=consumer_config)
    assert [json.loads(m.value())["_airbyte_data"]["i"] for m in got] == [0, 1, 2]


def test_tls_with_the_ca(tmp_path, certs):
    broker = TlsBroker(certs)
    try:
        protocol = {"security_protocol": "SSL", "ssl_ca_certificates": (certs / "ca.pem").read_text()}
        assert check(tmp_path, config(broker.bootstrap, protocol))["status"] == "SUCCEEDED"
        write_and_read(tmp_path, config(broker.bootstrap, protocol), broker.bootstrap,
                       {"security.protocol": "SSL", "ssl.ca.location": str(certs / "ca.pem")})
        wrong = {"security_protocol": "SSL", "ssl_ca_certificates": (certs / "other-ca.pem").read_text()}
        status = check(tmp_path, config(broker.bootstrap, wrong))
        assert status["status"] == "FAILED" and "protocol.ssl_ca_certificates" in status["message"], status
    finally:
        broker.stop()


def test_mutual_tls(tmp_path, certs):
    broker = TlsBroker(certs, "ca.pem")
    try:
        protocol = {"security_protocol": "SSL", "ssl_ca_certificates": (certs / "ca.pem").read_text(),
                    "ssl_client_certificate": (certs / "client.pem").read_text(),
                    "ssl_client_key": (certs / "client-encrypted.key").read_text(), "ssl_key_password": "key-password"}
        assert check(tmp_path, config(broker.bootstrap, protocol))["status"] == "SUCCEEDED"
        write_and_read(tmp_path, config(broker.bootstrap, protocol), broker.bootstrap,
                       {"security.protocol": "SSL", "ssl.ca.location": str(certs / "ca.pem"),
                        "ssl.certificate.location": str(certs / "client.pem"),
                        "ssl.key.location": str(certs / "client.key")})
        no_client = {"security_protocol": "SSL", "ssl_ca_certificates": (certs / "ca.pem").read_text()}
        status = check(tmp_path, config(broker.bootstrap, no_client))
        assert status["status"] == "FAILED" and "requires a client certificate" in status["message"], status
        result = run(["check"], tmp_path=tmp_path, config=config(broker.bootstrap, protocol))
        assert all("key-password" not in json.dumps(m) for m in result.messages)
    finally:
        broker.stop()


def test_scram_logins(tmp_path):
    broker = Broker("--sasl")
    try:
        good = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": "bob", "sasl_password": "bob-secret"}
        assert check(tmp_path, config(broker.bootstrap, good))["status"] == "SUCCEEDED"
        write_and_read(tmp_path, config(broker.bootstrap, good), broker.bootstrap,
                       {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                        "sasl.username": "bob", "sasl.password": "bob-secret"})
        bad = dict(good, sasl_password="not-bobs")
        status = check(tmp_path, config(broker.bootstrap, bad))
        assert status["status"] == "FAILED" and "authentication failed" in status["message"], status
    finally:
        broker.stop()
