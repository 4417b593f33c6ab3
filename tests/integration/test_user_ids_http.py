"""User ids that need URL encoding, through real HTTP on the local stack: every admin route that
takes a userId in its path finds the user the ingest stored, decoding the id exactly once."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.integration

# Each needs encoding in a path: non-ASCII, a path separator, URL syntax, a space, a control character.
AWKWARD_IDS = ["zoë", "a/b", "a#b", "a b", "a?b", "a%2Fb", "bell\x07tab\there"]


def _ingest(stack, batch: list[dict]) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(f"{stack.write_key}:".encode()).decode()}
    response = stack.http.post("/v1/batch", json={"batch": batch}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == []


def _path(user_id: str) -> str:
    return quote(user_id, safe="")


@pytest.mark.parametrize("stem", AWKWARD_IDS, ids=ascii)
def test_user_id_needing_url_encoding_is_readable_explainable_and_erasable(stack, stem):
    tag = uuid.uuid4().hex[:8]
    user = f"{stem}-{tag}"
    _ingest(
        stack,
        [
            {"type": "identify", "userId": user, "traits": {"cohort": tag}},
            {"type": "track", "userId": user, "event": "login"},
        ],
    )
    stack.drain()

    profile = stack.admin.get(f"/v1/users/{_path(user)}")
    assert profile.status_code == 200, profile.text
    assert profile.json()["user_id"] == user and profile.json()["traits"] == {"cohort": tag}

    events = stack.admin.get(f"/v1/users/{_path(user)}/events")
    assert events.status_code == 200, events.text
    assert sorted(e["type"] for e in events.json()["events"]) == ["identify", "track"]

    created = stack.admin.post(
        "/v1/segments", json={"name": f"ids-{tag}", "rule": {"trait": "cohort", "op": "eq", "value": tag}}
    )
    assert created.status_code == 202, created.text
    segment_id = created.json()["segment_id"]
    stack.drain()
    explained = stack.admin.get(f"/v1/segments/{segment_id}/explain/{_path(user)}")
    assert explained.status_code == 200, explained.text
    assert explained.json()["member"] is True

    erased = stack.admin.delete(f"/v1/users/{_path(user)}")
    assert erased.status_code == 200, erased.text
    assert erased.json()["user_id"] == user and erased.json()["erased"]["events"] == 2
    assert stack.admin.get(f"/v1/users/{_path(user)}").status_code == 404


def test_the_decoded_id_is_not_decoded_again(stack):
    # "%41" sent encoded once ("%2541") is the user "%41", never "A".
    tag = uuid.uuid4().hex[:8]
    literal, lookalike = f"%41-{tag}", f"A-{tag}"
    _ingest(stack, [{"type": "identify", "userId": literal, "traits": {"which": "literal"}}])
    _ingest(stack, [{"type": "identify", "userId": lookalike, "traits": {"which": "lookalike"}}])
    shown = stack.admin.get(f"/v1/users/{_path(literal)}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["traits"] == {"which": "literal"}


def test_an_id_with_an_unpaired_surrogate_is_rejected_alone(stack):
    # JSON may escape half a UTF-16 pair; no key or URL can hold it, so that item alone is refused.
    good = f"ok-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": "Basic " + base64.b64encode(f"{stack.write_key}:".encode()).decode()}
    body = (
        '{"batch": [{"type": "track", "userId": "x\\ud800y", "event": "login"},'
        f' {{"type": "track", "userId": "{good}", "event": "login"}}]}}'
    )
    response = stack.http.post(
        "/v1/batch", content=body, headers={**auth, "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert [(r["index"], r["code"], r["field"]) for r in response.json()["rejected"]] == [
        (0, "invalid_field", "userId")
    ]
    assert stack.admin.get(f"/v1/users/{good}").status_code == 200
