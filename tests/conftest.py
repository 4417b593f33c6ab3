"""Shared fixtures: AWS emulated in-process (moto) with the resources template.yaml declares."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import FAKE_AWS_ENV
from local.lambda_context import LambdaContext
from local.provision import provision
from local.template import Resources, all_function_environments, load_template, union_environment


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

    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # a local-stack endpoint would bypass moto
    storage.reset()
    with mock_aws():
        resources = provision(template(), boto3.Session())
        for name, value in union_environment(all_function_environments(template(), resources)).items():
            monkeypatch.setenv(name, value)
        yield resources
    storage.reset()


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext(function_name="test-function", memory_limit_in_mb=512)
