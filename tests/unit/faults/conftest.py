"""Fault-injection fixtures (tests/faults.py) next to the delivery pipeline's world."""

from tests.faults import dynamodb_faults  # noqa: F401 (fixture)
from tests.unit.delivery_pipeline.conftest import ses, world  # noqa: F401 (fixtures)
