"""Workspace settings routes (admin): `GET/PUT /v1/settings`."""

from aws_lambda_powertools.event_handler.api_gateway import Router

from cohortcast.clock import isoformat, utcnow
from cohortcast.services.settings import change_settings
from cohortcast.workspace.model import SettingsUpdate, WorkspaceSettings
from cohortcast.workspace.service import get_workspace_settings, reset_cache

router = Router()


@router.get("/v1/settings", summary="The workspace's effective settings", tags=["settings"])
def get_settings() -> WorkspaceSettings:
    reset_cache()  # the API shows what is stored now, not this container's cached copy
    return get_workspace_settings()


@router.put(
    "/v1/settings",
    summary="Change workspace settings (fields given replace the current ones; null turns an option off)",
    tags=["settings"],
)
def put_settings(body: SettingsUpdate) -> WorkspaceSettings:
    return change_settings(body, updated_at=isoformat(utcnow()))
