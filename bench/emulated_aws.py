"""moto in-process with the template's resources and the functions' environment (like tests)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto import mock_aws

from local.provision import provision
from local.template import Resources, all_function_environments, load_template, union_environment

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@contextmanager
def emulated_aws() -> Iterator[Resources]:
    from cohortcast.storage import aws as storage

    os.environ.update(FAKE_AWS_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    storage.reset()
    with mock_aws():
        template = load_template()
        resources = provision(template, boto3.Session())
        os.environ.update(union_environment(all_function_environments(template, resources)))
        boto3.setup_default_session()
        yield resources
    storage.reset()
