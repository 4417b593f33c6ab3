"""Delivery: rendering, MIME, unsubscribe tokens and the preferences page (more to come: ledger, policy).

Submodules are imported directly (`from cohortcast.delivery.render import ...`) so that a function
needing only tokens does not pay for Markdown, Jinja and nh3 at cold start.
"""
