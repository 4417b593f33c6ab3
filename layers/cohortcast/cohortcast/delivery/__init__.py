"""Delivery: the fan-out chunk pipeline, its ledger and policy, the channels, MIME, unsubscribe tokens.

Submodules are imported directly (`from cohortcast.delivery.mime import ...`) so that a function
needing only tokens does not pay for Markdown, Jinja and nh3 (`announcements.render`) at cold start.
"""
