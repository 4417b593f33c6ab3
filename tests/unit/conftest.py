"""Unit tests are pure: logic on typed inputs and `now`, no moto, no sockets (pytest-socket).
They run on a fixed clock: anything that reads it sees TEST_NOW unless a test moves it."""

import pytest


@pytest.fixture(autouse=True)
def fixed_clock(clock):
    return clock


@pytest.fixture(autouse=True)
def no_sockets(socket_disabled):
    """A unit test that reaches for the network is a component or integration test."""


@pytest.fixture
def aws():
    pytest.fail("tests/unit is pure: a test against moto belongs in tests/component")
