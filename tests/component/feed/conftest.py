"""Fixtures for the in-app feed: published in-app announcements, users with segments, and the
feed function called the way API Gateway calls it (write key + user hash)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import pytest

from tests.component.announcements import conftest as announcement_fixtures
from tests.component.announcements.conftest import NOW, api_event

# the admin API, segments and profiles fixtures of the announcements tests
api = announcement_fixtures.api
segments = announcement_fixtures.segments
profiles = announcement_fixtures.profiles


@pytest.fixture(autouse=True)
def clock(clock):
    """The suite's clock (a time-machine traveller), at the announcements' NOW."""
    clock.move_to(NOW)
    return clock


@pytest.fixture
def write_key(aws) -> str:
    from cohortcast.auth.keys import create_key

    plaintext, _ = create_key("write", "feed tests", NOW)
    return plaintext


@pytest.fixture
def user_hash(aws):
    from cohortcast.auth.identity import identity_secrets
    from cohortcast.auth.identity import user_hash as sign

    def make(user_id: str) -> str:
        return sign(identity_secrets().current, user_id)

    return make


@pytest.fixture
def publish(api, aws):
    """publish({...announcement}) → id: created through the admin API and published (page 0 run)."""
    from cohortcast.announcements.publish import run_page
    from cohortcast.clock import utcnow
    from cohortcast.feed import service
    from cohortcast.messages import PageTask
    from tests.component.announcements.conftest import publish_messages

    service.clear_caches()

    def make(body: dict[str, Any], now: datetime | None = None) -> str:
        status, created = api("POST", "/v1/announcements", {"body": "Hello", "channels": ["in_app"], **body})
        assert status == 201, created
        for task in publish_messages(aws):
            run_page(PageTask.model_validate(task), now or utcnow())
        return created["id"]

    return make


@pytest.fixture
def feed(aws, lambda_context, write_key, user_hash):
    """feed("GET", "/v1/feed", user="ada") → (status, json, headers) through the feed function."""
    from functions.feed import app as feed_app

    def call(
        method: str,
        path: str,
        *,
        user: str,
        body: dict[str, Any] | None = None,
        query: str = "",
        hash_for: str | None = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        credentials = base64.b64encode(f"{write_key if key is None else key}:".encode()).decode()
        all_headers = {
            "authorization": f"Basic {credentials}",
            "x-cohortcast-user-hash": user_hash(hash_for or user),
            **(headers or {}),
        }
        if method == "GET":
            query = "&".join(filter(None, [f"userId={user}", query]))
        else:
            body = {"userId": user, **(body or {})}
        event = api_event(method, path, body, query=query, headers=all_headers)
        event["requestContext"].pop("authorizer")  # the feed routes have no authorizer
        response = feed_app.lambda_handler(event, lambda_context)
        payload = json.loads(response["body"]) if response.get("body") else None
        return response["statusCode"], payload, response.get("headers") or {}

    return call
