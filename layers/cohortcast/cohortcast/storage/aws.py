"""AWS clients, built lazily and cached per process (never at import time)."""

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from cohortcast.config import get_settings  # reset() clears its cache too

_CLIENT_CONFIG = Config(retries={"max_attempts": 5, "mode": "adaptive"})


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CLIENT_CONFIG)


@cache
def dynamodb() -> Any:
    return boto3.resource("dynamodb", config=_CLIENT_CONFIG)


def ses_client() -> Any:
    return _ses()


@cache
def _ses() -> Any:
    # Retries are the sender's (delivery.email): botocore's would retry throttling again inside each.
    return boto3.client("sesv2", config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def table(name: str) -> Any:
    return dynamodb().Table(name)


def reset() -> None:
    """Forget cached clients (tests switch endpoints and settings between cases)."""
    client.cache_clear()
    dynamodb.cache_clear()
    _ses.cache_clear()
    get_settings.cache_clear()
