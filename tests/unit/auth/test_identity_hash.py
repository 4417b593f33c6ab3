"""User hashes of the in-app feed: hex HMAC-SHA256 of the userId, checked against the current
identity key and, during a rotation's grace, the previous one."""

import hashlib
import hmac
from datetime import timedelta

import pytest
from pydantic import ValidationError

from cohortcast.auth.identity import IdentitySecrets, user_hash, verify_user_hash
from tests.conftest import TEST_NOW

CURRENT = "k3y-not-hex: any non-empty string works"
PREVIOUS = "0ld" * 20
GRACE_END = TEST_NOW + timedelta(days=7)
ONLY_CURRENT = IdentitySecrets(current=CURRENT)
ROTATED = IdentitySecrets(current=CURRENT, previous=PREVIOUS, previous_valid_until=GRACE_END)


@pytest.mark.parametrize("user_id", ["ada", "zoë/ünïcode", ""])
def test_the_hash_is_lower_hex_hmac_sha256_of_the_utf8_user_id(user_id):
    expected = hmac.new(CURRENT.encode(), user_id.encode("utf-8"), hashlib.sha256).hexdigest()
    assert user_hash(CURRENT, user_id) == expected
    assert len(expected) == 64 and expected == expected.lower()


def test_the_current_keys_hash_verifies_in_any_case():
    given = user_hash(CURRENT, "ada")
    assert verify_user_hash("ada", given, TEST_NOW, ONLY_CURRENT)
    assert verify_user_hash("ada", given.upper(), TEST_NOW, ONLY_CURRENT)


def test_a_hash_of_another_user_or_another_key_is_refused():
    assert not verify_user_hash("grace", user_hash(CURRENT, "ada"), TEST_NOW, ONLY_CURRENT)
    assert not verify_user_hash("ada", user_hash("some other key", "ada"), TEST_NOW, ONLY_CURRENT)


@pytest.mark.parametrize(
    "given",
    [
        None,
        "",
        "not hex at all",
        "zz" * 32,
        "é" * 64,
        user_hash(CURRENT, "ada")[:-1],
        user_hash(CURRENT, "ada") + "0",
    ],
)
def test_a_missing_or_malformed_hash_is_refused(given):
    assert not verify_user_hash("ada", given, TEST_NOW, ONLY_CURRENT)


def test_the_previous_key_verifies_until_its_grace_ends_and_the_current_one_throughout():
    old, new = user_hash(PREVIOUS, "ada"), user_hash(CURRENT, "ada")
    assert verify_user_hash("ada", old, GRACE_END - timedelta(seconds=1), ROTATED)
    assert not verify_user_hash("ada", old, GRACE_END, ROTATED)
    assert not verify_user_hash("ada", old, GRACE_END + timedelta(days=30), ROTATED)
    assert verify_user_hash("ada", new, TEST_NOW, ROTATED)
    assert verify_user_hash("ada", new, GRACE_END + timedelta(days=30), ROTATED)


def test_a_previous_key_without_an_end_is_not_accepted():
    no_end = IdentitySecrets(current=CURRENT, previous=PREVIOUS)
    assert not verify_user_hash("ada", user_hash(PREVIOUS, "ada"), TEST_NOW, no_end)


def test_the_secret_json_round_trips_with_a_utc_timestamp_and_needs_a_current_key():
    stored = ROTATED.model_dump_json()
    assert '"previous_valid_until":"2026-12-01T09:00:00.000Z"' in stored
    assert IdentitySecrets.model_validate_json(stored) == ROTATED
    with pytest.raises(ValidationError):
        IdentitySecrets.model_validate_json('{"current": "", "previous": null, "previous_valid_until": null}')
