"""Shared fixtures: AWS emulated in-process (moto) with the resources template.yaml declares."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import boto3
import pytest
import time_machine
from moto import mock_aws

from local import FAKE_AWS_ENV
from local.lambda_context import LambdaContext
from local.provision import provision
from local.template import Resources, all_function_environments, load_template, union_environment

# The moment every test that drives a handler sees, unless it moves the clock itself.
TEST_NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

# `make test` runs the unit suite again with the wall clock this many days ahead
# (COHORTCAST_TEST_WALL_CLOCK_SHIFT_DAYS), so a test that only passes on the day it was
# written fails the build instead of a fresh clone a day later.
_WALL_CLOCK_SHIFT = timedelta(days=float(os.environ.get("COHORTCAST_TEST_WALL_CLOCK_SHIFT_DAYS", "0")))


@pytest.fixture(autouse=True, scope="session")
def shifted_wall_clock() -> Iterator[None]:
    if not _WALL_CLOCK_SHIFT:
        yield
        return
    with time_machine.travel(datetime.now(UTC) + _WALL_CLOCK_SHIFT, tick=True):
        yield


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """The clock handlers see, fixed at TEST_NOW; `clock.move_to(moment)`, `clock.shift(delta)`."""
    with time_machine.travel(TEST_NOW, tick=False) as traveller:
        yield traveller


@cache
def template() -> dict[str, Any]:
    """template.yaml, parsed once per test session."""
    return load_template()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Resources]:
    """moto with every table/queue/topic of template.yaml, and the functions' env vars set.

    Yields the Resources: `aws.name("ProfilesTable")`, `aws.url("SomeQueue")`, `aws.arn(...)`.
    """
    from cohortcast.storage import aws as storage
    from cohortcast.workspace import service as workspace

    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # a local-stack endpoint would bypass moto
    storage.reset()
    workspace.reset_cache()  # settings another test stored are not this one's
    with mock_aws():
        resources = provision(template(), boto3.Session())
        for name, value in union_environment(all_function_environments(template(), resources)).items():
            monkeypatch.setenv(name, value)
        yield resources
    storage.reset()
    workspace.reset_cache()


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext(function_name="test-function", memory_limit_in_mb=512)
