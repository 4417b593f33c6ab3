"""Delivery-only environment settings (parsed once) and the unsubscribe-token secret (cached)."""

import time
from functools import cache

from botocore.exceptions import ClientError

from cohortcast.config import EnvironmentModel
from cohortcast.storage import aws

SECRET_CACHE_SECONDS = 300.0


class DeliverySettings(EnvironmentModel):
    ses_configuration_set: str = ""
    # Either a Secrets Manager secret (ARN or name) or an SSM SecureString/String parameter name.
    unsubscribe_secret_arn: str = ""
    unsubscribe_secret_parameter: str = ""
    api_endpoint: str = ""  # the HTTP API's URL: links' base when the workspace sets none
    email_queue_url: str = ""
    sns_delivery_queue_url: str = ""


@cache
def delivery_settings() -> DeliverySettings:
    return DeliverySettings.from_environment()


_secrets: dict[str, tuple[float, list[bytes]]] = {}


def unsubscribe_secrets() -> list[bytes]:
    """Secrets to sign with (first) and accept (all): the current value, plus the previous one
    while a rotation is in progress (Secrets Manager's AWSPREVIOUS stage)."""
    settings = delivery_settings()
    source = settings.unsubscribe_secret_arn or settings.unsubscribe_secret_parameter
    if not source:
        raise RuntimeError("UNSUBSCRIBE_SECRET_ARN or UNSUBSCRIBE_SECRET_PARAMETER must be set")
    cached = _secrets.get(source)
    if cached and time.monotonic() - cached[0] < SECRET_CACHE_SECONDS:
        return cached[1]
    if settings.unsubscribe_secret_arn:
        values = _from_secrets_manager(settings.unsubscribe_secret_arn)
    else:
        parameter = aws.client("ssm").get_parameter(Name=source, WithDecryption=True)["Parameter"]
        values = [parameter["Value"].encode()]
    _secrets[source] = (time.monotonic(), values)
    return values


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
    delivery_settings.cache_clear()
    _secrets.clear()
