"""sweep_reads_per_due_user: items read by one scheduled evaluation run, at 10k and at 100k profiles.

Profiles and their per-user membership state (segment set, `due_at` from the real
`evaluation.decide`, membership items) are put straight into moto's backend: 100k items
through BatchWriteItem would take minutes and measure nothing. The state items are built
exactly as the real path writes them; that is checked first on a few users evaluated
through boto3. The run at `now` is chosen so that 1% of the profiles are due
(`due_at <= now`, the users whose memberships can change because time passed), and the
measured sweep is the evaluate function's schedule handler through boto3, counted by
`bench.aws_counter`.
"""

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.aws_counter import counting
from bench.emulated_aws import backend_table, bulk_put, emulated_aws, scaled_dynamodb, typed, typed_item
from bench.results import Figure
from cohortcast.clock import epoch_day, isoformat
from cohortcast.profiles.behaviour import epoch_hour
from cohortcast.storage.profiles import Behaviour, ProfileRecord

SIZES = (10_000, 100_000)
DUE_SHARE = 0.01
SEEDED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # when the stored memberships were decided
CHECKED_THROUGH_BOTO3 = 20  # users whose items come from the real path, to check the bulk items
# A workspace's usual mix: time-based templates (windows, last seen) next to a trait rule.
TEMPLATES = ["at_risk", "active_users", "churned", "engaged_reporters", "dormant_paying"]


def synthetic_profiles(count: int, seed: int = 5) -> list[ProfileRecord]:
    rng = random.Random(seed)
    today = epoch_day(SEEDED_AT)
    profiles = []
    for i in range(count):
        last_seen = SEEDED_AT - timedelta(seconds=rng.randint(60, 60 * 86400))
        last_day, last_hour = epoch_day(last_seen), epoch_hour(last_seen)
        hourly: dict[str, dict[int, int]] = {"login": {last_hour: 1}}
        for day in rng.sample(range(today - 44, last_day + 1), max(0, min(8, last_day - today + 45))):
            hour = min(day * 24 + rng.randint(7, 20), last_hour)
            hourly["login"][hour] = hourly["login"].get(hour, 0) + rng.randint(1, 3)
            if rng.random() < 0.3:
                hourly.setdefault("report_viewed", {})[hour] = 1
        profiles.append(
            ProfileRecord(
                pk=f"U#user-{i}",
                user_id=f"user-{i}",
                anonymous_id=None,
                traits={"plan": rng.choice(["free", "pro", "enterprise"]), "email": f"user-{i}@example.com"},
                first_seen=last_seen - timedelta(days=rng.randint(1, 400)),
                last_seen=last_seen,
                behaviour=Behaviour(hourly=hourly),
                created_at="2026-01-01T00:00:00.000Z",
                updated_at=isoformat(last_seen),
                version=1,
            )
        )
    return profiles


def _state_item(record: ProfileRecord, segments: list[str], due_at: datetime | None) -> dict[str, Any]:
    """The item `storage.segments.update_state` leaves after a first evaluation."""
    from cohortcast.storage import keys

    item: dict[str, Any] = {
        "pk": keys.membership_state_pk(record.pk),
        "sk": keys.MEMBERSHIP_STATE_SK,
        "updated_at": isoformat(SEEDED_AT),
        "profile_version": record.version,
    }
    if segments:
        item["segments"] = set(segments)
    if due_at is not None:
        item["due_pk"] = keys.sweep_due_pk(keys.shard_of(record.pk, keys.SWEEP_SHARDS))
        item["due_at"] = isoformat(due_at)
    return item


def _member_item(record: ProfileRecord, segment_id: str) -> dict[str, Any]:
    """The membership item of `storage.segments.apply_change` for an enter."""
    from cohortcast.storage import keys

    return {
        "pk": keys.segment_member_pk(segment_id, keys.shard_of(record.pk, keys.MEMBER_SHARDS)),
        "sk": record.pk,
        "entered_at": isoformat(SEEDED_AT),
        "reason": "backfill",
        "user_id": record.user_id,
    }


def _stored(table_name: str, pk: str, sk: str) -> dict[str, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    item = backend_table(table_name).get_item(DynamoType({"S": pk}), DynamoType({"S": sk}))
    attributes = item.to_json()["Attributes"]
    return {name: {"SS": sorted(v["SS"])} if "SS" in v else v for name, v in attributes.items()}


def _define_segments() -> list[str]:
    from cohortcast.segments.templates import TEMPLATES as KNOWN
    from cohortcast.storage import segments as segment_store
    from cohortcast.storage.segments import SegmentDefinition

    ids = []
    for template_id in TEMPLATES:
        template = KNOWN[template_id]
        definition = SegmentDefinition(
            segment_id=f"seg_{template_id}",
            name=template.title,
            kind="dynamic",
            rule=template.build(template.params),
            template=template_id,
        )
        segment_store.save_definition(definition)
        ids.append(definition.segment_id)
    return ids


def _populate(profiles: list[ProfileRecord]) -> tuple[list[datetime], dict[str, int]]:
    """Store the profiles, their state and memberships as of SEEDED_AT; return every due_at."""
    from cohortcast.config import get_settings
    from cohortcast.segments import evaluation
    from cohortcast.segments.registry import get_registry, invalidate
    from cohortcast.storage import keys
    from cohortcast.storage import profiles as profile_store
    from cohortcast.storage import segments as segment_store

    settings = get_settings()
    invalidate()  # the definitions just created
    registry = get_registry()
    sizes: dict[str, int] = dict.fromkeys(registry.compiled, 0)
    # The real path for the first few users (PutItem, TransactWriteItems, UpdateItem)...
    checked = profiles[:CHECKED_THROUGH_BOTO3]
    for record in checked:
        record.version = 0  # save() writes version 1, as the bulk-loaded profiles have
        profile_store.save(record)
    evaluation.evaluate_records(checked, registry, SEEDED_AT, "backfill")
    profile_items, state_items, member_items, due = [], [], [], []
    for n, record in enumerate(profiles):
        outcome = evaluation.decide(record, set(), registry, SEEDED_AT)
        for segment_id in outcome.entered:
            sizes[segment_id] += 1
        if outcome.due_at is not None:
            due.append(outcome.due_at)
        state = _state_item(record, outcome.entered, outcome.due_at)
        members = [_member_item(record, s) for s in outcome.entered]
        if n < CHECKED_THROUGH_BOTO3:  # ...must leave exactly the items the bulk load writes
            assert typed_item(profile_store.to_item(record)) == _stored(
                settings.profiles_table, record.pk, keys.PROFILE_SK
            ), record.pk
            stored = _stored(settings.data_table, state["pk"], state["sk"])
            assert typed_item(state) == stored | {"updated_at": typed(state["updated_at"])}, (state, stored)
            for member in members:
                stored = _stored(settings.data_table, member["pk"], member["sk"])
                assert typed_item(member) == stored | {"entered_at": typed(member["entered_at"])}, stored
            continue
        profile_items.append(profile_store.to_item(record))
        state_items.append(state)
        member_items.extend(members)
    bulk_put(settings.profiles_table, profile_items)
    bulk_put(settings.data_table, state_items + member_items)
    for segment_id, size in sizes.items():
        segment_store.set_size(segment_id, size)
    return due, sizes


def _sweep_once(total: int) -> dict[str, Any]:
    from cohortcast.segments import registry
    from cohortcast.workspace import service as workspace
    from functions.evaluate.app import lambda_handler
    from local.lambda_context import LambdaContext

    with emulated_aws(), scaled_dynamodb():
        _define_segments()
        profiles = synthetic_profiles(total)
        due, sizes = _populate(profiles)
        due.sort()
        target = int(total * DUE_SHARE)
        now = due[target - 1]  # exactly the first 1% of users (by due_at) are due at `now`
        due_users = sum(1 for d in due if d <= now)
        event = {
            "version": "0",
            "id": "bench-sweep",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": isoformat(now),
            "detail": {},
        }
        context = LambdaContext(function_name="EvaluateFunction", memory_limit_in_mb=1024)
        registry.invalidate()  # runs are 15 minutes apart: the definitions cache has expired
        # The settings read while populating stay cached for the run, as in a warm container: at
        # 100k items moto takes longer than their 30 s, and a counted figure must not depend on it.
        workspace._cache.clock = lambda: 0.0
        try:
            with counting() as counts:
                result = lambda_handler(event, context)
        finally:
            workspace._cache.clock = time.monotonic
    assert result["evaluated"] == due_users and not result["continued"], (result, due_users)
    return {
        "profiles": total,
        "due_users": due_users,
        "items_read": counts.items_read,
        "reads_per_due_user": counts.items_read / due_users,
        "requests": dict(counts.requests),
        "entered": result["entered"],
        "exited": result["exited"],
        "sizes_before": sizes,
        "now": isoformat(now),
    }


def run() -> list[Figure]:
    runs = [_sweep_once(total) for total in SIZES]
    small, large = runs
    per_user = large["reads_per_due_user"]
    # Independent of the total: 10× the profiles may not cost more reads per due user.
    independent = per_user <= small["reads_per_due_user"] * 1.05
    return [
        Figure(
            "sweep_reads_per_due_user[10k]",
            small["reads_per_due_user"],
            "items/due user",
            "<= 3",
            small["reads_per_due_user"] <= 3,
            small,
        ),
        Figure(
            "sweep_reads_per_due_user",
            per_user,
            "items/due user",
            "<= 3 at 100k, not above 10k",
            per_user <= 3 and independent,
            {"runs": runs},
        ),
    ]
