"""Workspace settings: template defaults (environment) under the run-time overrides of `PUT /v1/settings`."""
