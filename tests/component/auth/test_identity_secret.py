"""The identity secret in Secrets Manager: the template's generated value, the container's
cache, and a rotation that keeps the previous key valid for its grace only."""

import json
from datetime import timedelta

import boto3
import pytest

from cohortcast.auth import identity
from cohortcast.auth.identity import (
    IDENTITY_SECRET_CACHE_SECONDS,
    identity_secrets,
    rotate_identity_secret,
    user_hash,
    verify_user_hash,
)
from tests.conftest import TEST_NOW


def _stored(aws) -> dict:
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=aws.refs["IdentitySecret"])
    return json.loads(secret["SecretString"])


def test_the_templates_generated_secret_is_read_and_verifies_hashes(aws):
    stored = _stored(aws)
    assert set(stored) == {"current", "previous", "previous_valid_until"}
    assert len(stored["current"]) == 64 and stored["previous"] is None

    assert identity_secrets().current == stored["current"]
    assert verify_user_hash("ada", user_hash(stored["current"], "ada"), TEST_NOW)
    assert not verify_user_hash("ada", user_hash(stored["current"], "grace"), TEST_NOW)


def test_a_secret_changed_in_secrets_manager_is_seen_once_the_cache_expires(aws, monkeypatch):
    monotonic = [1000.0]
    monkeypatch.setattr(identity._cache, "clock", lambda: monotonic[0])
    identity._cache.clear()
    before = identity_secrets().current
    boto3.client("secretsmanager").put_secret_value(
        SecretId=aws.refs["IdentitySecret"], SecretString=json.dumps({"current": "changed by hand"})
    )

    monotonic[0] += IDENTITY_SECRET_CACHE_SECONDS - 1
    assert identity_secrets().current == before
    monotonic[0] += 1
    assert identity_secrets().current == "changed by hand"


def test_after_a_rotation_both_keys_verify_during_the_grace_and_only_the_new_one_after(aws):
    old = identity_secrets().current
    new = rotate_identity_secret(TEST_NOW, grace_days=7)
    grace_end = TEST_NOW + timedelta(days=7)

    assert new != old and len(new) == 64
    assert _stored(aws) == {
        "current": new,
        "previous": old,
        "previous_valid_until": "2026-12-01T09:00:00.000Z",
    }
    for moment in (TEST_NOW, grace_end - timedelta(seconds=1)):
        assert verify_user_hash("ada", user_hash(old, "ada"), moment), moment
        assert verify_user_hash("ada", user_hash(new, "ada"), moment), moment
    assert not verify_user_hash("ada", user_hash(old, "ada"), grace_end)
    assert verify_user_hash("ada", user_hash(new, "ada"), grace_end)


def test_a_second_rotation_keeps_only_the_key_it_replaced(aws):
    first = identity_secrets().current
    second = rotate_identity_secret(TEST_NOW)
    third = rotate_identity_secret(TEST_NOW + timedelta(days=1))

    assert _stored(aws)["previous"] == second
    assert not verify_user_hash("ada", user_hash(first, "ada"), TEST_NOW + timedelta(days=1))
    assert verify_user_hash("ada", user_hash(third, "ada"), TEST_NOW + timedelta(days=1))


def test_a_negative_grace_is_refused_and_nothing_is_written(aws):
    before = _stored(aws)
    with pytest.raises(ValueError, match="grace_days"):
        rotate_identity_secret(TEST_NOW, grace_days=-1)
    assert _stored(aws) == before
