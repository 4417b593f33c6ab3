"""Event sources run in-process: SQS queues, DynamoDB streams, schedules and one-time
EventBridge Scheduler schedules, each feeding the real handler the event Lambda would send.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from local.patterns import matches_any
from local.runtime import LocalFunction
from local.template import ACCOUNT_ID, REGION, STACK_NAME, FunctionSpec, Resources

log = logging.getLogger("local.pollers")

FAILED_RETRY_SECONDS = 1  # failed SQS messages come back this fast locally, so redrive happens in seconds
STREAM_RETRIES = 3  # a failing stream batch is retried this often, then skipped so the shard keeps moving


class Poller(threading.Thread):
    """A daemon loop with enough bookkeeping for `drain` to know when all work is done."""

    idle_sleep = 0.2

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()
        self.busy = False
        self.processed = 0
        self.last_activity = 0.0  # monotonic end of the last poll that found work
        self.last_empty_poll = 0.0  # monotonic start of the last poll that found nothing

    def poll_once(self) -> int:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                handled = self.poll_once()
            except Exception:
                if self.stopping.is_set():
                    return
                log.exception("%s failed; retrying", self.name)
                self.busy = False
                self.stopping.wait(1)
                continue
            if handled:
                self.last_activity = time.monotonic()
            else:
                self.last_empty_poll = started
                self.stopping.wait(self.idle_sleep)
            self.busy = False

    def stop(self) -> None:
        self.stopping.set()


def _invoke(function: LocalFunction, event: Any) -> tuple[Any, bool]:
    """(result, raised). A handler error is printed like the Lambda runtime logs it."""
    try:
        return function.invoke(event), False
    except Exception:
        print(f"{function.spec.logical_id} raised:", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return None, True


def _reports_failures(props: dict[str, Any]) -> bool:
    return "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])


def _failed_ids(result: Any) -> set[str] | None:
    """Identifiers from a partial-batch response; None means "treat the whole batch as failed"."""
    if not isinstance(result, dict) or not result.get("batchItemFailures"):
        return set()
    ids = {f.get("itemIdentifier") for f in result["batchItemFailures"] if isinstance(f, dict)}
    return None if any(not i for i in ids) else {str(i) for i in ids}


def _json_safe(value: Any) -> Any:
    # boto3 hands back bytes and datetimes where a Lambda event carries base64 and epoch numbers.
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


# ------------------------------------------------------------------ SQS


class SqsPoller(Poller):
    idle_sleep = 0.0  # receive_message already waits a second

    def __init__(self, function: LocalFunction, props: dict[str, Any], sqs: Any) -> None:
        super().__init__(f"sqs:{function.spec.logical_id}")
        self.function = function
        self.queue_arn: str = props["Queue"]
        self.queue_url = sqs.get_queue_url(QueueName=self.queue_arn.rsplit(":", 1)[1])["QueueUrl"]
        self.batch_size = min(int(props.get("BatchSize", 10)), 10)  # one receive call; no batching window
        self.report_failures = _reports_failures(props)
        self.filters = (props.get("FilterCriteria") or {}).get("Filters")
        self.sqs = sqs

    def poll_once(self) -> int:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        self.busy = True
        records = [self._record(m) for m in messages]
        wanted = [r for r in records if matches_any(self.filters, _with_json_body(r))]
        failed: set[str] = set()
        if wanted:
            result, raised = _invoke(self.function, {"Records": wanted})
            reported = _failed_ids(result) if self.report_failures and not raised else set()
            failed = {r["messageId"] for r in wanted} if raised or reported is None else reported
        # Filtered-out messages are deleted too, as Lambda does.
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        if retry:
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": FAILED_RETRY_SECONDS,
                    }
                    for i, m in enumerate(retry)
                ],
            )
        self.processed += len(done)
        return len(messages)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": _json_safe(value.get("BinaryValue")),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": _json_safe(value.get("BinaryListValues", [])),
                "dataType": value["DataType"],
            }
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }


def _with_json_body(record: dict[str, Any]) -> dict[str, Any]:
    # Lambda matches `body` patterns against the parsed JSON body when it is JSON.
    try:
        return {**record, "body": json.loads(record["body"])}
    except ValueError:
        return record


# ------------------------------------------------------------------ DynamoDB streams


class StreamPoller(Poller):
    """`trim(stream_arn, sequence_number)` drops processed records from the emulated stream."""

    def __init__(
        self,
        function: LocalFunction,
        props: dict[str, Any],
        streams: Any,
        trim: Callable[[str, int], int] | None = None,
    ) -> None:
        super().__init__(f"stream:{function.spec.logical_id}")
        self.function = function
        self.stream_arn: str = props["Stream"]
        self.batch_size = int(props.get("BatchSize", 100))
        self.report_failures = _reports_failures(props)
        self.filters = (props.get("FilterCriteria") or {}).get("Filters")
        retries = int(props.get("MaximumRetryAttempts", -1))
        self.max_attempts = 1 + (retries if retries >= 0 else STREAM_RETRIES)
        self.streams = streams
        self.trim = trim
        self.iterators: dict[str, str | None] = {}
        self.pending: list[dict[str, Any]] = []
        self.attempts = 0

    def _refresh_shards(self) -> None:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            if shard["ShardId"] not in self.iterators:
                self.iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard["ShardId"],
                    ShardIteratorType="TRIM_HORIZON",
                )["ShardIterator"]

    def poll_once(self) -> int:
        if not self.pending:
            self._refresh_shards()
            for shard_id, iterator in self.iterators.items():
                if iterator is None:
                    continue
                response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                self.iterators[shard_id] = response.get("NextShardIterator")
                self.pending += [self._record(r) for r in response.get("Records", [])]
        if not self.pending:
            return 0
        self.busy = True
        batch = self.pending[: self.batch_size]
        wanted = [r for r in batch if matches_any(self.filters, r)]
        failed_from = len(batch)
        if wanted:
            result, raised = _invoke(self.function, {"Records": wanted})
            reported = _failed_ids(result) if self.report_failures and not raised else set()
            if raised or reported is None:
                failed_from = 0
            elif reported:
                # Lambda checkpoints before the first failed sequence number and retries from there.
                failed_from = min(
                    i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in reported
                )
        self.attempts = self.attempts + 1 if failed_from < len(batch) else 0
        if self.attempts >= self.max_attempts:
            log.error(
                "%s: giving up on %d stream records after %d attempts",
                self.name,
                len(batch) - failed_from,
                self.attempts,
            )
            failed_from, self.attempts = len(batch), 0
        elif self.attempts:
            self.stopping.wait(1)
        self.processed += failed_from
        if failed_from and self.trim is not None:
            self.trim(self.stream_arn, int(batch[failed_from - 1]["dynamodb"]["SequenceNumber"]))
        del self.pending[:failed_from]
        return len(batch)

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        record = _json_safe(record)
        record.update(eventSourceARN=self.stream_arn, awsRegion=REGION, eventSource="aws:dynamodb")
        record.setdefault("eventVersion", "1.1")
        return record


# ------------------------------------------------------------------ schedules


def _rate_seconds(expression: str) -> float | None:
    found = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not found:
        return None
    unit = {"minute": 60, "hour": 3600, "day": 86400}[found.group(2).rstrip("s")]
    return int(found.group(1)) * unit


def scheduled_event(spec: FunctionSpec, event_name: str, props: dict[str, Any], moment: datetime) -> Any:
    """What EventBridge sends for a Schedule/ScheduleV2 event (or the event's fixed Input)."""
    if props.get("Input"):
        return json.loads(props["Input"])
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events" if props.get("_type") != "ScheduleV2" else "aws.scheduler",
        "account": ACCOUNT_ID,
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [
            f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{STACK_NAME}-{spec.logical_id}{event_name}"
        ],
        "detail": {},
    }


def schedule_events(spec: FunctionSpec) -> dict[str, dict[str, Any]]:
    """The function's enabled Schedule/ScheduleV2 events, each tagged with its type."""
    found = {}
    for name, event in spec.events_of("Schedule", "ScheduleV2").items():
        props = dict(event.get("Properties") or {})
        if props.get("Enabled") is False or props.get("State") == "DISABLED":
            continue
        props["_type"] = event["Type"]
        props["Schedule"] = props.get("Schedule") or props.get("ScheduleExpression", "")
        found[name] = props
    return found


class RatePoller(Poller):
    """Fires one template schedule every N seconds (COHORTCAST_LOCAL_SCHEDULE_SECONDS overrides)."""

    def __init__(self, function: LocalFunction, event_name: str, props: dict[str, Any]) -> None:
        super().__init__(f"schedule:{function.spec.logical_id}.{event_name}")
        self.function, self.event_name, self.props = function, event_name, props
        override = os.environ.get("COHORTCAST_LOCAL_SCHEDULE_SECONDS")
        rate = _rate_seconds(props["Schedule"])
        if not override and rate is None:
            log.warning("%s: %s is not a rate(); fired every 60 s locally", self.name, props["Schedule"])
        self.interval = float(override) if override else rate or 60.0
        self.next_run = time.monotonic() + self.interval

    def run(self) -> None:  # not part of drain: schedules are time-driven, not work queues
        while not self.stopping.wait(max(0.0, self.next_run - time.monotonic())):
            self.next_run = time.monotonic() + self.interval
            _invoke(
                self.function,
                scheduled_event(self.function.spec, self.event_name, self.props, datetime.now(UTC)),
            )


# ------------------------------------------------------------------ EventBridge Scheduler (run time)


def _at_time(expression: str, timezone: str | None) -> datetime | None:
    found = re.fullmatch(r"at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)", expression.strip())
    if not found:
        return None
    return datetime.fromisoformat(found.group(1)).replace(tzinfo=ZoneInfo(timezone or "UTC"))


class OneTimeSchedules(Poller):
    """Runs `at(...)` schedules our code creates with the scheduler API once they are due."""

    idle_sleep = 1.0

    def __init__(self, functions: dict[str, LocalFunction], client: Callable[[str], Any]) -> None:
        super().__init__("scheduler")
        self.functions = functions
        self.client = client
        self.lock = threading.Lock()
        self.fired: set[tuple[str, str, str]] = set()

    def poll_once(self) -> int:
        self.fire_due(datetime.now(UTC))
        return 0  # never counts as pending work for drain: future schedules are not "work"

    def fire_due(self, now: datetime, function_id: str | None = None) -> list[dict[str, Any]]:
        """Fire every due schedule (only those targeting `function_id` when given)."""
        scheduler = self.client("scheduler")
        fired = []
        with self.lock:
            for summary in scheduler.list_schedules(State="ENABLED").get("Schedules", []):
                group = summary.get("GroupName") or "default"
                schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=group)
                due_at = _at_time(schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone"))
                key = (group, schedule["Name"], schedule["ScheduleExpression"])
                target = schedule["Target"]
                if due_at is None or due_at > now or key in self.fired:
                    continue
                if function_id and _lambda_name(target["Arn"]) != function_id:
                    continue
                self.fired.add(key)
                fired.append({"schedule": schedule["Name"], "result": self._deliver(target)})
                if schedule.get("ActionAfterCompletion") == "DELETE":
                    scheduler.delete_schedule(Name=schedule["Name"], GroupName=group)
        return fired

    def _deliver(self, target: dict[str, Any]) -> Any:
        arn, payload = target["Arn"], target.get("Input") or "{}"
        if ":sqs:" in arn:
            sqs = self.client("sqs")
            url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]
            return sqs.send_message(QueueUrl=url, MessageBody=payload)["MessageId"]
        if ":sns:" in arn:
            return self.client("sns").publish(TopicArn=arn, Message=payload)["MessageId"]
        function = self.functions.get(_lambda_name(arn) or "")
        if function is None:
            log.error("schedule target %s is not a local function", arn)
            return None
        result, _ = _invoke(function, json.loads(payload))
        return result


def _lambda_name(arn: str) -> str | None:
    if ":function:" not in arn:
        return None
    return arn.split(":function:", 1)[1].split(":", 1)[0]


# ------------------------------------------------------------------ assembly


def build_pollers(
    functions: dict[str, LocalFunction],
    resources: Resources,
    client: Callable[[str], Any],
    trim_stream: Callable[[str, int], int] | None = None,
) -> list[Poller]:
    pollers: list[Poller] = []
    sqs, streams = client("sqs"), client("dynamodbstreams")
    for function in functions.values():
        if function.handler is None:
            continue
        for event in function.spec.events.values():
            props = resources.resolve(event.get("Properties") or {})
            if props.get("Enabled") is False:
                continue
            if event.get("Type") == "SQS":
                pollers.append(SqsPoller(function, props, sqs))
            elif event.get("Type") == "DynamoDB":
                pollers.append(StreamPoller(function, props, streams))
        for name, props in schedule_events(function.spec).items():
            pollers.append(RatePoller(function, name, props))
    # Processed records are dropped only from a stream with one consumer: another might not
    # have read them yet.
    consumers = Counter(p.stream_arn for p in pollers if isinstance(p, StreamPoller))
    for poller in pollers:
        if isinstance(poller, StreamPoller) and consumers[poller.stream_arn] == 1:
            poller.trim = trim_stream
    return pollers
