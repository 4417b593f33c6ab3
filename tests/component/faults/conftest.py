"""Fault-injection fixtures (tests/faults.py) next to the delivery pipeline's world and audience."""

from tests.component.delivery_pipeline.conftest import ses, world  # noqa: F401 (fixtures)
from tests.component.delivery_pipeline.test_crash_consistency import audience  # noqa: F401 (fixture)
from tests.faults import dynamodb_faults  # noqa: F401 (fixture)
