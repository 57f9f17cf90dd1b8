"""The image can't be built here (no Docker engine), so what can be checked is checked: the Dockerfile, metadata.yaml
and the binary agree with each other, and the image copies the very binary this suite ran."""

import json
import pathlib
import re
import tomllib

import jsonschema
import yaml

from conftest import BIN, REPO, run

DOCKERFILE = (REPO / "Dockerfile").read_text()
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


def instruction(name):
    return [line.split(None, 1)[1].strip() for line in DOCKERFILE.splitlines() if line.startswith(name + " ")]


def runtime_stage():
    return DOCKERFILE.split("\nFROM ")[-1]


def test_metadata_is_valid_and_replaces_the_java_connector():
    jsonschema.validate(METADATA, METADATA_SCHEMA)
    data = METADATA["data"]
    assert data["definitionId"] == "9f760101-60ae-462f-9ee6-b7a9dafd454d"
    assert (data["connectorType"], data["connectorSubtype"]) == ("destination", "message_queue")
    assert data["dockerImageTag"] == VERSION
    spec = run(["spec"]).messages[0]["spec"]
    assert spec["documentationUrl"] == data["documentationUrl"]


def test_entrypoint_and_airbyte_entrypoint_agree():
    (entrypoint,) = instruction("ENTRYPOINT")
    argv = json.loads(entrypoint)
    assert argv and all(isinstance(a, str) for a in argv)
    assert argv[0].startswith("/"), "absolute entrypoint"
    env = dict(re.findall(r'(\w+)="([^"]*)"', " ".join(instruction("ENV"))))
    assert env["AIRBYTE_ENTRYPOINT"].strip(), "non-blank AIRBYTE_ENTRYPOINT"
    assert env["AIRBYTE_ENTRYPOINT"] == " ".join(argv)


def test_runs_as_airbyte_owning_a_writable_workdir():
    stage = runtime_stage()
    assert instruction("USER")[-1] == "airbyte"
    assert re.search(r"useradd --uid 1000 .*--home-dir /airbyte --create-home airbyte", stage)
    assert instruction("WORKDIR")[-1] == "/airbyte"


def test_labels_match_metadata():
    labels = dict(re.findall(r'([\w.]+)="([^"]*)"', " ".join(instruction("LABEL"))))
    assert labels["io.airbyte.name"] == METADATA["data"]["dockerRepository"]
    assert labels["io.airbyte.version"] == METADATA["data"]["dockerImageTag"]


def test_the_image_copies_the_binary_this_suite_ran():
    (copy,) = [c for c in instruction("COPY") if c.startswith("--from=build")]
    source, target = copy.split()[1:]
    (entrypoint,) = instruction("ENTRYPOINT")
    assert target == json.loads(entrypoint)[0]
    # The build stage builds in /src with the release profile; the suite ran REPO/target/release/... .
    assert source == "/src/target/release/destination-kafka"
    assert "cargo build --release --locked" in DOCKERFILE
    assert pathlib.Path(BIN).parts[-2:] == ("release", "destination-kafka"), BIN
