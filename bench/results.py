"""A figure of `make bench`: printed as a table, written to bench/results.json."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

RESULTS = Path(__file__).parent / "results.json"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    goal: str
    met: bool | None
    detail: dict[str, Any] = field(default_factory=dict)


def report(figures: list[Figure]) -> None:
    """Print the figures and write them to results.json in place of same-named ones, so the
    figures of `make bench` and `make soak` (run separately) live in one file."""
    table = Table(title="cohortcast bench")
    for column in ("figure", "value", "unit", "goal", "met"):
        table.add_column(column, no_wrap=True)
    for f in figures:
        met = "–" if f.met is None else ("yes" if f.met else "NO")
        table.add_row(escape(f.name), f"{f.value:,.3f}", f.unit, f.goal, met)
    Console(width=150).print(table)
    names = {f.name for f in figures}
    kept = [row for row in _previous() if row.get("name") not in names]
    RESULTS.write_text(json.dumps(kept + [asdict(f) for f in figures], indent=2, default=str) + "\n")
    Console().print(f"written {RESULTS}")


def _previous() -> list[dict[str, Any]]:
    try:
        rows = json.loads(RESULTS.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return rows if isinstance(rows, list) else []
