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
LOCAL_IDENTITY_SECRET = "IdentitySecret"  # the local stack names secrets by logical id

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
    identity = keys_commands.add_parser(
        "identity-secret", help="print the in-app feed's identity secret (users' hashes are signed with it)"
    )
    identity.add_argument("--rotate", action="store_true", help="make a new secret; the old one stays valid")
    identity.add_argument(
        "--grace-days", type=_days, help="days the old secret stays valid after --rotate (default 7)"
    )
    identity.add_argument(
        "--secret", default=os.environ.get("IDENTITY_SECRET_ARN"), help="the stack's IdentitySecretArn output"
    )
    identity.add_argument("--local", action="store_true", help="use the local stack started by `make run`")
    identity.set_defaults(run=_identity_secret)

    segments.add_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "segments":
        return segments.run(args)
    return args.run(args)


def _days(value: str) -> int:
    days = int(value)
    if days < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return days


def _use_local_stack() -> None:
    os.environ.setdefault("AWS_ENDPOINT_URL", os.environ.get("COHORTCAST_AWS_ENDPOINT", LOCAL_AWS_ENDPOINT))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def _set_layer_environment(**variables: str) -> None:
    """Settings are read from the environment by the layer: point them at this stack."""
    for name in ("PROFILES_TABLE", "EVENTS_TABLE", "DATA_TABLE"):
        os.environ.setdefault(name, "unused-by-keys")
    os.environ.update(variables)


def _create_key(args: argparse.Namespace) -> int:
    if args.local:
        _use_local_stack()
    table = args.table or (LOCAL_DATA_TABLE if args.local else None)
    if not table:
        console.print("[red]--table (the stack's DataTableName output) or --local is required[/red]")
        return 2
    _set_layer_environment(DATA_TABLE=table)

    from cohortcast.auth.keys import create_key
    from cohortcast.clock import utcnow

    plaintext, record = create_key(args.scope, args.name, utcnow())
    console.print(f"created {record.scope} key [bold]{record.key_id}[/bold] {record.name}")
    console.print("store it now, it is not shown again:")
    print(plaintext)
    return 0


def _identity_secret(args: argparse.Namespace) -> int:
    if args.local:
        _use_local_stack()
    secret = args.secret or (LOCAL_IDENTITY_SECRET if args.local else None)
    if not secret:
        console.print("[red]--secret (the stack's IdentitySecretArn output) or --local is required[/red]")
        return 2
    _set_layer_environment(IDENTITY_SECRET_ARN=secret)

    from cohortcast.auth.identity import (
        DEFAULT_GRACE_DAYS,
        IDENTITY_SECRET_CACHE_SECONDS,
        identity_secrets,
        rotate_identity_secret,
    )
    from cohortcast.clock import isoformat, utcnow

    if args.rotate:
        grace_days = DEFAULT_GRACE_DAYS if args.grace_days is None else args.grace_days
        rotate_identity_secret(utcnow(), grace_days=grace_days)
        # Until every container has read the new secret, only the previous one works everywhere.
        minutes = IDENTITY_SECRET_CACHE_SECONDS / 60
        console.print(f"rotated: switch your backend to the new secret in {minutes:.0f} minutes")
    value = identity_secrets()
    print(f"current   {value.current}")
    if value.previous and value.previous_valid_until:
        print(f"previous  {value.previous}  (accepted until {isoformat(value.previous_valid_until)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
