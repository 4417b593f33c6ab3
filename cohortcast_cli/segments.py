"""`cohortcast segments ...`: the segments API over HTTP (urllib), printed with rich."""

import argparse
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DEFAULT_URL = "http://127.0.0.1:3000"

console = Console()


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"{status} {error.get('code', '')}: {error.get('message', body)}")
        self.status, self.body = status, body


def request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        args.url.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {args.admin_key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        raise ApiError(err.code, parsed) from None


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("segments", help="segments: list, show, preview, create")
    parser.add_argument("--url", default=os.environ.get("COHORTCAST_URL", DEFAULT_URL), help="API base URL")
    parser.add_argument(
        "--admin-key",
        default=os.environ.get("COHORTCAST_ADMIN_KEY", ""),
        help="admin key (COHORTCAST_ADMIN_KEY)",
    )
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of tables")
    sub = parser.add_subparsers(dest="segments_command", required=True)
    sub.add_parser("list", help="all segments with size and backfill state").set_defaults(run=_list)
    show = sub.add_parser("show", help="one segment")
    show.add_argument("segment_id")
    show.set_defaults(run=_show)
    preview = sub.add_parser("preview", help="count and sample of a rule's matches, without saving")
    preview.add_argument("--file", required=True, help="JSON: a rule, or {rule|template, overrides}")
    preview.set_defaults(run=_preview)
    create = sub.add_parser("create", help="create a segment from a JSON file")
    create.add_argument(
        "--file", required=True, help="JSON: {name, rule} / {template, overrides} / a bare rule"
    )
    create.add_argument("--name", help="segment name (overrides the file's)")
    create.set_defaults(run=_create)


def run(args: argparse.Namespace) -> int:
    if not args.admin_key:
        console.print("[red]an admin key is needed: --admin-key or COHORTCAST_ADMIN_KEY[/red]")
        return 2
    try:
        return args.run(args)
    except ApiError as err:
        console.print(f"[red]{err}[/red]")
        details = err.body.get("error", {}).get("details") if isinstance(err.body, dict) else None
        for detail in details if isinstance(details, list) else []:
            if isinstance(detail, dict):
                console.print(f"  {detail.get('pointer', '')}: {detail.get('message', '')}")
        return 1
    except (urllib.error.URLError, OSError) as err:
        console.print(f"[red]cannot reach {args.url}: {err}[/red]")
        return 1


def _load(path: str) -> dict[str, Any]:
    document = json.loads(Path(path).read_text())
    if not isinstance(document, dict):
        raise SystemExit(f"{path}: expected a JSON object")
    if not {"rule", "template", "members"} & document.keys():
        document = {"rule": document}  # a bare rule tree
    return document


def _list(args: argparse.Namespace) -> int:
    body = request(args, "GET", "/v1/segments")
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    table = Table(title="segments")
    for column in ("id", "name", "kind", "size", "backfill", "updated"):
        table.add_column(column)
    for s in body["segments"]:
        table.add_row(s["segment_id"], s["name"], s["kind"], str(s["size"]), _backfill(s), s["updated_at"])
    console.print(table)
    return 0


def _backfill(segment: dict[str, Any]) -> str:
    b = segment.get("backfill") or {}
    return f"{b.get('state', '')} ({b.get('processed', 0)} evaluated)"


def _show(args: argparse.Namespace) -> int:
    segment = request(args, "GET", f"/v1/segments/{args.segment_id}")
    _print_segment(args, segment)
    return 0


def _print_segment(args: argparse.Namespace, segment: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(segment, indent=2))
        return
    table = Table(show_header=False, title=segment["name"])
    table.add_column("field", style="bold")
    table.add_column("value")
    for name in (
        "segment_id",
        "kind",
        "description",
        "size",
        "version",
        "template",
        "created_at",
        "updated_at",
    ):
        table.add_row(name, str(segment.get(name) if segment.get(name) is not None else ""))
    table.add_row("backfill", _backfill(segment))
    if segment.get("rule"):
        table.add_row("rule", json.dumps(segment["rule"], indent=2))
    console.print(table)


def _preview(args: argparse.Namespace) -> int:
    document = _load(args.file)
    body = request(args, "POST", "/v1/segments/preview", document)
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    exactness = "exact" if body["exact"] else f"estimate from {body['scanned']} profiles"
    console.print(f"[bold]{body['count']}[/bold] matching users ({exactness})")
    table = Table(title="sample")
    table.add_column("user id")
    for user_id in body["sample"]:
        table.add_row(user_id)
    console.print(table)
    return 0


def _create(args: argparse.Namespace) -> int:
    document = _load(args.file)
    if args.name:
        document["name"] = args.name
    segment = request(args, "POST", "/v1/segments", document)
    if not args.json:
        console.print(
            f"created [bold]{segment['segment_id']}[/bold]; backfill {segment['backfill']['state']}"
        )
    _print_segment(args, segment)
    return 0
