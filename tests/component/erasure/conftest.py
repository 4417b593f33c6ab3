"""The delivery pipeline's world (stand-in announcement and settings, moto SES) for erasure tests."""

from tests.component.delivery_pipeline.conftest import ses, world  # noqa: F401 (fixtures)
