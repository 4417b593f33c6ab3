"""Workspace settings: template defaults from env, overridden with PUT /v1/settings."""

from datetime import datetime

import boto3
import pytest

from cohortcast.clock import isoformat
from cohortcast.segments.sweep import snapshot_sizes
from cohortcast.storage import keys
from cohortcast.workspace import service as workspace
from cohortcast.workspace.model import FrequencyCap
from tests.component.announcements.conftest import NOW, api_event


@pytest.fixture(autouse=True)
def fresh_cache():
    workspace.reset_cache()
    yield
    workspace.reset_cache()


def test_defaults_come_from_the_template_parameters(aws, monkeypatch):
    monkeypatch.setenv("SENDER_ADDRESS", "Acme <news@acme.test>")
    monkeypatch.setenv("QUIET_HOURS", "21:00-08:00")
    monkeypatch.setenv("FREQUENCY_CAP", "3/7d")
    monkeypatch.setenv("DEFAULT_TIMEZONE", "Europe/Berlin")
    settings = workspace.get_workspace_settings()
    assert settings.sender == "Acme <news@acme.test>"
    assert settings.quiet_hours == ("21:00", "08:00")
    assert settings.frequency_cap == FrequencyCap(count=3, days=7)
    assert settings.default_timezone == "Europe/Berlin"
    assert settings.settle_minutes == 15


def test_empty_parameters_turn_options_off(aws, monkeypatch):
    monkeypatch.setenv("QUIET_HOURS", "")
    monkeypatch.setenv("FREQUENCY_CAP", "")
    settings = workspace.get_workspace_settings()
    assert settings.quiet_hours is None and settings.frequency_cap is None


def test_put_overrides_and_get_shows_them(api):
    status, body = api(
        "PUT",
        "/v1/settings",
        {"default_timezone": "America/New_York", "quiet_hours": ["22:00", "07:30"], "frequency_cap": None},
    )
    assert status == 200
    assert body["default_timezone"] == "America/New_York"
    status, shown = api("GET", "/v1/settings")
    assert shown["quiet_hours"] == ["22:00", "07:30"]
    assert shown["frequency_cap"] is None
    assert workspace.get_workspace_settings().default_timezone == "America/New_York"


@pytest.mark.parametrize(
    "change",
    [
        {"default_timezone": "Mars/Olympus"},
        {"quiet_hours": ["25:00", "08:00"]},
        {"frequency_cap": {"count": 0, "days": 7}},
        {"sender": "no address"},
        {"unknown": 1},
    ],
)
def test_bad_settings_are_rejected(api, change):
    status, body = api("PUT", "/v1/settings", change)
    assert status == 422, body


def test_settings_are_cached_per_container(aws, monkeypatch):
    from cohortcast.storage import workspace as store

    workspace.get_workspace_settings()
    monkeypatch.setattr(store, "get_overrides", lambda: pytest.fail("read again within the cache window"))
    workspace.get_workspace_settings()


# -- one retention: PUT /v1/settings retention_days is what everything that expires uses ------

RETENTION_DAYS = 30


def _expiry_days(expires_at: int, moment: datetime) -> float:
    return (expires_at - moment.timestamp()) / 86400


@pytest.fixture
def retention(api):
    status, body = api("PUT", "/v1/settings", {"retention_days": RETENTION_DAYS})
    assert (status, body["retention_days"]) == (200, RETENTION_DAYS)
    return RETENTION_DAYS


def test_raw_events_stored_after_a_retention_change_expire_after_it(aws, retention, lambda_context):
    from functions.ingest import app as ingest_app

    event = api_event("POST", "/v1/track", {"userId": "u1", "event": "login", "timestamp": isoformat(NOW)})
    event["requestContext"]["authorizer"]["lambda"]["scope"] = "write"
    assert ingest_app.lambda_handler(event, lambda_context)["statusCode"] == 200

    (stored,) = boto3.resource("dynamodb").Table(aws.name("EventsTable")).scan()["Items"]
    assert _expiry_days(int(stored["expires_at"]), NOW) == RETENTION_DAYS


def test_transitions_and_size_history_recorded_after_a_retention_change_expire_after_it(aws, api, retention):
    status, segment = api("POST", "/v1/segments", {"name": "beta", "members": ["u1", "u2"]})
    assert status == 201, segment
    snapshot_sizes(NOW)

    items = boto3.resource("dynamodb").Table(aws.name("DataTable")).scan()["Items"]
    transitions = [i for i in items if i["pk"] == keys.segment_transitions_pk(segment["segment_id"])]
    pointers = [i for i in items if "transition_pk" in i]
    (size,) = [i for i in items if i["pk"] == keys.segment_size_pk(segment["segment_id"])]
    assert len(transitions) == len(pointers) == 2
    for item in [*transitions, *pointers, size]:
        assert _expiry_days(int(item["expires_at"]), NOW) == RETENTION_DAYS


def test_event_windows_beyond_the_retention_put_in_settings_are_rejected(api, retention):
    rule = {"event": "login", "count": {"gte": 1}, "within": f"{RETENTION_DAYS + 1}d"}
    status, body = api("POST", "/v1/segments", {"name": "long window", "rule": rule})
    assert status == 422, body
    assert f"{RETENTION_DAYS}-day" in body["error"]["message"]

    rule["within"] = f"{RETENTION_DAYS}d"
    status, body = api("POST", "/v1/segments", {"name": "within retention", "rule": rule})
    assert status == 202, body  # accepted, its backfill queued


def test_lowering_retention_below_a_segments_window_is_refused_naming_the_segment(api):
    """Given a segment counting logins over 60 days, when retention_days is lowered to 30, then
    the change is a 422 naming that segment and nothing is stored; 60 days is still accepted."""
    rule = {"event": "login", "count": {"gte": 1}, "within": "60d"}
    status, segment = api("POST", "/v1/segments", {"name": "60-day logins", "rule": rule})
    assert status == 202, segment

    status, body = api("PUT", "/v1/settings", {"retention_days": 30})
    assert status == 422, body
    assert body["error"]["details"][0]["segment_id"] == segment["segment_id"]
    assert body["error"]["details"][0]["pointer"] == "/retention_days"
    assert api("GET", "/v1/settings")[1]["retention_days"] == 90

    status, body = api("PUT", "/v1/settings", {"retention_days": 60})
    assert status == 200 and body["retention_days"] == 60
