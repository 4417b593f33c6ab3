"""feed_requests_per_open: DynamoDB requests for one open of the in-app feed (docs/in-app.md).

One user, a member of 20 segments, has 50 live posts (5 for everyone, one of them pinned, 45
over their 20 segments) among 20 posts for segments they are not in; then 450 more of those
are published, to 500 live posts. In-process on moto: the api function creates each in-app
announcement and its page 0 runs as the publish function runs it (the lean post enters the FEED
partition); the feed function answers `GET /v1/feed?limit=50` and `GET /v1/feed/unread` as API
Gateway calls it (write key by HTTP Basic, the user hash header).

Counted: every request of the feed function (botocore hooks); the figures are its DynamoDB
requests. "Cold" is a new container (every per-container cache empty: write key, identity
secret, workspace settings, post content) opening the feed for the first time, which also
writes `seen` once per post. "Warm" is the next open in the same container, the common case.
"""

import base64
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from bench.aws_counter import counting
from bench.emulated_aws import emulated_aws, scaled_dynamodb
from bench.fanout import _take
from bench.results import Figure

USER = "feed-reader"
SEGMENTS = [f"seg_feed_{i}" for i in range(20)]  # the user is in all of them
OTHER_SEGMENTS = [f"seg_other_{i}" for i in range(20)]  # the user is in none
USER_POSTS = 50
EVERYONE_POSTS = 5
OTHER_POSTS = 20
GROWN_LIVE_POSTS = 500
PAGE = 50  # the largest page the feed serves
FEED_GOAL = 3
UNREAD_GOAL = 2
AT = "2026-11-01T00:00:00.000Z"
BODY = (
    "Reports now load **twice as fast**, and you can pin the ones you open most.\n\n"
    "- filters remember their last value\n- CSV export keeps your column order\n\n"
    "[See what changed](https://acme.example/changelog)"
)


def _event(method: str, path: str, *, query: str = "", headers: dict[str, str], body: Any = None) -> dict:
    """An API Gateway HTTP API (v2) event."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": dict(p.split("=", 1) for p in query.split("&")) if query else None,
        "headers": {"content-type": "application/json", "host": "api.example.com", **headers},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def _segments() -> None:
    """Every segment defined; the user entered the 20 of theirs (membership items and the
    membership state item the feed reads, written together as the segment paths write them)."""
    from cohortcast.clock import utcnow
    from cohortcast.storage import keys
    from cohortcast.storage import profiles as profile_store
    from cohortcast.storage import segments as segment_store
    from cohortcast.workspace import service as workspace

    for segment_id in SEGMENTS + OTHER_SEGMENTS:
        segment_store.save_definition(
            segment_store.SegmentDefinition(
                segment_id=segment_id, name=segment_id, kind="static", created_at=AT, updated_at=AT
            )
        )
    pk = keys.profile_pk(user_id=USER)
    for segment_id in SEGMENTS:
        change = segment_store.Change(segment_id, pk, "enter", AT, "added")
        segment_store.apply_change(change, USER, workspace.expires_at(utcnow()))
    record = profile_store.new_record(pk)
    record.traits = {"email": f"{USER}@example.net", "first_name": "Ada", "plan": "pro"}
    record.created_at = record.updated_at = AT
    profile_store.save(record)


class _Publisher:
    """Announcements created through the api function, their page 0 run from the publish queue
    (run_page, as the publish function's page handler does, without its log line per page)."""

    def __init__(self, resources: Any) -> None:
        from functions.api.app import lambda_handler as api
        from local.lambda_context import LambdaContext

        self.resources, self.api = resources, api
        self.api_context = LambdaContext("ApiFunction", 512)
        self.poller = boto3.Session().client("sqs")  # stands in for Lambda's poller

    def __call__(self, title: str, audience: dict[str, Any], *, pinned: bool = False) -> str:
        from cohortcast.announcements.publish import run_page
        from cohortcast.clock import utcnow
        from cohortcast.messages import PageTask

        announcement = {
            "title": title,
            "body": BODY,
            "channels": ["in_app"],
            "audience": audience,
            "labels": ["Improvement"],
            "pinned": pinned,
        }
        event = _event("POST", "/v1/announcements", headers={}, body=announcement)
        event["requestContext"]["authorizer"] = {"lambda": {"scope": "admin", "keyId": "bench"}}
        created = self.api(event, self.api_context)
        assert created["statusCode"] == 201, created["body"]
        polls = Counter()  # setup, not counted
        for page in _take(self.poller, self.resources.url("PublishQueue"), polls):
            assert run_page(PageTask.model_validate_json(page["Body"]), utcnow()).last
        return json.loads(created["body"])["id"]


def _user_audience(i: int) -> dict[str, Any]:
    if i < EVERYONE_POSTS:
        return {"everyone": True}
    segment = SEGMENTS[i % len(SEGMENTS)]
    # every third also names a segment the user is not in: targeted through the other one
    return {"segments": [OTHER_SEGMENTS[i % len(OTHER_SEGMENTS)], segment] if i % 3 == 0 else [segment]}


def _others(publish: _Publisher, first: int, count: int) -> None:
    for i in range(first, first + count):
        publish(f"For others {i}", {"segments": [OTHER_SEGMENTS[i % len(OTHER_SEGMENTS)]]})


def _new_container() -> None:
    """Empty every per-container cache the feed function reads through."""
    from cohortcast.auth import identity
    from cohortcast.auth import keys as api_keys
    from cohortcast.feed import service
    from cohortcast.workspace import service as workspace

    service.clear_caches()
    api_keys._cache.clear()
    identity._cache.clear()
    workspace.reset_cache()


def _pk_values(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "pk" and isinstance(value, dict) and "S" in value:
                yield value["S"]
            else:
                yield from _pk_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _pk_values(value)


@contextmanager
def _request_log() -> Iterator[list[str]]:
    """Each request as "service.Operation" with the partitions a DynamoDB one touches
    (`KEY`, `FEED`, `MEMBERSHIP+DLV`, ...): which read or write each counted request is."""
    from cohortcast.storage import aws

    log: list[str] = []

    def before_call(model: Any, params: dict[str, Any], **_: Any) -> None:
        name = f"{model.service_model.service_name}.{model.name}"
        if model.service_model.service_name == "dynamodb":
            body = json.loads(params.get("body") or b"{}")
            if "KeyConditionExpression" in body:  # the partition is a value of the condition
                values = [v.get("S", "") for v in body.get("ExpressionAttributeValues", {}).values()]
            else:
                values = list(_pk_values(body))
            name += " " + "+".join(sorted({v.split("#")[0] for v in values}))
        log.append(name)

    events = boto3.DEFAULT_SESSION._session.get_component("event_emitter")
    events.register("before-call.*.*", before_call, unique_id="bench-feed-log")
    aws.reset()  # clients copy the session's handlers when built
    try:
        yield log
    finally:
        events.unregister("before-call.*.*", unique_id="bench-feed-log")
        aws.reset()


class _Reader:
    """The feed function as API Gateway calls it for USER."""

    def __init__(self) -> None:
        from cohortcast.auth.identity import identity_secrets, user_hash
        from cohortcast.auth.keys import create_key
        from cohortcast.clock import utcnow
        from functions.feed.app import lambda_handler
        from local.lambda_context import LambdaContext

        write_key, _ = create_key("write", "feed bench", utcnow())
        self.headers = {
            "authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
            "x-cohortcast-user-hash": user_hash(identity_secrets().current, USER),
        }
        self.handler, self.context = lambda_handler, LambdaContext("FeedFunction", 512)

    def open(self, path: str, query: str = "") -> dict[str, Any]:
        """One request, counted: its answer, DynamoDB requests, every request by name, and the log."""
        event = _event(
            "GET", path, query="&".join(filter(None, [f"userId={USER}", query])), headers=self.headers
        )
        with _request_log() as log, counting() as counts:
            response = self.handler(event, self.context)
        assert response["statusCode"] == 200, response["body"]
        return {
            "answer": json.loads(response["body"]),
            "dynamodb_requests": counts.total_requests("dynamodb"),
            "requests": dict(sorted(counts.requests.items())),
            "read_units": counts.read_units,
            "write_units": counts.write_units,
            "log": log,
        }

    def feed(self) -> dict[str, Any]:
        return self.open("/v1/feed", f"limit={PAGE}")

    def unread(self) -> dict[str, Any]:
        return self.open("/v1/feed/unread")


def _summary(opened: dict[str, Any]) -> dict[str, Any]:
    """The counts of one open without the feed's own answer (its posts are not the figure)."""
    answer = opened["answer"]
    shown = {"items": len(answer["items"]), "unread": answer["unread"]} if "items" in answer else answer
    return {"shown": shown} | {k: v for k, v in opened.items() if k != "answer"}


def _cold_split(cold: dict[str, Any], warm: dict[str, Any]) -> dict[str, int]:
    """The cold open's requests: the container's one-time reads, the first listing's `seen`
    transactions, and the reads every open makes (the warm open's)."""
    log = Counter(cold["log"]) - Counter(warm["log"])
    seen = sum(n for name, n in log.items() if name.startswith("dynamodb.TransactWriteItems"))
    return {
        "every_open": len(warm["log"]),
        "container_caches": sum(log.values()) - seen,  # write key, identity secret, settings, content
        "seen_transactions": seen,
    }


def measure() -> dict[str, Any]:
    with emulated_aws() as resources, scaled_dynamodb():
        _segments()
        publish = _Publisher(resources)
        for i in range(USER_POSTS):
            publish(f"Release note {i}", _user_audience(i), pinned=i == 0)
        _others(publish, 0, OTHER_POSTS)
        reader = _Reader()

        _new_container()
        cold = reader.feed()
        warm = reader.feed()
        unread = reader.unread()
        assert len(cold["answer"]["items"]) == USER_POSTS and cold["answer"]["unread"] == USER_POSTS, cold
        assert cold["answer"]["items"][0]["pinned"], "the pinned post comes first"

        _others(publish, OTHER_POSTS, GROWN_LIVE_POSTS - USER_POSTS - OTHER_POSTS)
        reader.feed()  # the container's caches may have expired while 430 posts were published
        grown = reader.feed()
        grown_unread = reader.unread()
        assert len(grown["answer"]["items"]) == USER_POSTS, grown

        # one post that says {{ user.first_name }}: its rendering reads the user's profile
        publish("Hi {{ user.first_name | default('there') }}", {"everyone": True})
        reader.feed()  # its content and first `seen`
        personalised = reader.feed()
    return {
        "segments": len(SEGMENTS),
        "live_posts": USER_POSTS + OTHER_POSTS,
        "posts_for_the_user": USER_POSTS,
        "cold": _summary(cold) | {"split": _cold_split(cold, warm)},
        "warm": _summary(warm),
        "unread": _summary(unread),
        f"warm_at_{GROWN_LIVE_POSTS}_live": _summary(grown),
        f"unread_at_{GROWN_LIVE_POSTS}_live": _summary(grown_unread),
        f"warm_at_{GROWN_LIVE_POSTS + 1}_live_with_a_personalised_post": _summary(personalised),
    }


NOTE = (
    "Each open: one Query of the lean FEED partition, then one consistent BatchGetItem of the "
    "membership state with the user's state of every live post, targeted to them or not "
    "(targeting needs the memberships that come in that same request): ceil((live posts + 1) / "
    "100) requests, so +1 per 100 live posts, by design. A post leaves the partition only "
    "through visible_until (TTL a day after); without one it stays live. Content: one "
    "BatchGetItem per page per container (cached: published content never changes); seen: "
    "written once per user and post (a transaction per ~49); a page with a personalised post "
    "reads the profile (+1 GetItem)."
)


def run() -> list[Figure]:
    found = measure()
    found["note"] = NOTE
    feed, unread = found["warm"]["dynamodb_requests"], found["unread"]["dynamodb_requests"]
    grown = f"warm_at_{GROWN_LIVE_POSTS}_live"
    grown_unread = f"unread_at_{GROWN_LIVE_POSTS}_live"
    return [
        Figure(
            "feed_requests_per_open", feed, "DynamoDB requests", f"<= {FEED_GOAL}", feed <= FEED_GOAL, found
        ),
        Figure(
            "feed_unread_requests", unread, "DynamoDB requests", f"<= {UNREAD_GOAL}", unread <= UNREAD_GOAL
        ),
        Figure(
            "feed_requests_per_open[cold]",
            found["cold"]["dynamodb_requests"],
            "DynamoDB requests",
            "report",
            None,
            found["cold"],
        ),
        Figure(
            f"feed_requests_per_open[{GROWN_LIVE_POSTS}_live]",
            found[grown]["dynamodb_requests"],
            "DynamoDB requests",
            f"<= {FEED_GOAL}, flat as posts grow",
            found[grown]["dynamodb_requests"] <= FEED_GOAL,
        ),
        Figure(
            f"feed_unread_requests[{GROWN_LIVE_POSTS}_live]",
            found[grown_unread]["dynamodb_requests"],
            "DynamoDB requests",
            f"<= {UNREAD_GOAL}, flat as posts grow",
            found[grown_unread]["dynamodb_requests"] <= UNREAD_GOAL,
        ),
    ]
