"""`make demo`: a small product's users, three segments and an announcement, on the running local stack.

Start the stack first (`make run`, which writes .local/stack.json), then `make demo`.
Everything goes through the public HTTP API, the way a product would use it.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

USERS = 60
FEATURES = [f"feature.{name}" for name in ("export", "share", "filter", "alerts", "api", "sso")]
SEGMENTS = [("power_users", {}), ("at_risk", {}), ("engaged_reporters", {})]


def _connection() -> dict[str, str]:
    data_dir = Path(os.environ.get("COHORTCAST_LOCAL_DATA_DIR", ".local"))
    try:
        return json.loads((data_dir / "stack.json").read_text())
    except FileNotFoundError:
        sys.exit("no running local stack found: start it with `make run` in another terminal")


def _history(rng: random.Random, user: str, kind: str, now: datetime) -> list[dict[str, Any]]:
    """30 days of events for one user of the given kind (power, casual, lapsed)."""
    events: list[dict[str, Any]] = []
    for days_ago in range(30, -1, -1):
        active = {"power": 0.95, "casual": 0.3, "lapsed": 0.8 if days_ago > 16 else 0.0}[kind]
        if rng.random() > active:
            continue
        day = now - timedelta(days=days_ago, hours=rng.randint(0, 8))
        names = ["login", *rng.sample(FEATURES, 5 if kind == "power" else 1)]
        if rng.random() < 0.5:
            names.append("report_viewed")
        for offset, name in enumerate(names):
            timestamp = (day + timedelta(minutes=offset)).isoformat()
            events.append({"type": "track", "userId": user, "event": name, "timestamp": timestamp})
    return events


def main() -> int:
    stack = _connection()
    rng = random.Random(42)
    now = datetime.now(UTC)
    ingest = httpx.Client(base_url=stack["api_url"], auth=(stack["write_key"], ""), timeout=60)
    admin = httpx.Client(
        base_url=stack["api_url"], headers={"Authorization": f"Bearer {stack['admin_key']}"}, timeout=60
    )

    print(f"ingesting {USERS} users with 30 days of history ...")
    for i in range(USERS):
        user, kind = f"demo-{i:02d}", ("power", "casual", "lapsed")[i % 3]
        plan = rng.choice(["pro", "free"])
        traits = {"email": f"{user}@example.com", "first_name": f"User {i}", "plan": plan}
        first = (now - timedelta(days=45)).isoformat()
        batch = [{"type": "identify", "userId": user, "traits": traits, "timestamp": first}]
        batch += _history(rng, user, kind, now)
        response = ingest.post("/v1/batch", json={"batch": batch})
        response.raise_for_status()

    segment_ids = {}
    for template, overrides in SEGMENTS:
        response = admin.post("/v1/segments", json={"template": template, "overrides": overrides})
        response.raise_for_status()
        segment_ids[template] = response.json()["segment_id"]
    print("segments created; waiting for their backfill ...")
    _wait(lambda: all(_segment(admin, s)["backfill"]["state"] == "done" for s in segment_ids.values()))
    for template, segment_id in segment_ids.items():
        print(f"  {template:<20} {_segment(admin, segment_id)['size']:>3} members  ({segment_id})")

    response = admin.post(
        "/v1/announcements",
        json={
            "title": "Exports just got 3× faster",
            "body": "Hi {{ user.first_name | default('there') }},\n\n"
            "As one of our **power users**, you get the new export engine first. "
            "[Try it](https://example.com/exports).",
            "audience": {"segments": [segment_ids["power_users"]]},
            "channels": ["email"],
            "topic": "product-updates",
        },
    )
    response.raise_for_status()
    announcement_id = response.json()["id"]
    print(f"announcement {announcement_id} published to power users; delivering ...")
    _wait(lambda: _delivered(admin, announcement_id))
    print("counts:", json.dumps(_announcement(admin, announcement_id)["counts"]))
    print(f"\nsee the emails at {stack['api_url']}/_local/outbox")
    return 0


def _segment(admin: httpx.Client, segment_id: str) -> dict[str, Any]:
    response = admin.get(f"/v1/segments/{segment_id}")
    response.raise_for_status()
    return response.json()


def _announcement(admin: httpx.Client, announcement_id: str) -> dict[str, Any]:
    response = admin.get(f"/v1/announcements/{announcement_id}")
    response.raise_for_status()
    return response.json()


def _delivered(admin: httpx.Client, announcement_id: str) -> bool:
    announcement = _announcement(admin, announcement_id)
    counts = announcement["counts"]
    return announcement["status"] == "sent" and counts["pending"] == 0 and counts["in_doubt"] == 0


def _wait(done: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for the local stack")
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
