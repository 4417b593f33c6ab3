"""Announcements: model, audience snapshot, publish plan and fan-out (see docs/announcements.md)."""
