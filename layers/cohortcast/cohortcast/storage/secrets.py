"""Secrets Manager secrets and SSM parameters: read a value, write a new version."""

from botocore.exceptions import ClientError

from cohortcast.storage import aws


def secret_string(secret_id: str) -> str:
    """The secret's current value (stage AWSCURRENT)."""
    return aws.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]


def previous_secret_string(secret_id: str) -> str | None:
    """The value before the last rotation (stage AWSPREVIOUS), None when there is none."""
    try:
        previous = aws.client("secretsmanager").get_secret_value(
            SecretId=secret_id, VersionStage="AWSPREVIOUS"
        )
    except ClientError:  # no previous version
        return None
    return previous.get("SecretString") or None


def put_secret_string(secret_id: str, value: str) -> None:
    """A new current version; the one it replaces moves to AWSPREVIOUS."""
    aws.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=value)


def parameter_value(name: str) -> str:
    """An SSM parameter's value, decrypted if it is a SecureString."""
    return aws.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
