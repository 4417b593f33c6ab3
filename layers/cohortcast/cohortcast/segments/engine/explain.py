"""Explain: the rule tree for one profile, each node with its value and what was measured."""

from datetime import datetime
from typing import Any

from cohortcast.profiles.model import ProfileView
from cohortcast.segments.engine.nodes import Node, Value


def explain(node: Node, profile: ProfileView, now: datetime, value: Value) -> dict[str, Any]:
    """`value(node)` is the node's answer from its generated source, the same one `matches` runs."""
    result = {
        "node": node.node.as_json(),
        "value": value(node),
        "detail": node.detail(profile, now),
        "children": [explain(child, profile, now, value) for child in node.children()],
    }
    if node.too_new(profile, now):
        result["too_new"] = True
    return result
