"""Component tests drive handlers and storage against moto in-process (the `aws` fixture of
tests/conftest.py), on a fixed clock: they see TEST_NOW unless a test moves it."""

import pytest


@pytest.fixture(autouse=True)
def fixed_clock(clock):
    return clock
