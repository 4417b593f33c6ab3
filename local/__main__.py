"""`python -m local`: moto server, resources from template.yaml, the HTTP API, pollers, outbox."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import NoReturn

from local import FAKE_AWS_ENV

STOP_SECONDS = 3.0  # SIGTERM → exit: workers get this long together to finish what they are doing


def main() -> NoReturn:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    for noisy in ("werkzeug", "botocore", "boto3"):  # moto's access log, "found credentials" lines
        logging.getLogger(noisy).setLevel(logging.WARNING)
    host = "127.0.0.1"
    aws_port = int(os.environ.get("COHORTCAST_LOCAL_AWS_PORT", "4566"))
    api_port = int(os.environ.get("COHORTCAST_LOCAL_PORT", "3000"))
    data_dir = Path(os.environ.get("COHORTCAST_LOCAL_DATA_DIR", ".local"))
    api_url = f"http://{host}:{api_port}"

    from moto.server import ThreadedMotoServer

    from local import moto_patches

    moto_patches.install()  # before any request: moto unpatched grows without bound (see there)
    moto = ThreadedMotoServer(ip_address=host, port=aws_port, verbose=False)
    moto.start()
    # Before any handler import: our code builds boto3 clients lazily and boto3 reads these.
    os.environ.update(FAKE_AWS_ENV, AWS_ENDPOINT_URL=f"http://{host}:{aws_port}")

    import boto3

    from local import control, gateway, outbox, pollers, provision, runtime, ses_events, template

    session = boto3.Session()
    cache: dict[str, object] = {}

    def client(service: str) -> object:
        if service not in cache:
            cache[service] = session.client(service)
        return cache[service]

    spec = template.load_template()
    resources = provision.provision(spec, client, api_url=api_url)
    ses_events.install(spec, resources, client)  # moto emits no SES configuration-set events
    environments = template.all_function_environments(spec, resources)
    functions = runtime.load_functions(template.functions(spec), environments)
    os.environ.update(template.union_environment(environments))

    write_key, admin_key = _create_keys()
    identity_secret = _set_identity_secret()
    _write_connection_file(data_dir, api_url, write_key, admin_key, identity_secret)

    workers = pollers.build_pollers(functions, resources, client, moto_patches.trim_stream)
    one_time = pollers.OneTimeSchedules(functions, client)
    mail = outbox.Outbox(data_dir)
    watcher = outbox.OutboxWatcher(mail)
    routes = control.LocalRoutes(functions, workers, mail, one_time, client)
    server = gateway.serve(
        gateway.Gateway(gateway.routes(spec, template.functions(spec)), functions, routes), host, api_port
    )
    threads: list[threading.Thread] = [*workers, one_time, watcher]
    for thread in threads:
        thread.start()
    threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()

    print(
        "\ncohortcast local stack\n"
        f"  API        {api_url}\n"
        f"  outbox     {api_url}/_local/outbox\n"
        f"  docs       {api_url}/docs\n"
        f"  write key  {write_key}\n"
        f"  admin key  {admin_key}\n"
        f"  identity   {identity_secret}  (the in-app feed's identity secret: X-Cohortcast-User-Hash)\n"
        f"  AWS        {os.environ['AWS_ENDPOINT_URL']}  (moto; data is in memory)\n",
        flush=True,
    )

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    print("stopping", file=sys.stderr, flush=True)
    deadline = time.monotonic() + STOP_SECONDS
    for thread in threads:
        thread.stop()  # type: ignore[attr-defined]
    server.shutdown()
    # One deadline for all: a worker in the middle of a long invocation (daemon thread) is
    # left behind rather than waited for, thread after thread.
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    moto.stop()
    # Everything the stack holds is in memory and about to be discarded: skip the
    # interpreter's teardown of it, which takes seconds once moto's tables are large.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _create_keys() -> tuple[str, str]:
    from cohortcast.auth.keys import create_key
    from cohortcast.clock import utcnow

    now = utcnow()
    write = os.environ.get("COHORTCAST_LOCAL_WRITE_KEY") or "ccw_local_" + secrets.token_urlsafe(24)
    admin = os.environ.get("COHORTCAST_LOCAL_ADMIN_KEY") or "cca_local_" + secrets.token_urlsafe(24)
    create_key("write", "local write key", now, plaintext=write)
    create_key("admin", "local admin key", now, plaintext=admin)
    return write, admin


def _set_identity_secret() -> str:
    """The in-app feed's identity secret: the given one (hashes survive a restart) or a new one."""
    from cohortcast.auth.identity import IdentitySecrets, write_identity_secrets

    current = os.environ.get("COHORTCAST_LOCAL_IDENTITY_SECRET") or secrets.token_hex(32)
    write_identity_secrets(IdentitySecrets(current=current))
    return current


def _write_connection_file(
    data_dir: Path, api_url: str, write_key: str, admin_key: str, identity_secret: str
) -> None:
    """Where `make demo` and scripts find the running stack (local, throwaway keys only)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "stack.json"
    target.write_text(
        json.dumps(
            {
                "api_url": api_url,
                "write_key": write_key,
                "admin_key": admin_key,
                "identity_secret": identity_secret,
            }
        )
    )
    target.chmod(0o600)


if __name__ == "__main__":
    main()
