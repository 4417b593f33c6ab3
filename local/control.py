"""The `/_local/*` routes: health, outbox, schedules and drain. They exist only locally."""

from __future__ import annotations

import json
import re
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.gateway import Request, Response, json_response
from local.outbox import Outbox
from local.pollers import OneTimeSchedules, Poller, SqsPoller, StreamPoller, schedule_events, scheduled_event
from local.runtime import LocalFunction

DRAIN_TIMEOUT_S = 30.0


class LocalRoutes:
    def __init__(
        self,
        functions: dict[str, LocalFunction],
        pollers: list[Poller],
        outbox: Outbox,
        one_time: OneTimeSchedules | None,
        client: Callable[[str], Any],
    ) -> None:
        self.functions = functions
        self.work = [p for p in pollers if isinstance(p, (SqsPoller, StreamPoller))]
        self.outbox = outbox
        self.one_time = one_time
        self.client = client

    def __call__(self, request: Request) -> Response | None:
        method, path = request.method, request.raw_path.rstrip("/")
        if (method, path) == ("GET", "/_local/health"):
            return self.health()
        if (method, path) == ("GET", "/_local/outbox.json"):
            return json_response(200, self.outbox.as_json())
        if (method, path) == ("GET", "/_local/outbox"):
            return _html(self.outbox.index_page())
        if (method, path) == ("DELETE", "/_local/outbox"):
            return json_response(200, {"deleted": self.outbox.clear()})
        if method == "GET" and (found := re.fullmatch(r"/_local/outbox/([^/]+)", path)):
            page = self.outbox.message_page(found.group(1))
            return _html(page) if page is not None else json_response(404, {"message": "no such email"})
        if method == "POST" and (found := re.fullmatch(r"/_local/schedules/([^/]+)", path)):
            return self.run_schedule(found.group(1), request.body)
        if (method, path) == ("POST", "/_local/drain"):
            return self.drain(float(_json(request.body).get("timeout") or DRAIN_TIMEOUT_S))
        return None  # not a local route: the API's own 404 applies

    def health(self) -> Response:
        broken = {fid: f.import_error for fid, f in self.functions.items() if f.handler is None}
        body: dict[str, Any] = {"status": "degraded" if broken else "ok"}
        if broken:
            body["import_errors"] = broken
        return json_response(200, body)

    def run_schedule(self, function_id: str, body: bytes) -> Response:
        """Invoke the function's schedules now, as if the clock said `time` (default: now)."""
        function = self.functions.get(function_id)
        if function is None:
            return json_response(404, {"message": f"unknown function {function_id}"})
        try:
            raw_time = _json(body).get("time")
            moment = (
                datetime.fromisoformat(raw_time.replace("Z", "+00:00")) if raw_time else datetime.now(UTC)
            )
        except (ValueError, AttributeError):
            return json_response(400, {"message": "time must be an ISO-8601 timestamp"})
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        invoked = []
        try:
            for name, props in schedule_events(function.spec).items():
                result = function.invoke(scheduled_event(function.spec, name, props, moment))
                invoked.append({"event": name, "result": result})
            if self.one_time:
                invoked += self.one_time.fire_due(moment, function_id)
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            return json_response(500, {"message": f"{function_id} raised {type(error).__name__}: {error}"})
        return Response(
            200,
            {"content-type": "application/json"},
            json.dumps({"function": function_id, "invoked": invoked}, default=str).encode(),
        )

    def drain(self, timeout: float) -> Response:
        """Wait until queues are empty and every poller has polled empty after all activity."""
        started = time.monotonic()
        sqs = self.client("sqs")
        while True:
            threshold = max([started, *(p.last_activity for p in self.work)])
            pollers_quiet = all(not p.busy and p.last_empty_poll >= threshold for p in self.work)
            queued = {
                p.queue_url.rsplit("/", 1)[1]: _queued(sqs, p.queue_url)
                for p in self.work
                if isinstance(p, SqsPoller)
            }
            elapsed = time.monotonic() - started
            if (pollers_quiet and not any(queued.values())) or elapsed > timeout:
                drained = pollers_quiet and not any(queued.values())
                return json_response(
                    200 if drained else 504,
                    {
                        "drained": drained,
                        "elapsed_ms": int(elapsed * 1000),
                        "queued": queued,
                        "processed": {p.name: p.processed for p in self.work},
                    },
                )
            time.sleep(0.1)


def _queued(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _html(page: str) -> Response:
    return Response(200, {"content-type": "text/html; charset=utf-8"}, page.encode())
