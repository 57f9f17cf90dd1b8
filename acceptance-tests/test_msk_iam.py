"""MSK IAM tokens against an independent implementation: AWS's own signer (aws-msk-iam-sasl-signer-python, on
botocore) makes the tokens of tests/fixtures/msk-iam-tokens.json again, for the same credentials, region and clock.
The Rust unit test (src/kafka/msk_iam.rs) checks the connector's tokens equal the same file, so both agree.
No MSK exists here: what a real MSK broker accepts is not tested.

`python acceptance-tests/test_msk_iam.py` rewrites the file from the signer."""

import base64
import datetime
import json
import pathlib
import sys
from unittest import mock

import botocore.auth
from botocore.credentials import CredentialProvider, Credentials
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

FIXTURE = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "msk-iam-tokens.json"
KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
INPUTS = [
    {"name": "static keys", "access_key_id": KEY, "secret_access_key": SECRET, "session_token": None,
     "region": "us-east-1", "epoch_seconds": 1704067200},
    {"name": "temporary credentials", "access_key_id": KEY, "secret_access_key": SECRET,
     "session_token": "IQoJb3JpZ2luX2VjEXAMPLE/+=TOKEN", "region": "us-east-1", "epoch_seconds": 1704067200},
    {"name": "another region and time", "access_key_id": "ASIAEXAMPLE2", "secret_access_key": "s3cr3t+/=key",
     "session_token": "tok en/1", "region": "eu-west-3", "epoch_seconds": 1735689599},
]
USER_AGENT = "destination-kafka/test"


class Fixed(CredentialProvider):
    METHOD = "fixed"

    def __init__(self, case):
        super().__init__()
        self.credentials = Credentials(case["access_key_id"], case["secret_access_key"], case["session_token"])

    def load(self):
        return self.credentials


def aws_signer(case):
    """AWS's signer with the clock and the (unsigned) User-Agent fixed."""
    now = datetime.datetime.fromtimestamp(case["epoch_seconds"], datetime.timezone.utc).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: now), \
            mock.patch.object(MSKAuthTokenProvider, "__get_user_agent__", lambda: USER_AGENT):
        return MSKAuthTokenProvider.generate_auth_token_from_credentials_provider(case["region"], Fixed(case))


def test_the_fixture_is_what_aws_signer_makes():
    cases = json.loads(FIXTURE.read_text())["cases"]
    assert [c["name"] for c in cases] == [c["name"] for c in INPUTS]
    for case in cases:
        token, expires_ms = aws_signer(case)
        assert (case["token"], case["expires_ms"]) == (token, expires_ms), case["name"]
        url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        assert url.startswith(f"https://kafka.{case['region']}.amazonaws.com/?Action=kafka-cluster%3AConnect&")


if __name__ == "__main__":
    cases = []
    for case in INPUTS:
        token, expires_ms = aws_signer(case)
        cases.append(dict(case, user_agent=USER_AGENT, token=token, expires_ms=expires_ms))
    FIXTURE.write_text(json.dumps({"made_by": "acceptance-tests/test_msk_iam.py (aws-msk-iam-sasl-signer-python 1.0.2)",
                                   "cases": cases}, indent=2) + "\n")
    print(f"wrote {FIXTURE}", file=sys.stderr)
