"""`python -m local` in a child process on free ports: the integration tests' stack and the soak's."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]


class StackDidNotStart(RuntimeError):
    pass


@dataclass
class ChildStack:
    process: subprocess.Popen[bytes]
    base_url: str
    aws_endpoint: str
    log_path: Path

    def stop(self, timeout: float) -> float | None:
        """SIGTERM, then the seconds until it exited, or None if it had to be killed."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        return time.monotonic() - started


def start(
    data_dir: Path, *, write_key: str, admin_key: str, env: dict[str, str] | None = None, timeout: float
) -> ChildStack:
    """Start the stack with these keys and wait until it answers /_local/health."""
    api_port, aws_port = _free_port(), _free_port()
    child_env = {
        **os.environ,
        "COHORTCAST_LOCAL_PORT": str(api_port),
        "COHORTCAST_LOCAL_AWS_PORT": str(aws_port),
        "COHORTCAST_LOCAL_DATA_DIR": str(data_dir),
        "COHORTCAST_LOCAL_WRITE_KEY": write_key,
        "COHORTCAST_LOCAL_ADMIN_KEY": admin_key,
        # Same import roots as pytest's `pythonpath`, for a stack run from a plain interpreter.
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "layers" / "cohortcast")]),
        **(env or {}),
    }
    child_env.pop("AWS_ENDPOINT_URL", None)  # the stack starts its own emulator
    log_path = data_dir / "stack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local"],
            cwd=REPO_ROOT,
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack = ChildStack(process, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}", log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackDidNotStart(f"local stack exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{stack.base_url}/_local/health", timeout=1).status_code == 200:
                return stack
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    process.wait()
    raise StackDidNotStart(f"local stack not healthy after {timeout:.0f} s:\n{log_path.read_text()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
