"""A user's email preferences behind the signed `/u/{token}` link.

The token alone says whose preferences these are (HMAC-checked, `tokens.read_token`);
nothing in the request can point at another user.
"""

from dataclasses import dataclass
from datetime import datetime

from cohortcast.clock import isoformat
from cohortcast.delivery.settings import unsubscribe_secrets
from cohortcast.delivery.tokens import TokenClaims, read_token
from cohortcast.preferences.page import (
    TopicChoice,
    is_one_click_unsubscribe,
    parse_preferences_form,
    render_preferences_page,
)
from cohortcast.storage import delivery as store
from cohortcast.storage import keys
from cohortcast.storage import profiles as profile_store


def claims_of(token: str) -> TokenClaims:
    """The token's user and topic; `BadRequest` when tampered."""
    return read_token(unsubscribe_secrets(), token)


def preferences_page(token: str, *, form_action: str, message: str | None = None) -> str:
    claims = claims_of(token)
    # An erased user has no preferences record, and reading must not create one.
    prefs = store.get_preferences(claims.user_id) if _exists(claims.user_id) else _after_erasure(claims)
    topics = sorted(prefs.topics_seen | prefs.topics_off | ({claims.topic} if claims.topic else set()))
    return render_preferences_page(
        user_label=_label(claims.user_id),
        topics=[
            TopicChoice(topic=t, label=_topic_label(t), subscribed=t not in prefs.topics_off) for t in topics
        ],
        unsubscribed_all=prefs.unsubscribed_all,
        form_action=form_action,
        message=message,
    )


@dataclass(frozen=True, slots=True)
class PostOutcome:
    one_click: bool
    page: str | None  # the confirmation page (form submit); None for a one-click POST


def post(token: str, body: str, content_type: str | None, *, form_action: str, now: datetime) -> PostOutcome:
    """RFC 8058 one-click (unsubscribe from the token's topic, or everything) or the form submit."""
    claims = claims_of(token)
    if not _exists(claims.user_id):
        return _post_after_erasure(claims, token, body, content_type, form_action=form_action, now=now)
    if is_one_click_unsubscribe(body, content_type):
        unsubscribe(claims, now=now)
        return PostOutcome(one_click=True, page=None)
    change = parse_preferences_form(body)
    store.update_preferences(
        claims.user_id,
        unsubscribed_all=change.unsubscribe_all,
        topics_off_add=frozenset(change.unsubscribed),
        topics_off_remove=frozenset(change.subscribed),
        updated_at=isoformat(now),
    )
    message = (
        "You are unsubscribed from all emails." if change.unsubscribe_all else "Your preferences are saved."
    )
    return PostOutcome(
        one_click=False, page=preferences_page(token, form_action=form_action, message=message)
    )


def _post_after_erasure(
    claims: TokenClaims, token: str, body: str, content_type: str | None, *, form_action: str, now: datetime
) -> PostOutcome:
    """A link replayed after `DELETE /v1/users/{id}`: nothing naming the user may come back. Any
    opt-out (one topic or all: there is no record left to hold per-topic choices) puts the
    address's hash on the suppression list, the only thing kept about an erased user."""
    one_click = is_one_click_unsubscribe(body, content_type)
    if one_click:
        opts_out = True
    else:
        change = parse_preferences_form(body)
        opts_out = change.unsubscribe_all or bool(change.unsubscribed)
    if opts_out and claims.email_hash:
        store.suppress_if_absent(claims.email_hash, reason="unsubscribed", created_at=isoformat(now))
    if one_click:
        return PostOutcome(one_click=True, page=None)
    message = "You are unsubscribed from all emails." if opts_out else "Your preferences are saved."
    return PostOutcome(
        one_click=False, page=preferences_page(token, form_action=form_action, message=message)
    )


def _after_erasure(claims: TokenClaims) -> store.Preferences:
    suppressed = claims.email_hash is not None and store.is_suppressed(claims.email_hash)
    return store.Preferences(user_id=claims.user_id, unsubscribed_all=suppressed)


def _exists(user_id: str) -> bool:
    """Whether the user still has a profile (following merges); links only go to users with one,
    so a missing profile means the user was erased."""
    pk = keys.profile_pk(user_id=user_id)
    pk = profile_store.resolve_aliases([pk]).get(pk, pk)
    return profile_store.get(pk) is not None


def unsubscribe(claims: TokenClaims, *, now: datetime) -> None:
    if claims.topic:
        store.update_preferences(
            claims.user_id,
            unsubscribed_all=None,
            topics_off_add=frozenset({claims.topic}),
            topics_off_remove=frozenset(),
            updated_at=isoformat(now),
        )
    else:
        store.update_preferences(
            claims.user_id,
            unsubscribed_all=True,
            topics_off_add=frozenset(),
            topics_off_remove=frozenset(),
            updated_at=isoformat(now),
        )


def _label(user_id: str) -> str:
    """A masked address (j•••@example.com) so the page confirms whose it is without exposing it."""
    record = profile_store.get(keys.profile_pk(user_id=user_id))
    address = record.traits.get("email") if record is not None else None
    if isinstance(address, str) and "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}•••@{domain}"
    return "your account"


def _topic_label(topic: str) -> str:
    return topic.replace("_", " ").replace("-", " ").strip().capitalize() or topic
