"""`cohortcast keys identity-secret`: prints the current secret; `--rotate` makes a new one and
prints the previous with the end of its grace."""

from datetime import timedelta

import pytest

from cohortcast.auth.identity import user_hash, verify_user_hash
from cohortcast.clock import isoformat
from cohortcast_cli.main import main
from tests.conftest import TEST_NOW


def _printed(capsys) -> dict[str, str]:
    """{"current": secret, "previous": "secret  (accepted until ...)"} from the output's labelled lines."""
    lines = capsys.readouterr().out.splitlines()
    return dict(line.split(maxsplit=1) for line in lines if line.startswith(("current ", "previous ")))


def test_it_prints_the_current_secret_which_signs_valid_user_hashes(aws, capsys):
    assert main(["keys", "identity-secret", "--secret", aws.refs["IdentitySecret"]]) == 0
    printed = _printed(capsys)

    assert set(printed) == {"current"}
    assert verify_user_hash("ada", user_hash(printed["current"], "ada"), TEST_NOW)


def test_rotate_prints_the_new_secret_and_the_previous_with_the_end_of_its_grace(aws, capsys):
    secret = aws.refs["IdentitySecret"]
    assert main(["keys", "identity-secret", "--secret", secret]) == 0
    old = _printed(capsys)["current"]

    assert main(["keys", "identity-secret", "--secret", secret, "--rotate", "--grace-days", "3"]) == 0
    printed = _printed(capsys)
    grace_end = TEST_NOW + timedelta(days=3)

    assert printed["previous"] == f"{old}  (accepted until {isoformat(grace_end)})"
    assert printed["current"] != old
    assert verify_user_hash("ada", user_hash(old, "ada"), grace_end - timedelta(seconds=1))
    assert not verify_user_hash("ada", user_hash(old, "ada"), grace_end)
    assert verify_user_hash("ada", user_hash(printed["current"], "ada"), grace_end)


def test_without_a_secret_or_with_a_negative_grace_it_is_refused(aws, monkeypatch):
    secret = aws.refs["IdentitySecret"]
    with pytest.raises(SystemExit) as refused:
        main(["keys", "identity-secret", "--secret", secret, "--rotate", "--grace-days", "-1"])
    assert refused.value.code == 2
    monkeypatch.delenv("IDENTITY_SECRET_ARN")
    assert main(["keys", "identity-secret"]) == 2
