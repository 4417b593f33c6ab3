"""`cohortcast` CLI entry point.

Keys are written straight to the deployment's DataTable (they cannot be created over
the API without a key to begin with); everything else goes through the HTTP API.
"""

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console

from cohortcast_cli import segments

LOCAL_AWS_ENDPOINT = "http://127.0.0.1:4566"
LOCAL_DATA_TABLE = "DataTable"

console = Console()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cohortcast", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    keys_parser = commands.add_parser("keys", help="API keys")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key; it is printed once and stored hashed")
    create.add_argument("--scope", choices=["write", "admin"], required=True)
    create.add_argument("--name", default="", help="a label to recognise the key by")
    create.add_argument("--table", default=os.environ.get("DATA_TABLE"), help="the stack's DataTable name")
    create.add_argument("--local", action="store_true", help="use the local stack started by `make run`")
    create.set_defaults(run=_create_key)

    segments.add_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "segments":
        return segments.run(args)
    return args.run(args)


def _create_key(args: argparse.Namespace) -> int:
    if args.local:
        os.environ.setdefault(
            "AWS_ENDPOINT_URL", os.environ.get("COHORTCAST_AWS_ENDPOINT", LOCAL_AWS_ENDPOINT)
        )
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    table = args.table or (LOCAL_DATA_TABLE if args.local else None)
    if not table:
        console.print("[red]--table (the stack's DataTableName output) or --local is required[/red]")
        return 2
    # Settings are read from the environment by the layer: point them at this table.
    for name in ("PROFILES_TABLE", "EVENTS_TABLE"):
        os.environ.setdefault(name, "unused-by-keys")
    os.environ["DATA_TABLE"] = table

    from cohortcast.auth.keys import create_key
    from cohortcast.clock import utcnow

    plaintext, record = create_key(args.scope, args.name, utcnow())
    console.print(f"created {record.scope} key [bold]{record.key_id}[/bold] {record.name}")
    console.print("store it now, it is not shown again:")
    print(plaintext)
    return 0


if __name__ == "__main__":
    sys.exit(main())
