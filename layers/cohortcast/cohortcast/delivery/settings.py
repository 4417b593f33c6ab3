"""The unsubscribe-token secret(s), cached per container."""

from botocore.exceptions import ClientError

from cohortcast.cache import TTLCache
from cohortcast.config import get_settings
from cohortcast.storage import aws

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
    return _secrets.get_or_load(source, lambda: _from_parameter(source))


def _from_parameter(source: str) -> list[bytes]:
    parameter = aws.client("ssm").get_parameter(Name=source, WithDecryption=True)["Parameter"]
    return [parameter["Value"].encode()]


def _from_secrets_manager(secret_id: str) -> list[bytes]:
    client = aws.client("secretsmanager")
    values = [client.get_secret_value(SecretId=secret_id)["SecretString"].encode()]
    try:
        previous = client.get_secret_value(SecretId=secret_id, VersionStage="AWSPREVIOUS")
        if previous.get("SecretString") and previous["SecretString"].encode() not in values:
            values.append(previous["SecretString"].encode())
    except ClientError:  # no previous version: nothing to accept besides the current one
        pass
    return values


def reset() -> None:
    get_settings.cache_clear()
    _secrets.clear()
