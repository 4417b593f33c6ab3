"""The shared DynamoDB request patterns: what is retried, what is a refusal, what is read."""

from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

from cohortcast.storage import dynamo

CANCELLED = "TransactionCanceledException"


def error(code, reasons=None, message="boom"):
    response = {"Error": {"Code": code, "Message": message}}
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": r} for r in reasons]
    return ClientError(response, "TransactWriteItems")


@pytest.mark.parametrize(
    ("err", "busy", "refused"),
    [
        (error(CANCELLED, ["None", "TransactionConflict"]), True, False),
        (error(CANCELLED, ["ThrottlingError", "None"]), True, False),
        (error(CANCELLED, ["ConditionalCheckFailed", "TransactionConflict"]), False, True),
        (error(CANCELLED, message="[ConditionalCheckFailed]"), False, True),
        (error("ProvisionedThroughputExceededException"), True, False),
        (error("ThrottlingException"), True, False),
        (error("ConditionalCheckFailedException"), False, True),
        (error("ValidationException"), False, False),
    ],
)
def test_a_conflict_or_throttle_is_busy_and_a_failed_condition_is_a_refusal(err, busy, refused):
    assert dynamo.busy(err) is busy
    assert dynamo.condition_failed(err) is refused


def test_a_busy_operation_is_retried_with_backoff_until_it_goes_through():
    answers = [error("ThrottlingException"), error(CANCELLED, ["TransactionConflict"]), "ok"]
    slept = []

    def operation():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert dynamo.retrying(operation, sleep=slept.append) == "ok"
    assert len(slept) == 2 and all(0 <= s <= 1.0 for s in slept)


def test_a_refusal_is_raised_at_once_and_a_lasting_conflict_after_the_last_attempt():
    calls, slept = [], []

    def refused():
        calls.append(1)
        raise error(CANCELLED, ["ConditionalCheckFailed"])

    with pytest.raises(ClientError):
        dynamo.retrying(refused, sleep=slept.append)
    assert len(calls) == 1 and slept == []

    def conflicting():
        calls.append(1)
        raise error("TransactionConflictException")

    with pytest.raises(ClientError):
        dynamo.retrying(conflicting, attempts=3, sleep=slept.append)
    assert len(calls) == 1 + 3 and len(slept) == 2


def test_a_conditional_write_answers_none_when_its_condition_does_not_hold():
    def refuse(**request):
        raise error("ConditionalCheckFailedException")

    def fail(**request):
        raise error("ValidationException")

    assert dynamo.conditional_write(refuse, Item={}) is None
    assert dynamo.conditional_write(lambda **request: {}, Item={}) == {}
    with pytest.raises(ClientError):
        dynamo.conditional_write(fail, Item={})


def test_batch_get_asks_each_key_once_100_at_a_time_and_asks_again_for_unprocessed_keys(monkeypatch):
    requests = []

    def batch_get_item(RequestItems):
        keys = RequestItems["T"]["Keys"]
        requests.append(RequestItems["T"])
        unprocessed = {"T": {**RequestItems["T"], "Keys": keys[-1:]}} if len(requests) == 1 else {}
        served = keys[:-1] if unprocessed else keys
        return {"Responses": {"T": [{**k, "found": True} for k in served]}, "UnprocessedKeys": unprocessed}

    monkeypatch.setattr(dynamo.aws, "dynamodb", lambda: SimpleNamespace(batch_get_item=batch_get_item))
    wanted = [{"pk": f"p{i}", "sk": "S"} for i in range(150)]

    found = dynamo.batch_get("T", wanted + wanted[:10], projection="sk", consistent=True)

    assert sorted(item["pk"] for item in found) == sorted(k["pk"] for k in wanted)
    assert [len(r["Keys"]) for r in requests] == [100, 1, 50]
    assert all(r["ProjectionExpression"] == "sk" and r["ConsistentRead"] is True for r in requests)


def test_the_ledger_drops_a_write_refused_in_a_conflicted_transaction_and_applies_the_rest(aws, monkeypatch):
    from cohortcast.storage import delivery as store

    sent = []

    def transact_write_items(TransactItems):
        sent.append(len(TransactItems))
        if len(sent) == 1:  # the first write's condition failed while a counter item conflicted
            raise error(CANCELLED, ["ConditionalCheckFailed", "None", "TransactionConflict"])
        return {}

    monkeypatch.setattr(store, "_client", lambda: SimpleNamespace(transact_write_items=transact_write_items))
    claims = [{**store.record_key(u, "ann_x", "email"), "state": "claimed"} for u in ("taken", "free")]
    writes = [
        store.LedgerWrite(
            items=[store.put(claim, "attribute_not_exists(pk)")], counts={("ann_x", None): {"in_doubt": 1}}
        )
        for claim in claims
    ]

    assert store.write_all(writes, sleep=lambda _s: None) == [writes[1]]
    assert sent == [3, 2]  # two records and their counter item, then the one left and the counter
