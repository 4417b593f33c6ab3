"""Announcements as the API and the deliverer see them: create (or dry-run), read, list, cancel."""

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from ulid import ULID

from cohortcast.announcements import audience as snapshot
from cohortcast.announcements import bus
from cohortcast.announcements.models import (
    Announcement,
    AnnouncementPage,
    AnnouncementRequest,
    AnnouncementSummary,
    AnnouncementView,
    Audience,
    ChannelEstimate,
    Counts,
    DryRun,
    SegmentCounts,
)
from cohortcast.announcements.publish import STALL_AFTER
from cohortcast.clock import isoformat
from cohortcast.config import get_settings
from cohortcast.errors import Conflict, NotFound, Unprocessable
from cohortcast.storage import announcements as store
from cohortcast.storage import segments as segment_store
from cohortcast.workspace import service as workspace

MAX_SCHEDULE_AHEAD = timedelta(days=366)
DRY_RUN_MAX_PAGES = 40  # 20,000 members read at most by a dry run in the API
DRY_RUN_SAMPLE = 1_000  # profiles read to estimate channel reachability


# -- reading -----------------------------------------------------------------------------------


def get_announcement(announcement_id: str) -> Announcement:
    """The announcement (no counts). Raises NotFound. The deliverer caches it per container."""
    document = store.get_announcement(announcement_id)
    if document is None:
        raise NotFound(f"no announcement with id {announcement_id!r}", code="announcement_not_found")
    return Announcement.model_validate(document)


def get_view(announcement_id: str) -> AnnouncementView:
    announcement = get_announcement(announcement_id)
    total, by_segment = store.get_counts(announcement_id)
    targeted = announcement.audience.segments
    segments = [
        SegmentCounts(segment_id=s, counts=Counts.from_counters(by_segment.get(s, {}))) for s in targeted
    ]
    return AnnouncementView(
        **announcement.model_dump(), counts=Counts.from_counters(total), segments=segments
    )


def list_page(limit: int, cursor: str | None) -> AnnouncementPage:
    documents, next_cursor = store.list_announcements(limit, cursor)
    return AnnouncementPage(
        announcements=[AnnouncementSummary.model_validate(d) for d in documents], next_cursor=next_cursor
    )


# -- validation --------------------------------------------------------------------------------


def validate_request(request: AnnouncementRequest, now: datetime) -> Audience:
    """Every check that can fail before anything is stored; 422 naming the field (or 404 segment)."""
    from cohortcast.announcements.render import validate_body  # lazy: Jinja, Markdown and nh3 load only to check a new announcement

    validate_body(request.body, request.title)
    if request.send_at is not None and request.local_time is not None:
        raise Unprocessable(
            "give either send_at (one UTC moment) or local_time (each recipient's time), not both",
            [{"pointer": "/local_time", "message": "not with send_at"}],
        )
    if request.send_at is not None:
        if request.send_at <= now:
            raise Unprocessable(
                "send_at must be in the future (UTC); omit it to send now",
                [{"pointer": "/send_at", "message": "in the past"}],
            )
        if request.send_at - now > MAX_SCHEDULE_AHEAD:
            raise Unprocessable("send_at is more than a year ahead", [{"pointer": "/send_at"}])
    audience = request.audience
    if audience is None or (not audience.segments and audience.rule is None):
        raise Unprocessable(
            "an announcement needs an audience: audience.segments or audience.rule",
            [{"pointer": "/audience", "message": "no audience"}],
            code="no_audience",
        )
    if audience.segments and audience.rule is not None:
        raise Unprocessable(
            "give either audience.segments or audience.rule, not both", [{"pointer": "/audience/rule"}]
        )
    referenced = [("/audience/segments", s) for s in audience.segments]
    referenced += [("/audience/exclude_segments", s) for s in audience.exclude_segments]
    if audience.rule is not None:
        referenced += [("/audience/rule", s) for s in _parse_rule_references(audience.rule)]
    for pointer, segment_id in referenced:
        if segment_store.get_definition(segment_id) is None:
            raise Unprocessable(
                f"unknown segment {segment_id!r}",
                [{"pointer": pointer, "message": "unknown segment", "segment_id": segment_id}],
                code="unknown_segment",
            )
    return audience


def _parse_rule_references(raw: dict[str, Any]) -> set[str]:
    from cohortcast.segments.rules import parse_rule, referenced_segments

    try:
        rule = parse_rule(raw, max_window_days=workspace.retention_days())
    except Unprocessable as exc:
        details = [
            {**d, "pointer": "/audience/rule" + d.get("pointer", "")}
            for d in (exc.details or [])
            if isinstance(d, dict)
        ]
        raise Unprocessable(f"audience.rule: {exc.message}", details, code=exc.code) from exc
    return referenced_segments(rule)


# -- creating ----------------------------------------------------------------------------------


def new_announcement_id(now: datetime) -> str:
    return f"ann_{ULID.from_datetime(now)}"


def create(request: AnnouncementRequest, now: datetime) -> AnnouncementView:
    """Store it, then schedule it (send_at) or queue its first publish page (now)."""
    audience = validate_request(request, now)
    scheduled = request.send_at is not None
    announcement = Announcement(
        id=new_announcement_id(now),
        title=request.title,
        body=request.body,
        topic=request.topic,
        channels=request.channels,
        priority=request.priority,
        status="scheduled" if scheduled else "publishing",
        audience=audience,
        send_at=isoformat(request.send_at) if request.send_at else None,
        local_time=request.local_time,
        created_at=isoformat(now),
        published_at=None if scheduled else isoformat(now),
    )
    # An immediate one is `publishing` from here: if queueing page 0 below never happens (a
    # crash, SQS unavailable), the stalled-publishing sweep queues it after STALL_AFTER.
    store.put_announcement(
        announcement.model_dump(mode="json"),
        stall_check_at=None if scheduled else isoformat(now + STALL_AFTER),
    )
    if request.send_at is not None:
        try:
            bus.create_schedule(announcement.id, request.send_at)
        except Exception:
            # Never leave a "scheduled" announcement that nothing will ever publish.
            store.move_status(announcement.id, ("scheduled",), "cancelled", {"cancelled_at": isoformat(now)})
            raise
    else:
        bus.enqueue_page(announcement.id, 0, None)
    return get_view(announcement.id)


def create_idempotent(
    request: AnnouncementRequest, now: datetime, key: str, context: Any = None
) -> dict[str, Any]:
    """`create` under Powertools idempotency: same key + same body → the first response again;
    same key + another body → 422; same key while the first is still running → 409."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    config = IdempotencyConfig(
        event_key_jmespath="key", payload_validation_jmespath="request", expires_after_seconds=24 * 3600
    )
    if context is not None:
        config.register_lambda_context(context)

    def _create(data: dict[str, Any]) -> dict[str, Any]:
        return create(request, now).model_dump(mode="json")

    guarded = idempotent_function(
        data_keyword_argument="data", persistence_store=_persistence(DynamoDBPersistenceLayer), config=config
    )(_create)
    try:
        return guarded(data={"key": key, "request": request.model_dump(mode="json")})
    except IdempotencyValidationError as exc:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request body",
            [{"in": "header", "pointer": "/Idempotency-Key"}],
            code="idempotency_key_reused",
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise Conflict(
            "a request with this Idempotency-Key is still being processed; retry shortly",
            code="idempotency_in_progress",
        ) from exc


_persistence_layer: Any = None


def _persistence(layer_type: Any) -> Any:
    """Built on first use (not at import), then reused by the container."""
    global _persistence_layer
    if _persistence_layer is None or _persistence_layer.table_name != get_settings().idempotency_table:
        _persistence_layer = layer_type(table_name=get_settings().idempotency_table)
    return _persistence_layer


# -- dry run -----------------------------------------------------------------------------------


def dry_run(request: AnnouncementRequest, now: datetime) -> DryRun:
    """Audience size per segment and per channel, with skip reasons; nothing is stored."""
    audience = validate_request(request, now)
    by_segment: Counter[str | None] = Counter()
    sample: list[str] = []
    complete = False
    for pages_read, page in enumerate(snapshot.iter_snapshot(audience, now), start=1):
        for user_id, segment_id in page:
            by_segment[segment_id] += 1
            if len(sample) < DRY_RUN_SAMPLE:
                sample.append(user_id)
        if pages_read >= DRY_RUN_MAX_PAGES:
            break
    else:
        complete = True
    total = sum(by_segment.values())
    channels = _channel_estimates(sample, request, request.send_at or now)
    sampled = len(sample) < total
    if sampled:
        scale = total / len(sample)
        channels = {
            name: ChannelEstimate(
                reachable=round(e.reachable * scale),
                skipped={k: round(v * scale) for k, v in e.skipped.items()},
                deferred={k: round(v * scale) for k, v in e.deferred.items()},
            )
            for name, e in channels.items()
        }
    notes = []
    if not complete:
        notes.append(
            f"stopped after {DRY_RUN_MAX_PAGES * snapshot.PAGE_SIZE} members; the size is a lower bound"
        )
    if sampled:
        notes.append(f"channel figures extrapolated from the first {len(sample)} recipients")
    return DryRun(
        audience_size=total,
        by_segment={s: n for s, n in by_segment.items() if s is not None},
        channels=channels,
        sampled=sampled,
        sample_size=len(sample),
        notes=notes,
    )


def _channel_estimates(
    user_ids: list[str], request: AnnouncementRequest, when: datetime
) -> dict[str, ChannelEstimate]:
    """What the deliverer's policy would decide for each sampled recipient at `when` (the send
    time), from the same reads it makes: profiles (addresses, timezone), preferences and the
    suppression list (one `BatchGetItem` per 100 keys)."""
    from cohortcast.delivery import policy
    from cohortcast.delivery.chunk import find_address
    from cohortcast.delivery.email import EmailChannel
    from cohortcast.delivery.sns import SnsChannel
    from cohortcast.storage import delivery as delivery_store
    from cohortcast.storage import keys
    from cohortcast.storage import profiles as profile_store
    from cohortcast.workspace.service import get_workspace_settings

    settings = get_workspace_settings()
    profiles = profile_store.get_many(keys.profile_pk(user_id=u) for u in user_ids)
    traits: dict[str, dict[str, Any]] = {}
    for user_id in user_ids:
        record = profiles.get(keys.profile_pk(user_id=user_id))
        traits[user_id] = dict(record.traits) if record and isinstance(record.traits, dict) else {}
    channels = {
        name: EmailChannel(settings=settings, now=when) if name == "email" else SnsChannel(name=name)
        for name in request.channels
    }
    found_addresses = {
        (c, u): find_address(channel, traits[u]) for c, channel in channels.items() for u in user_ids
    }
    addresses = {pair: address for pair, (address, _) in found_addresses.items()}
    hashes = {
        pair: channels[pair[0]].suppression_hash(address) if address else None
        for pair, address in addresses.items()
    }
    found = delivery_store.batch_get(
        [delivery_store.preferences_key(u) for u in user_ids]
        + [delivery_store.suppression_key(h) for h in hashes.values() if h]
    )
    cap = (settings.frequency_cap.count, settings.frequency_cap.days) if settings.frequency_cap else None
    estimates = {}
    for name, channel in channels.items():
        reachable, skipped, deferred = 0, Counter[str](), Counter[str]()
        rules = policy.Rules(
            announcement_id="dry-run",
            topic=request.topic,
            critical=request.priority == "critical",
            cancelled=False,
            cap=cap,
            quiet_hours=tuple(settings.quiet_hours) if settings.quiet_hours else None,  # type: ignore[arg-type]
            default_timezone=settings.default_timezone,
            opt_outs_apply=channel.opt_outs_apply,
            first_planned_at=when,
            local_time=request.local_time,
        )
        for user_id in user_ids:
            prefs = delivery_store.preferences_from_item(
                user_id, found.get(_pair(delivery_store.preferences_key(user_id)))
            )
            address_hash = hashes[(name, user_id)]
            suppressed = bool(address_hash) and _pair(delivery_store.suppression_key(address_hash)) in found  # type: ignore[arg-type]
            audience = policy.Audience.of(
                addresses[(name, user_id)],
                suppressed,
                prefs,
                traits[user_id],
                address_problem=found_addresses[(name, user_id)][1],
            )
            decision = policy.decide(rules, audience, when)
            if decision.action == policy.SKIP:
                skipped[decision.reason or "unknown"] += 1
                continue
            reachable += 1
            if decision.action == policy.DEFER:
                deferred[decision.reason or "unknown"] += 1
        estimates[name] = ChannelEstimate(reachable=reachable, skipped=dict(skipped), deferred=dict(deferred))
    return estimates


def _pair(key: dict[str, str]) -> tuple[str, str]:
    return (key["pk"], key["sk"])


# -- cancelling --------------------------------------------------------------------------------


def cancel(announcement_id: str, now: datetime) -> AnnouncementView:
    """Only a scheduled announcement can be cancelled; its schedule is deleted. 409 otherwise."""
    announcement = get_announcement(announcement_id)
    try:
        store.move_status(announcement_id, ("scheduled",), "cancelled", {"cancelled_at": isoformat(now)})
    except store.StatusConflict as exc:
        raise Conflict(
            f"announcement is {announcement.status}; only scheduled announcements can be cancelled",
            {"status": announcement.status},
            code="not_cancellable",
        ) from exc
    # After the status moved, a schedule that fires anyway finds "cancelled" and does nothing.
    bus.delete_schedule(announcement_id)
    return get_view(announcement_id)
