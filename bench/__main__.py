"""Run every figure and report (see shared BENCH.md). Not a test: nothing here fails the build."""

import importlib
import traceback

from bench.results import Figure, report

# The in-process speed figures run first, before the moto runs fill the heap with 100k items.
MODULES = [
    "bench.rules",
    "bench.ingest",
    "bench.sweep",
    "bench.fanout",
    "bench.csv_import",
    "bench.feed",
    "bench.cost",
    "bench.cold_start",
]


def main() -> None:
    figures: list[Figure] = []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
            # A module with run_from works on the figures measured before it (cost_per_million).
            figures.extend(module.run_from(figures) if hasattr(module, "run_from") else module.run())
        except Exception:  # one broken figure must not hide the others
            traceback.print_exc()
            figures.append(Figure(name, float("nan"), "error", "runs", False))
    report(figures)


if __name__ == "__main__":
    main()
