"""The DynamoDB request patterns every store shares, written once: a conditional write, a
transaction retried while it only conflicts or is throttled, and the BatchGetItem loop."""

import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from cohortcast.storage import aws

BATCH_GET_KEYS = 100  # what one BatchGetItem accepts
CONDITION_FAILED = "ConditionalCheckFailed"
TRANSACTION_ATTEMPTS = 5
# Throttling errors too: a throttled TransactWriteItems answers ThrottlingException.
_BUSY = frozenset(
    {"TransactionConflictException", "ProvisionedThroughputExceededException", "ThrottlingException"}
)


def batch_get(
    table_name: str,
    key_list: Iterable[Mapping[str, Any]],
    *,
    projection: str | None = None,
    consistent: bool = False,
) -> list[dict[str, Any]]:
    """The items of these keys that exist (in no particular order): duplicates asked once,
    ≤100 keys a request, unprocessed keys asked again until none remain."""
    unique = list({tuple(sorted(key.items())): dict(key) for key in key_list}.values())
    options: dict[str, Any] = {}
    if projection:
        options["ProjectionExpression"] = projection
    if consistent:
        options["ConsistentRead"] = True
    found: list[dict[str, Any]] = []
    for start in range(0, len(unique), BATCH_GET_KEYS):
        request: dict[str, Any] = {table_name: {"Keys": unique[start : start + BATCH_GET_KEYS], **options}}
        while request:
            response = aws.dynamodb().batch_get_item(RequestItems=request)
            found.extend(response["Responses"].get(table_name, []))
            request = response.get("UnprocessedKeys") or {}
    return found


def conditional_write(operation: Callable[..., dict[str, Any]], /, **request: Any) -> dict[str, Any] | None:
    """`operation(**request)` (a put_item, update_item or delete_item with a
    ConditionExpression); None when the condition did not hold, the response otherwise."""
    try:
        return operation(**request)
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise


def cancellation_codes(err: ClientError) -> list[str]:
    """The per-item reason codes of a cancelled transaction ("None" for items that were fine);
    empty when the error is no cancellation or (some emulators) names no reasons."""
    if err.response["Error"]["Code"] != "TransactionCanceledException":
        return []
    return [reason.get("Code") or "None" for reason in err.response.get("CancellationReasons") or []]


def condition_failed(err: ClientError) -> bool:
    """Whether a write or transaction was refused because a condition did not hold."""
    code = err.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return True
    if code != "TransactionCanceledException":
        return False
    codes = cancellation_codes(err)
    if not codes:  # no reasons given: the message still names the cause
        return CONDITION_FAILED in str(err)
    return CONDITION_FAILED in codes


def busy(err: ClientError) -> bool:
    """A conflict or throttling that is worth retrying: nothing was refused on its merits."""
    code = err.response["Error"]["Code"]
    return code in _BUSY or (code == "TransactionCanceledException" and not condition_failed(err))


def retrying(
    operation: Callable[[], Any],
    *,
    attempts: int = TRANSACTION_ATTEMPTS,
    sleep: Callable[[float], Any] | None = None,
    retry_if: Callable[[ClientError], bool] = busy,
) -> Any:
    """`operation()`, retried with jittered exponential backoff while it fails `retry_if`
    (`busy` unless given); any other error, or the last attempt's, is raised (nothing of it
    applied)."""
    for attempt in range(attempts):
        try:
            return operation()
        except ClientError as err:
            if not retry_if(err) or attempt + 1 == attempts:
                raise
            (sleep or time.sleep)(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
    raise RuntimeError("unreachable: the loop returns or raises")  # pragma: no cover


def transact(
    items: list[dict[str, Any]],
    *,
    client: Any = None,
    attempts: int = TRANSACTION_ATTEMPTS,
    sleep: Callable[[float], Any] | None = None,
    retry_if: Callable[[ClientError], bool] = busy,
) -> None:
    """TransactWriteItems, retried while it conflicts or is throttled (or fails `retry_if`).
    `client` is the low-level client (typed AttributeValues) unless given, e.g. the resource's
    (plain Python values)."""
    writer = client or aws.client("dynamodb")
    retrying(
        lambda: writer.transact_write_items(TransactItems=items),
        attempts=attempts,
        sleep=sleep,
        retry_if=retry_if,
    )
