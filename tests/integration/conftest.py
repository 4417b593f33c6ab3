"""The `stack` fixture: `python -m local` in a subprocess, reached over real HTTP."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from local import child as local_child

WRITE_KEY = "ccw_integration_write_key"
ADMIN_KEY = "cca_integration_admin_key"
IDENTITY_SECRET = "integration-identity-secret"  # signs the in-app feed's X-Cohortcast-User-Hash
START_TIMEOUT_S = 30.0


@dataclass
class LocalStack:
    base_url: str
    write_key: str
    admin_key: str
    identity_secret: str
    aws_endpoint: str
    data_dir: Path
    http: httpx.Client
    admin: httpx.Client

    def drain(self, timeout: float = 30.0) -> dict[str, Any]:
        """Block until queues and streams have been processed; fails the test if they never settle."""
        response = self.http.post("/_local/drain", json={"timeout": timeout}, timeout=timeout + 5)
        assert response.status_code == 200, f"local stack did not drain: {response.text}"
        return response.json()

    def settle(self, timeout: float = 30.0) -> None:
        """Publish → fan-out → email queue → SES → (emulated) SES events → feedback: two rounds."""
        self.drain(timeout=timeout)
        self.drain(timeout=timeout)

    def counts_when(self, announcement_id: str, ready: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The announcement's counts once `ready(counts)` holds (queues may still be settling)."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.admin.get(f"/v1/announcements/{announcement_id}").json()["counts"]
            if ready(counts) or time.monotonic() > deadline:
                return counts
            self.drain()
            time.sleep(0.2)

    def run_schedule(self, function_logical_id: str, time: str | None = None) -> dict[str, Any]:
        """Fire the function's schedules as if the clock said `time` (ISO-8601; default now)."""
        response = self.http.post(
            f"/_local/schedules/{function_logical_id}", json={"time": time} if time else {}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def outbox(self) -> list[dict[str, Any]]:
        """Every email SES accepted: {"message_id", "to" (list), "subject", "sent_at", "raw"}."""
        response = self.http.get("/_local/outbox.json")
        assert response.status_code == 200, response.text
        return response.json()

    def clear_outbox(self) -> None:
        self.http.delete("/_local/outbox").raise_for_status()


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    data_dir = Path(tempfile.mkdtemp(prefix="cohortcast-local-"))
    try:
        child = local_child.start(
            data_dir,
            write_key=WRITE_KEY,
            admin_key=ADMIN_KEY,
            env={
                "COHORTCAST_LOCAL_SCHEDULE_SECONDS": "3600",  # tests fire the schedules themselves
                "COHORTCAST_LOCAL_IDENTITY_SECRET": IDENTITY_SECRET,
                "PYTHONUNBUFFERED": "1",
            },
            timeout=START_TIMEOUT_S,
        )
    except local_child.StackDidNotStart as err:
        pytest.fail(str(err))
    try:
        with (
            httpx.Client(base_url=child.base_url, timeout=30) as http,
            httpx.Client(
                base_url=child.base_url, timeout=30, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            ) as admin,
        ):
            yield LocalStack(
                child.base_url,
                WRITE_KEY,
                ADMIN_KEY,
                IDENTITY_SECRET,
                child.aws_endpoint,
                data_dir,
                http,
                admin,
            )
    finally:
        child.stop(timeout=10)
