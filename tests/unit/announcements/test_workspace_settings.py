"""Workspace settings: template defaults from env, overridden with PUT /v1/settings."""

import pytest

from cohortcast import workspace


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
    assert settings.frequency_cap == workspace.FrequencyCap(count=3, days=7)
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
