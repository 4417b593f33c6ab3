"""The delivery pipeline's fixtures (moto, stand-in ports): feedback tests send real emails first."""

from tests.unit.delivery_pipeline.conftest import ses, world  # noqa: F401
