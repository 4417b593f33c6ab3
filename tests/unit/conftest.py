"""Unit tests run on a fixed clock: handlers and the logic under them see TEST_NOW unless a test moves it."""

import pytest


@pytest.fixture(autouse=True)
def fixed_clock(clock):
    return clock
