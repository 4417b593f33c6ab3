"""storage.secrets: a secret's current and previous values, a new version, an SSM parameter."""

import boto3

from cohortcast.storage import secrets


def test_a_new_version_becomes_current_and_the_one_it_replaced_previous(aws):
    secret_id = aws.refs["UnsubscribeSecret"]
    generated = secrets.secret_string(secret_id)
    assert secrets.previous_secret_string(secret_id) is None

    secrets.put_secret_string(secret_id, "rotated")

    assert secrets.secret_string(secret_id) == "rotated"
    assert secrets.previous_secret_string(secret_id) == generated


def test_a_secure_string_parameter_is_read_decrypted(aws):
    boto3.client("ssm").put_parameter(Name="/cohortcast/test", Value="s3cret", Type="SecureString")
    assert secrets.parameter_value("/cohortcast/test") == "s3cret"
