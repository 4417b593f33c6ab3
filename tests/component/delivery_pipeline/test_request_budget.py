"""The AWS request budget of email delivery: five non-SES requests per 50-recipient chunk."""

from __future__ import annotations

from collections import Counter

import boto3

from cohortcast.delivery.consumer import deliver_email_body
from cohortcast.storage import aws as storage_aws
from tests.component.delivery_pipeline.conftest import NOW, chunk_body, no_sleep, users


def test_a_chunk_of_50_costs_at_most_5_non_ses_requests_counters_included(world, ses):
    world.add_users(users(200))
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: object) -> None:
        calls[event_name.split(".", 1)[1]] += 1

    boto3._get_default_session().events.register("before-call", count)
    storage_aws.reset()  # clients copy the session's handlers when built: build them again
    try:
        for start in range(0, 200, 50):
            body = chunk_body([f"u{i}" for i in range(start, start + 50)], chunk_id=f"c{start}")
            deliver_email_body(body, now=NOW, ports=world.ports(), ses=ses, sleep=no_sleep)
    finally:
        boto3._get_default_session().events.unregister("before-call", count)
    non_ses = sum(n for name, n in calls.items() if not name.startswith("sesv2"))
    secret_reads = calls["secrets-manager.GetSecretValue"]
    assert len(world.sent()) == 200
    # per chunk: profiles BatchGet, preferences+suppression BatchGet, claims (50 records + 50
    # preferences updates + 2 counter items do not fit one 100-item transaction: two), outcomes
    # (50 records + 2 counter items: one); the counters ride in those transactions. Plus the
    # secret once per container.
    assert calls["dynamodb.TransactWriteItems"] == 3 * 4, calls
    assert non_ses - secret_reads <= 5 * 4, calls
    assert secret_reads <= 2
    assert world.counters.total == {"in_doubt": 0, "sent": 200}
