"""cost_per_million: $ per 1M events ingested and per 1M emails delivered (SES's own price excluded).

Computed from the counted figures of the same run (ingest, fanout) and AWS list prices for
us-east-1, on-demand, without free tiers. The prices below are the published list prices as
known on PRICES_TAKEN; re-check them on the AWS pricing pages before relying on the result.
Lambda duration comes from the handler time measured in this run against moto in-process:
it includes moto's own work (DynamoDB and SES emulation) and excludes real network waits, so
it is an estimate of the right order, not a measurement of AWS.
"""

from typing import Any

from bench.results import Figure

PRICES_TAKEN = "2026-11-23 (list prices unchanged since the DynamoDB on-demand cut of 2024-11-01)"
PRICES = {  # USD, us-east-1
    "dynamodb_write_request_unit": 0.625 / 1e6,  # on-demand WRU
    "dynamodb_read_request_unit": 0.125 / 1e6,  # on-demand RRU
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second": 0.0000166667,  # x86_64 (template.yaml: Architectures [x86_64])
    "http_api_request": 1.00 / 1e6,  # API Gateway HTTP API, first 300M/month, per 512 KB
    "sqs_standard_request": 0.40 / 1e6,  # per 64 KB chunk
    "sqs_fifo_request": 0.50 / 1e6,
    "sns_publish_request": 0.50 / 1e6,  # each PublishBatch entry bills as one request (64 KB)
    "sns_to_sqs_delivery": 0.0,  # SNS → SQS deliveries are free
    "eventbridge_scheduler_invocation": 1.00 / 1e6,
    "secrets_manager_api_call": 0.05 / 10_000,
}
MEMORY_GB = {  # template.yaml
    "authorizer": 0.25,
    "ingest": 1.0,
    "publish": 0.5,
    "deliver_email": 1.0,
}


def _figure(figures: list[Figure], name: str) -> Figure:
    return next(f for f in figures if f.name == name)


def per_million_events(ingest_wru: Figure, ingest_requests: Figure) -> dict[str, Any]:
    detail = ingest_requests.detail
    events = ingest_wru.detail["events"]
    scale = 1e6 / events
    invocations = detail["batches"] * scale  # one HTTP request per Segment batch of 100 messages
    lines = {
        "api_gateway_http": invocations * PRICES["http_api_request"],
        # the authorizer runs on every request (no identity source, so no caching); ~5 ms billed
        "lambda_authorizer": invocations
        * (PRICES["lambda_request"] + 0.005 * MEMORY_GB["authorizer"] * PRICES["lambda_gb_second"]),
        "lambda_ingest": invocations
        * (
            PRICES["lambda_request"]
            + detail["handler_seconds_per_batch"] * MEMORY_GB["ingest"] * PRICES["lambda_gb_second"]
        ),
        "dynamodb_writes": ingest_wru.detail["write_units"] * scale * PRICES["dynamodb_write_request_unit"],
        "dynamodb_reads": detail["read_units"] * scale * PRICES["dynamodb_read_request_unit"],
    }
    return {
        "usd": sum(lines.values()),
        "lines": lines,
        "assumptions": {
            "messages_per_request": events / detail["batches"],
            "ingest_handler_seconds_per_batch": detail["handler_seconds_per_batch"],
            "authorizer_seconds": 0.005,
            "not_included": "real-time evaluation of the changed profiles (stream → evaluate), "
            "CloudWatch Logs/metrics, X-Ray; see docs/scaling.md",
        },
    }


def per_million_emails(fanout: Figure) -> dict[str, Any]:
    detail = fanout.detail
    scale = 1e6 / detail["recipients"]
    requests = detail["requests"]
    seconds, invocations = detail["handler_seconds"], detail["invocations"]
    lambda_usd = sum(
        invocations[stage] * PRICES["lambda_request"]
        + seconds[stage] * MEMORY_GB.get(stage, 0.5) * PRICES["lambda_gb_second"]
        for stage in ("publish", "deliver_email")
    )
    polls = detail["sqs_poller_requests_not_counted"]
    lines = {
        "dynamodb_writes": detail["write_units"] * PRICES["dynamodb_write_request_unit"],
        "dynamodb_reads": detail["read_units"] * PRICES["dynamodb_read_request_unit"],
        "lambda_publish_and_deliver": lambda_usd,
        "sns_publish": detail["chunks"] * PRICES["sns_publish_request"],
        # publish-queue pages (FIFO), the chunks SNS puts on the email queue, and the pollers'
        # receives and deletes
        "sqs": requests.get("sqs.SendMessage", 0) * PRICES["sqs_fifo_request"]
        + (detail["chunks"] + sum(polls.values())) * PRICES["sqs_standard_request"],
        "secrets_manager": requests.get("secretsmanager.GetSecretValue", 0)
        * PRICES["secrets_manager_api_call"],
        "api_gateway_http": PRICES["http_api_request"],  # the one create request
    }
    lines = {name: usd * scale for name, usd in lines.items()}
    return {
        "usd": sum(lines.values()),
        "lines": lines,
        "assumptions": {
            "handler_seconds_per_1k_emails": {s: seconds[s] for s in ("publish", "deliver_email")},
            "excluded": "SES ($0.10 per 1,000 emails), SES events → SNS → feedback, CloudWatch, X-Ray",
        },
    }


def run_from(figures: list[Figure]) -> list[Figure]:
    events = per_million_events(
        _figure(figures, "ingest_wru_per_event"), _figure(figures, "ingest_requests_per_event")
    )
    emails = per_million_emails(_figure(figures, "fanout_requests_per_1k"))
    prices = {"taken": PRICES_TAKEN, "region": "us-east-1", "usd": PRICES, "lambda_memory_gb": MEMORY_GB}
    return [
        Figure(
            "cost_per_million[events]",
            events["usd"],
            "$ / 1M events",
            "report",
            None,
            events | {"prices": prices},
        ),
        Figure(
            "cost_per_million[emails]",
            emails["usd"],
            "$ / 1M emails (ex. SES)",
            "report",
            None,
            emails | {"prices": prices},
        ),
    ]


def run() -> list[Figure]:
    from bench import fanout, ingest

    return run_from(ingest.run() + fanout.run())
