"""The local stack: cohortcast on moto in one process (`python -m local`). Dev-only, never deployed."""

# Fake credentials and region for moto (nothing local ever reaches AWS); X-Ray has no daemon
# locally, so Powertools' tracer is off. Shared by the stack, the test fixtures and the bench.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
