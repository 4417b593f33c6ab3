"""The AWS request budget of email delivery: a handful of non-SES requests per 50-recipient chunk."""

from __future__ import annotations

from collections import Counter

import boto3

from cohortcast.delivery.consumer import deliver_email_body
from tests.unit.delivery_pipeline.conftest import NOW, chunk_body, no_sleep, users


def test_a_chunk_of_50_costs_at_most_6_non_ses_requests_plus_counters(world, ses):
    world.add_users(users(200))
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: object) -> None:
        calls[event_name.split(".", 1)[1]] += 1

    boto3._get_default_session().events.register("before-call", count)
    try:
        for start in range(0, 200, 50):
            body = chunk_body([f"u{i}" for i in range(start, start + 50)], chunk_id=f"c{start}")
            deliver_email_body(body, now=NOW, ports=world.ports(), ses=ses, sleep=no_sleep)
    finally:
        boto3._get_default_session().events.unregister("before-call", count)
    non_ses = sum(n for name, n in calls.items() if not name.startswith("sesv2"))
    secret_reads = calls["secretsmanager.GetSecretValue"]
    assert len(world.sent()) == 200
    # per chunk: profiles BatchGet, preferences+suppression BatchGet, claims, outcomes; plus two
    # add_counts per chunk (stand-in here; one request each on AWS) and the secret once per container
    assert non_ses - secret_reads <= 4 * 4, calls
    assert world.counters.calls == 2 * 4
    assert secret_reads <= 2
