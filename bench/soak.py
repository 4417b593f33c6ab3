"""local_stack_peak_rss: `python -m local` over a bounded soak, and how fast it stops on SIGTERM.

`make soak` (a few minutes, so not part of `make bench`): start the local stack in a
subprocess, then through its HTTP API ingest 10,000 events (500 users with an email address,
100-message batches), import a 5,000-row CSV into a static segment and poll its progress,
send one announcement to a 500-member segment and wait for the 500 emails, then send SIGTERM.
Peak RSS is the kernel's high-water mark (VmHWM) of the stack's process, read just before
the signal. Goals: peak ≤ 1 GB, exit ≤ 5 s after SIGTERM. The figure is merged into
bench/results.json next to `make bench`'s.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.results import Figure, report
from local import child as local_child

EVENTS = 10_000
USERS = 500
BATCH = 100
IMPORT_ROWS = 5_000
PEAK_GOAL_MB = 1024
STOP_GOAL_S = 5.0
WRITE_KEY = "ccw_soak_write_key"
ADMIN_KEY = "cca_soak_admin_key"


def _memory_mb(pid: int, field_name: str) -> float:
    """VmRSS (now) or VmHWM (peak so far) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field_name} not in /proc/{pid}/status")


@dataclass
class Soak:
    process: subprocess.Popen[bytes]
    ingest: httpx.Client
    admin: httpx.Client
    local: httpx.Client
    phases: dict[str, dict[str, float]] = field(default_factory=dict)

    def phase(self, name: str, work: Callable[[], Any]) -> Any:
        started = time.monotonic()
        result = work()
        self.phases[name] = {
            "seconds": round(time.monotonic() - started, 1),
            "rss_mb": round(_memory_mb(self.process.pid, "VmRSS")),
        }
        print(
            f"  {name:<14} {self.phases[name]['seconds']:>6.1f} s   rss {self.phases[name]['rss_mb']:>5} MB"
        )
        return result

    def drain(self) -> None:
        response = self.local.post("/_local/drain", json={"timeout": 120}, timeout=130)
        response.raise_for_status()

    def ingest_events(self) -> None:
        sent = 0
        while sent < EVENTS:
            batch = []
            for i in range(sent, min(sent + BATCH, EVENTS)):
                user = f"soak-{i % USERS}"
                if i < USERS:  # every user first identifies with an address
                    traits = {"email": f"{user}@example.com", "first_name": f"User {i}", "plan": "pro"}
                    batch.append({"type": "identify", "userId": user, "traits": traits})
                else:
                    props = {"n": i, "path": f"/page/{i % 37}"}
                    batch.append(
                        {"type": "track", "userId": user, "event": f"event_{i % 8}", "properties": props}
                    )
            self.ingest.post("/v1/batch", json={"batch": batch}).raise_for_status()
            sent += len(batch)
        self.drain()

    def import_csv(self) -> dict[str, Any]:
        created = self.admin.post("/v1/segments", json={"name": "soak import", "members": []})
        created.raise_for_status()
        segment_id = created.json()["segment_id"]
        body = "user_id\n" + "".join(f"imported-{i}\n" for i in range(IMPORT_ROWS))
        response = self.admin.post(
            f"/v1/segments/{segment_id}/members.csv", content=body, headers={"Content-Type": "text/csv"}
        )
        response.raise_for_status()
        deadline = time.monotonic() + 300
        while True:
            segment = self.admin.get(f"/v1/segments/{segment_id}").json()
            if (segment.get("members_import") or {}).get("state") != "running":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"import still running after 300 s: {segment['members_import']}")
            time.sleep(0.5)
        if segment["size"] != IMPORT_ROWS:
            raise RuntimeError(f"import ended with size {segment['size']}, not {IMPORT_ROWS}")
        return segment

    def announce(self) -> dict[str, Any]:
        members = [f"soak-{i}" for i in range(USERS)]
        created = self.admin.post("/v1/segments", json={"name": "soak audience", "members": members})
        created.raise_for_status()
        announcement = self.admin.post(
            "/v1/announcements",
            json={
                "title": "Soak {{ user.first_name }}",
                "body": "Hello {{ user.first_name | default('there') }}, this is the soak.",
                "audience": {"segments": [created.json()["segment_id"]]},
                "channels": ["email"],
            },
        )
        announcement.raise_for_status()
        announcement_id = announcement.json()["id"]
        deadline = time.monotonic() + 300
        while True:
            self.drain()
            shown = self.admin.get(f"/v1/announcements/{announcement_id}").json()
            counts = shown["counts"]
            if shown["status"] == "sent" and counts["pending"] == 0 and counts["in_doubt"] == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"announcement not delivered after 300 s: {counts}")
        if counts["sent"] != USERS:
            raise RuntimeError(f"announcement sent {counts['sent']} emails, not {USERS}: {counts}")
        return counts


def run() -> list[Figure]:
    data_dir = Path(tempfile.mkdtemp(prefix="cohortcast-soak-"))
    child = local_child.start(data_dir, write_key=WRITE_KEY, admin_key=ADMIN_KEY, timeout=60)
    process, base_url = child.process, child.base_url
    stopped_after: float | None = None
    try:
        with (
            httpx.Client(base_url=base_url, auth=(WRITE_KEY, ""), timeout=60) as ingest,
            httpx.Client(
                base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60
            ) as admin,
            httpx.Client(base_url=base_url, timeout=60) as local,
        ):
            soak = Soak(process, ingest, admin, local)
            print(f"soak: local stack pid {process.pid}, log {data_dir / 'stack.log'}")
            soak.phase("events", soak.ingest_events)
            imported = soak.phase("csv_import", soak.import_csv)
            counts = soak.phase("announcement", soak.announce)
            peak = _memory_mb(process.pid, "VmHWM")
    finally:
        stopped_after = child.stop(timeout=30)
    stopped_in = float("inf") if stopped_after is None else round(stopped_after, 2)
    detail = {
        "events": EVENTS,
        "import_rows": IMPORT_ROWS,
        "import": imported.get("members_import"),
        "announcement_sent": counts["sent"],
        "phases": soak.phases,
        "sigterm_exit_seconds": stopped_in,
    }
    return [
        Figure(
            "local_stack_peak_rss",
            round(peak),
            "MB",
            f"≤ {PEAK_GOAL_MB} MB; exit ≤ {STOP_GOAL_S:.0f} s after SIGTERM",
            peak <= PEAK_GOAL_MB and stopped_in <= STOP_GOAL_S,
            detail,
        ),
        Figure(
            "local_stack_sigterm_exit", stopped_in, "s", f"≤ {STOP_GOAL_S:.0f}", stopped_in <= STOP_GOAL_S
        ),
    ]


def main() -> int:
    figures = run()
    report(figures)
    return 0 if all(f.met for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
