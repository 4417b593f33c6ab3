"""Segment HTTP Tracking API: payload limits, message validation, storage into profiles."""
