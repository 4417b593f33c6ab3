"""The environment is parsed once into Settings: empty template parameters mean "not set", and a
malformed value fails at cold start naming the variable, not at the first send."""

import pytest
from pydantic import ValidationError

from cohortcast.config import Settings

TABLES = {"PROFILES_TABLE": "p", "EVENTS_TABLE": "e", "DATA_TABLE": "d"}


def test_variables_are_matched_to_fields_in_any_case_and_unknown_ones_are_ignored() -> None:
    settings = Settings.from_environment({**TABLES, "email_queue_url": "q", "PATH": "/usr/bin"})
    assert (settings.profiles_table, settings.email_queue_url) == ("p", "q")


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("21:00-08:00", ("21:00", "08:00")), (" 22:30 - 07:15 ", ("22:30", "07:15")), ("", None), ("  ", None)],
)
def test_quiet_hours_are_a_start_end_pair_or_none(raw: str, parsed: tuple[str, str] | None) -> None:
    assert Settings.from_environment({**TABLES, "QUIET_HOURS": raw}).quiet_hours == parsed


@pytest.mark.parametrize(("raw", "parsed"), [("3/7d", (3, 7)), (" 10 / 30 d ", (10, 30)), ("", None)])
def test_the_frequency_cap_is_count_per_days_or_none(raw: str, parsed: tuple[int, int] | None) -> None:
    assert Settings.from_environment({**TABLES, "FREQUENCY_CAP": raw}).frequency_cap == parsed


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("QUIET_HOURS", "21:00", "QUIET_HOURS must look like 21:00-08:00"),
        ("FREQUENCY_CAP", "3 per week", "FREQUENCY_CAP must look like 3/7d"),
        ("EVENT_RETENTION_DAYS", "0", "greater than or equal to 1"),
        ("EVENT_RETENTION_DAYS", "ninety", "valid integer"),
    ],
)
def test_a_malformed_value_fails_naming_what_is_wrong(name: str, raw: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.from_environment({**TABLES, name: raw})


def test_empty_numbers_take_their_defaults_and_the_tables_are_required() -> None:
    settings = Settings.from_environment({**TABLES, "EVENT_RETENTION_DAYS": "", "SETTLE_MINUTES": ""})
    assert (settings.event_retention_days, settings.settle_minutes) == (90, None)
    with pytest.raises(ValidationError, match="data_table"):
        Settings.from_environment({"PROFILES_TABLE": "p", "EVENTS_TABLE": "e"})
