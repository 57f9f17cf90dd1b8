"""The image, built for real (scripts/build-image: docker where an engine runs, else podman) and run as the platform
runs it: its entrypoint, as uid 1000, for spec, check and a write whose records are read back from the broker.

Where `docker run` / `podman run` cannot run containers (here podman's runtime cannot set rlimits), the image's own
filesystem is mounted (`podman image mount`) and the entrypoint runs in it with `chroot --userspec=1000:1000`: the
image's binary and libraries, as uid 1000, on the host's network. What that cannot show: the container runtime's own
isolation (namespaces, cgroups)."""

import json
import os
import shutil
import subprocess
import tomllib

import jsonschema
import pytest
import yaml

from conftest import REPO, configured_catalog, consume, dataset, java_acceptance_config, validate

METADATA = yaml.safe_load((REPO / "metadata.yaml").read_text())
VERSION = tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]

# The keys Airbyte's connector metadata schema requires, with the values it allows where it restricts them.
METADATA_SCHEMA = {
    "type": "object",
    "required": ["data", "metadataSpecVersion"],
    "properties": {
        "data": {
            "type": "object",
            "required": [
                "name", "definitionId", "connectorType", "dockerRepository", "dockerImageTag", "license",
                "documentationUrl", "githubIssueLabel", "connectorSubtype", "releaseStage",
            ],
            "properties": {
                "definitionId": {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
                "connectorType": {"enum": ["destination", "source"]},
                "connectorSubtype": {"enum": ["api", "database", "datalake", "file", "custom", "message_queue", "unknown", "vectorstore"]},
                "releaseStage": {"enum": ["alpha", "beta", "generally_available", "custom"]},
                "dockerImageTag": {"type": "string"},
            },
        }
    },
}


def engine():
    for candidate in ("docker", "podman"):
        if shutil.which(candidate) and subprocess.run([candidate, "info"], capture_output=True).returncode == 0:
            return candidate
    return None


class Image:
    """The built image and a way to run its entrypoint as uid 1000."""

    def __init__(self):
        built = subprocess.run([str(REPO / "scripts" / "build-image")], capture_output=True, text=True, timeout=3600)
        assert built.returncode == 0, built.stderr[-3000:]
        self.tag = built.stdout.strip().splitlines()[-1]
        self.engine = engine()
        assert self.engine, "scripts/build-image built the image, so an engine must answer `info`"
        (self.config,) = json.loads(subprocess.check_output([self.engine, "image", "inspect", self.tag]))
        self.root = None
        probe = subprocess.run([self.engine, "run", "--rm", "--network", "host", "--user", "1000:1000", self.tag, "spec"],
                               capture_output=True, timeout=120)
        if probe.returncode != 0:
            # No container runtime here: run the image's filesystem instead.
            self.root = subprocess.check_output([self.engine, "image", "mount", self.tag], text=True).strip()

    def user(self):
        """The uid:gid the entrypoint runs as, read inside the image."""
        if self.root is None:
            command = [self.engine, "run", "--rm", "--user", "1000:1000", "--entrypoint", "/usr/bin/id", self.tag]
        else:
            command = ["chroot", "--userspec=1000:1000", self.root, "/usr/bin/id"]
        out = subprocess.check_output(command + ["-u"], text=True).strip()
        return out + ":" + subprocess.check_output(command + ["-g"], text=True).strip()

    def run(self, args, stdin="", files=None, tmp_path=None):
        """Runs the entrypoint with `args`; `files` (name → JSON) are visible to it under /secrets."""
        argv = [a.replace("{secrets}", "/secrets") for a in args]
        secrets = tmp_path / "secrets"
        secrets.mkdir(exist_ok=True)
        secrets.chmod(0o755)
        for name, content in (files or {}).items():
            (secrets / name).write_text(json.dumps(content))
            (secrets / name).chmod(0o644)
        entrypoint = self.config["Config"]["Entrypoint"]
        if self.root is None:
            command = [self.engine, "run", "--rm", "-i", "--network", "host", "--user", "1000:1000",
                       "-v", f"{secrets}:/secrets:ro", self.tag] + argv
        else:
            # /tmp of the image is the mount point of the secrets (the image's own files stay read-only).
            script = 'mount --bind "$1" "$2/tmp" && shift 2 && exec chroot --userspec=1000:1000 "$@"'
            argv = [a.replace("/secrets", "/tmp") for a in argv]
            command = ["unshare", "--mount", "sh", "-c", script, "sh", str(secrets), self.root, self.root] + entrypoint + argv
        proc = subprocess.run(command, input=stdin.encode(), capture_output=True, timeout=600)
        messages = [json.loads(line) for line in proc.stdout.decode().splitlines()]
        for message in messages:
            validate(message)
        return proc.returncode, messages


@pytest.fixture(scope="module")
def image():
    if not engine() and not shutil.which("apt-get"):
        pytest.skip("neither docker nor podman runs here, and podman cannot be installed (no apt-get)")
    built = Image()
    yield built
    if built.root:
        subprocess.run([built.engine, "image", "unmount", built.tag], capture_output=True)


def test_metadata_is_valid_and_replaces_the_java_connector():
    jsonschema.validate(METADATA, METADATA_SCHEMA)
    data = METADATA["data"]
    assert data["definitionId"] == "9f760101-60ae-462f-9ee6-b7a9dafd454d"
    assert (data["connectorType"], data["connectorSubtype"]) == ("destination", "message_queue")
    assert data["dockerImageTag"] == VERSION


def test_the_image_config(image):
    config = image.config["Config"]
    assert config["User"] == "1000:1000", "numeric, so runAsNonRoot can verify it"
    assert config["Entrypoint"] == ["/airbyte/bin/destination-kafka"]
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["AIRBYTE_ENTRYPOINT"] == " ".join(config["Entrypoint"])
    assert config["WorkingDir"] == "/airbyte"
    labels = config["Labels"]
    assert labels["io.airbyte.name"] == METADATA["data"]["dockerRepository"]
    assert labels["io.airbyte.version"] == METADATA["data"]["dockerImageTag"] == VERSION
    if image.root:
        binary = os.path.join(image.root, "airbyte/bin/destination-kafka")
        assert os.stat(binary).st_size < 30_000_000, "the shipped binary has no debug info"
        assert os.path.exists(os.path.join(image.root, "usr/bin/kinit")), "Kerberos with a keytab needs kinit"
        owner = os.stat(os.path.join(image.root, "airbyte"))
        assert (owner.st_uid, owner.st_gid) == (1000, 1000), "uid 1000 owns its work dir"


def test_spec_check_and_write_as_uid_1000(image, broker, tmp_path):
    assert image.user() == "1000:1000"
    code, messages = image.run(["spec"], tmp_path=tmp_path)
    assert code == 0 and [m["type"] for m in messages] == ["SPEC"]
    assert messages[0]["spec"]["documentationUrl"] == METADATA["data"]["documentationUrl"]

    config = java_acceptance_config(broker)
    code, messages = image.run(["check", "--config", "{secrets}/config.json"], files={"config.json": config}, tmp_path=tmp_path)
    assert code == 0 and messages[-1]["connectionStatus"]["status"] == "SUCCEEDED", messages

    catalog, lines = dataset("exchange_rate")
    code, messages = image.run(
        ["write", "--config", "{secrets}/config.json", "--catalog", "{secrets}/catalog.json"],
        stdin="\n".join(lines) + "\n",
        files={"config.json": config, "catalog.json": configured_catalog(catalog)},
        tmp_path=tmp_path,
    )
    assert code == 0, messages
    states = [m for m in messages if m["type"] == "STATE"]
    assert len(states) == sum(1 for l in lines if json.loads(l)["type"] == "STATE")
    records = [json.loads(l)["record"] for l in lines if json.loads(l)["type"] == "RECORD"]
    got = consume(broker.bootstrap, broker.topic("_exchange_rate_test_topic"), len(records))
    assert [v["_airbyte_data"] for _, _, v in got] == [r["data"] for r in records]
