"""cold_start_import: median import time of each handler module in fresh interpreters, vs `import boto3`."""

import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.results import Figure

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5
# Functions whose cold start BENCH.md judges (≤ 1.5× boto3); others are reported.
JUDGED = {"ingest", "deliver_email", "deliver_sns"}
_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def _import_seconds(module: str) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'layers' / 'cohortcast'}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    times = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(module=module)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def run() -> list[Figure]:
    baseline = _import_seconds("boto3")
    figures = []
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        name = app.parent.name
        ratio = _import_seconds(f"functions.{name}.app") / baseline
        judged = name in JUDGED
        figures.append(
            Figure(
                f"cold_start_import[{name}]",
                ratio,
                "× import boto3",
                "<= 1.5" if judged else "report",
                ratio <= 1.5 if judged else None,
                {"boto3_seconds": baseline},
            )
        )
    return figures
