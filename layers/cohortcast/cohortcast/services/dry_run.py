"""The dry-run estimate of an announcement: its audience now (announcements) and what the
deliverer's policy would decide for a sample of it (delivery). Nothing is stored."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cohortcast.announcements import audience as snapshot
from cohortcast.announcements.models import FANOUT_CHANNELS, AnnouncementRequest, parse_duration
from cohortcast.announcements.service import validate_request
from cohortcast.delivery import policy
from cohortcast.delivery.chunk import find_address
from cohortcast.delivery.email import EmailChannel
from cohortcast.delivery.sns import SnsChannel
from cohortcast.storage import delivery as delivery_store
from cohortcast.storage import keys
from cohortcast.storage import profiles as profile_store
from cohortcast.workspace.service import get_workspace_settings

DRY_RUN_MAX_PAGES = 40  # 20,000 members read at most by a dry run in the API
DRY_RUN_SAMPLE = 1_000  # profiles read to estimate channel reachability


@dataclass(frozen=True)
class ChannelEstimate:
    reachable: int
    skipped: dict[str, int]
    deferred: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Estimate:
    audience_size: int
    by_segment: dict[str, int]
    channels: dict[str, ChannelEstimate]
    sampled: bool
    sample_size: int
    notes: list[str]


def estimate(request: AnnouncementRequest, now: datetime) -> Estimate:
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
    return Estimate(
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
    settings = get_workspace_settings()
    profiles = profile_store.get_many(keys.profile_pk(user_id=u) for u in user_ids)
    traits: dict[str, dict[str, Any]] = {}
    for user_id in user_ids:
        record = profiles.get(keys.profile_pk(user_id=user_id))
        traits[user_id] = dict(record.traits) if record and isinstance(record.traits, dict) else {}
    channels = {
        name: EmailChannel(settings=settings, now=when) if name == "email" else SnsChannel(name=name)
        for name in request.channels
        if name in FANOUT_CHANNELS  # in-app reaches whoever opens the feed: nothing to estimate per channel
    }
    found_addresses = {
        (c, u): find_address(channel, traits[u]) for c, channel in channels.items() for u in user_ids
    }
    addresses = {pair: address for pair, (address, _) in found_addresses.items()}
    hashes = {
        pair: channels[pair[0]].suppression_hash(address) if address else None
        for pair, address in addresses.items()
    }
    addressed = [h for h in hashes.values() if h]
    preferences, suppressed_hashes = delivery_store.recipients_state(user_ids, addressed)
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
            unread_wait_until=when + parse_duration(request.email_if_unread_after)
            if request.email_if_unread_after and name == "email"
            else None,
        )
        for user_id in user_ids:
            audience = policy.Audience.of(
                addresses[(name, user_id)],
                hashes[(name, user_id)] in suppressed_hashes,
                preferences[user_id],
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
