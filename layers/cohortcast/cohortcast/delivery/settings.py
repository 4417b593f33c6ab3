"""The unsubscribe-token secret(s), cached per container."""

from cohortcast.cache import TTLCache
from cohortcast.config import get_settings
from cohortcast.storage import secrets

SECRET_CACHE_SECONDS = 300.0

_secrets: TTLCache[str, list[bytes]] = TTLCache(SECRET_CACHE_SECONDS, max_entries=4)


def unsubscribe_secrets() -> list[bytes]:
    """Secrets to sign with (first) and accept (all): the current value, plus the previous one
    while a rotation is in progress (Secrets Manager's AWSPREVIOUS stage)."""
    settings = get_settings()
    source = settings.unsubscribe_secret_arn or settings.unsubscribe_secret_parameter
    if not source:
        raise RuntimeError("UNSUBSCRIBE_SECRET_ARN or UNSUBSCRIBE_SECRET_PARAMETER must be set")
    if settings.unsubscribe_secret_arn:
        return _secrets.get_or_load(source, lambda: _from_secrets_manager(source))
    return _secrets.get_or_load(source, lambda: [secrets.parameter_value(source).encode()])


def _from_secrets_manager(secret_id: str) -> list[bytes]:
    values = [secrets.secret_string(secret_id).encode()]
    previous = secrets.previous_secret_string(secret_id)
    if previous and previous.encode() not in values:
        values.append(previous.encode())
    return values


def reset() -> None:
    get_settings.cache_clear()
    _secrets.clear()
