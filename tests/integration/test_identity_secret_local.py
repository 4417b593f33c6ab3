"""The local stack's identity secret: the one COHORTCAST_LOCAL_IDENTITY_SECRET gave (the
fixture's `stack.identity_secret`), stored in the emulated Secrets Manager, printed at start
and written to stack.json."""

import json

import boto3
import pytest

pytestmark = pytest.mark.integration


def test_the_identity_secret_given_is_stored_printed_and_written_to_stack_json(stack):
    given = stack.identity_secret
    assert json.loads((stack.data_dir / "stack.json").read_text())["identity_secret"] == given
    assert f"identity   {given}  " in (stack.data_dir / "stack.log").read_text()

    secretsmanager = boto3.client(
        "secretsmanager",
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stored = secretsmanager.get_secret_value(SecretId="IdentitySecret")["SecretString"]
    assert json.loads(stored) == {"current": given, "previous": None, "previous_valid_until": None}
