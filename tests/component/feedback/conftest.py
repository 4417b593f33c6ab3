"""The delivery pipeline's fixtures (moto, stand-in ports): feedback tests send real emails first."""

from tests.component.delivery_pipeline.conftest import ses, world  # noqa: F401
