"""The `stack` fixture: `python -m local` in a subprocess, reached over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WRITE_KEY = "ccw_integration_write_key"
ADMIN_KEY = "cca_integration_admin_key"
START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalStack:
    base_url: str
    write_key: str
    admin_key: str
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
    api_port, aws_port = _free_port(), _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="cohortcast-local-"))
    log_path = data_dir / "stack.log"
    env = {
        **os.environ,
        "COHORTCAST_LOCAL_PORT": str(api_port),
        "COHORTCAST_LOCAL_AWS_PORT": str(aws_port),
        "COHORTCAST_LOCAL_DATA_DIR": str(data_dir),
        "COHORTCAST_LOCAL_WRITE_KEY": WRITE_KEY,
        "COHORTCAST_LOCAL_ADMIN_KEY": ADMIN_KEY,
        "COHORTCAST_LOCAL_SCHEDULE_SECONDS": "3600",  # tests fire schedules themselves
        # Same import roots as pytest's `pythonpath`, for a stack run from a plain interpreter.
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "layers" / "cohortcast")]),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{api_port}"
    try:
        _wait_healthy(process, base_url, log_path)
        with (
            httpx.Client(base_url=base_url, timeout=30) as http,
            httpx.Client(
                base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            ) as admin,
        ):
            yield LocalStack(
                base_url, WRITE_KEY, ADMIN_KEY, f"http://127.0.0.1:{aws_port}", data_dir, http, admin
            )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"local stack exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/_local/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"local stack not healthy after {START_TIMEOUT_S:.0f} s:\n{log_path.read_text()}")
