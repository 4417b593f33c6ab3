"""Create the template's AWS resources on moto (server or in-process `mock_aws`).

Only what the functions touch at run time is created; compute, IAM and alarms are skipped
because the local stack runs the handlers itself and moto does not enforce IAM.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
import string
from collections.abc import Callable
from typing import Any

import boto3

from local.template import (
    ACCOUNT_ID,
    API_ID,
    FUNCTION_TYPES,
    REGION,
    Resources,
    evaluate_conditions,
    function_arn,
    parameter_defaults,
    resources_of,
)

log = logging.getLogger("local.provision")

ClientFactory = Callable[[str], Any]

# Types the local stack handles itself (functions, routes) or that have no local effect.
SKIPPED_TYPES = {
    "AWS::Serverless::Function",
    "AWS::Lambda::Function",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::LayerVersion",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::Api",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::Logs::LogGroup",
    # Encryption at rest changes nothing a handler sees; moto would not enforce key policies.
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
}
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")


def _arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


def plan(
    template: dict[str, Any], parameters: dict[str, str] | None = None, api_url: str = "http://127.0.0.1:3000"
) -> Resources:
    """Names and ARNs known before anything exists, so any resource may reference any other."""
    resources = Resources(parameters=parameter_defaults(template, parameters), api_url=api_url)
    for logical_id, resource in resources_of(template).items():
        kind = resource.get("Type", "")
        props = resource.get("Properties") or {}
        if kind in TABLE_TYPES:
            name = props.get("TableName") or logical_id
            resources.set(logical_id, name, Arn=_arn("dynamodb", f"table/{name}"), Name=name)
        elif kind == "AWS::SQS::Queue":
            name = _queue_name(logical_id, props)
            resources.set(
                logical_id,
                f"(queue {name} not created yet)",
                Arn=_arn("sqs", name),
                QueueName=name,
                Name=name,
            )
        elif kind == "AWS::SNS::Topic":
            name = props.get("TopicName") or logical_id
            arn = _arn("sns", name)
            resources.set(logical_id, arn, TopicArn=arn, TopicName=name, Name=name)
        elif kind in FUNCTION_TYPES:
            resources.set(logical_id, logical_id, Arn=function_arn(logical_id))
            # SAM's implicit execution role, which scheduler/IAM references may point at.
            role = f"{logical_id}Role"
            resources.set(role, role, Arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{role}")
        elif kind in ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"):
            resources.set(logical_id, API_ID, ApiEndpoint=api_url, ApiId=API_ID)
        elif kind == "AWS::IAM::Role":
            name = props.get("RoleName") or logical_id
            resources.set(logical_id, name, Arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{name}", RoleId=name)
        elif kind in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            resources.set(logical_id, _arn("lambda", f"layer:{logical_id}:1"))
        elif kind == "AWS::SSM::Parameter":
            resources.set(logical_id, props.get("Name") or f"/{logical_id}")
        elif kind == "AWS::Scheduler::ScheduleGroup":
            name = props.get("Name") or logical_id
            resources.set(logical_id, name, Arn=_arn("scheduler", f"schedule-group/{name}"), Name=name)
        elif kind in ("AWS::SESV2::ConfigurationSet", "AWS::SES::ConfigurationSet"):
            resources.set(logical_id, props.get("Name") or logical_id)
        elif kind == "AWS::KMS::Key":
            resources.set(logical_id, logical_id, Arn=_arn("kms", f"key/{logical_id}"), KeyId=logical_id)
        elif kind == "AWS::Logs::LogGroup":
            # A name that is a Sub of the stack name resolves now; one naming a resource not
            # planned yet (e.g. /aws/lambda/${SomeFunction}) falls back to the logical id.
            try:
                name = str(resources.resolve(props.get("LogGroupName") or logical_id))
            except KeyError:
                name = logical_id
            resources.set(logical_id, name, Arn=_arn("logs", f"log-group:{name}:*"))
        else:
            resources.set(logical_id, logical_id, Arn=_arn(kind.split("::")[1].lower(), logical_id))
    resources.conditions = evaluate_conditions(template, resources)
    return resources


def _queue_name(logical_id: str, props: dict[str, Any]) -> str:
    name = props.get("QueueName") or logical_id
    if props.get("FifoQueue") and not name.endswith(".fifo"):
        name += ".fifo"
    return name


def provision(
    template: dict[str, Any],
    aws: boto3.Session | ClientFactory,
    parameters: dict[str, str] | None = None,
    api_url: str = "http://127.0.0.1:3000",
) -> Resources:
    """Create every supported resource of `template` and return what each logical id resolved to."""
    # One client per service: building a botocore client costs more than most create calls.
    client = functools.cache(aws.client if isinstance(aws, boto3.Session) else aws)
    resources = plan(template, parameters, api_url)
    creators: dict[str, Callable[[ClientFactory, str, dict[str, Any], Resources], None]] = {
        "AWS::DynamoDB::Table": _table,
        "AWS::Serverless::SimpleTable": _simple_table,
        "AWS::SQS::Queue": _queue,
        "AWS::SNS::Topic": _topic,
        "AWS::SNS::Subscription": _subscription,
        "AWS::SSM::Parameter": _ssm_parameter,
        "AWS::SecretsManager::Secret": _secret,
        "AWS::SESV2::ConfigurationSet": _configuration_set,
        "AWS::SESV2::EmailIdentity": _email_identity,
        # CloudFormation's names for the same SES v2 resources
        "AWS::SES::ConfigurationSet": _configuration_set,
        "AWS::SES::EmailIdentity": _email_identity,
        "AWS::Scheduler::ScheduleGroup": _schedule_group,
    }
    # Dead-letter queues before the queues that redrive to them; subscriptions after their
    # queues and topics; everything else is order-free.
    ordered = sorted(
        resources_of(template).items(),
        key=lambda item: (
            item[1].get("Type") == "AWS::SNS::Subscription",
            "RedrivePolicy" in (item[1].get("Properties") or {}),
        ),
    )
    for logical_id, resource in ordered:
        kind = resource.get("Type", "")
        if resource.get("Condition") and not resources.conditions.get(resource["Condition"], True):
            continue
        if kind in SKIPPED_TYPES:
            continue
        creator = creators.get(kind)
        if creator is None:
            log.info("local stack does not emulate %s (%s); skipped", kind, logical_id)
            continue
        props = resources.resolve(resource.get("Properties") or {})
        creator(client, logical_id, _without_none(props), resources)
    return resources


def _without_none(value: Any) -> Any:
    # AWS::NoValue resolves to None and means "property absent".
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


# ------------------------------------------------------------------ DynamoDB


def _table(client: ClientFactory, logical_id: str, props: dict[str, Any], resources: Resources) -> None:
    name = resources.name(logical_id)
    ddb = client("dynamodb")
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    throughput = props.get("ProvisionedThroughput")
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(throughput)
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            indexes = [dict(index) for index in props[key]]
            for index in indexes:
                if key == "GlobalSecondaryIndexes" and request["BillingMode"] == "PROVISIONED":
                    index["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
                else:
                    index.pop("ProvisionedThroughput", None)
                index.pop("ContributorInsightsSpecification", None)
            request[key] = indexes
    stream = props.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    description = ddb.create_table(**request)["TableDescription"]
    if description.get("LatestStreamArn"):
        resources.attributes[logical_id]["StreamArn"] = description["LatestStreamArn"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )


def _throughput(value: dict[str, Any] | None) -> dict[str, int]:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }


def _simple_table(
    client: ClientFactory, logical_id: str, props: dict[str, Any], resources: Resources
) -> None:
    key = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
    kind = {"String": "S", "Number": "N", "Binary": "B"}[key.get("Type", "String")]
    table = {
        "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": kind}],
        "BillingMode": "PAY_PER_REQUEST" if not props.get("ProvisionedThroughput") else "PROVISIONED",
        "ProvisionedThroughput": props.get("ProvisionedThroughput"),
    }
    _table(client, logical_id, table, resources)


# ------------------------------------------------------------------ SQS / SNS

_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


def _queue(client: ClientFactory, logical_id: str, props: dict[str, Any], resources: Resources) -> None:
    attributes = {key: _attribute(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = _attribute(props["RedrivePolicy"])
    name = resources.attributes[logical_id]["QueueName"]
    url = client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    resources.refs[logical_id] = url
    resources.attributes[logical_id]["QueueUrl"] = url


def _attribute(value: Any) -> str:
    # SQS and SNS attributes are strings; JSON documents are passed as JSON text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _topic(client: ClientFactory, logical_id: str, props: dict[str, Any], resources: Resources) -> None:
    attributes = {}
    if props.get("FifoTopic"):
        attributes["FifoTopic"] = "true"
    if "ContentBasedDeduplication" in props:
        attributes["ContentBasedDeduplication"] = _attribute(props["ContentBasedDeduplication"])
    sns = client("sns")
    arn = sns.create_topic(Name=resources.attributes[logical_id]["TopicName"], Attributes=attributes)[
        "TopicArn"
    ]
    resources.set(logical_id, arn, TopicArn=arn)
    for inline in props.get("Subscription") or []:
        sns.subscribe(TopicArn=arn, Protocol=inline["Protocol"], Endpoint=inline["Endpoint"])


def _subscription(
    client: ClientFactory, logical_id: str, props: dict[str, Any], resources: Resources
) -> None:
    attributes = {
        key: _attribute(props[key])
        for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")
        if key in props
    }
    response = client("sns").subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    resources.refs[logical_id] = response["SubscriptionArn"]


# ------------------------------------------------------------------ SSM / Secrets / Scheduler


def _ssm_parameter(
    client: ClientFactory, logical_id: str, props: dict[str, Any], resources: Resources
) -> None:
    client("ssm").put_parameter(
        Name=resources.refs[logical_id],
        Value=str(props["Value"]),
        Type=props.get("Type", "String"),
        Overwrite=True,
    )
    resources.attributes[logical_id].update(Type=props.get("Type", "String"), Value=str(props["Value"]))


def _secret(client: ClientFactory, logical_id: str, props: dict[str, Any], resources: Resources) -> None:
    value = props.get("SecretString")
    if value is None:
        value = _generated_secret(props.get("GenerateSecretString") or {})
    response = client("secretsmanager").create_secret(
        Name=props.get("Name") or logical_id, SecretString=value
    )
    resources.set(logical_id, response["ARN"], Id=response["ARN"])


def _generated_secret(spec: dict[str, Any]) -> str:
    excluded = set(spec.get("ExcludeCharacters", ""))
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    alphabet = "".join(c for c in alphabet if c not in excluded)
    password = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    if spec.get("SecretStringTemplate") and spec.get("GenerateStringKey"):
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = password
        return json.dumps(document)
    return password


def _schedule_group(
    client: ClientFactory, logical_id: str, props: dict[str, Any], resources: Resources
) -> None:
    client("scheduler").create_schedule_group(Name=resources.refs[logical_id])


# ------------------------------------------------------------------ SES v2


def _configuration_set(
    client: ClientFactory, logical_id: str, props: dict[str, Any], resources: Resources
) -> None:
    options = {
        key: props[key]
        for key in (
            "TrackingOptions",
            "DeliveryOptions",
            "ReputationOptions",
            "SendingOptions",
            "SuppressionOptions",
        )
        if key in props
    }
    try:
        client("sesv2").create_configuration_set(ConfigurationSetName=resources.refs[logical_id], **options)
    except Exception as error:  # moto covers only part of SES; a missing option must not stop the stack
        log.warning("configuration set %s not fully emulated: %s", logical_id, error)
        client("sesv2").create_configuration_set(ConfigurationSetName=resources.refs[logical_id])


def _email_identity(
    client: ClientFactory, logical_id: str, props: dict[str, Any], resources: Resources
) -> None:
    identity = props["EmailIdentity"]
    # moto treats a created identity as verified, which is what lets local sends succeed.
    client("sesv2").create_email_identity(EmailIdentity=identity)
    resources.set(logical_id, identity)
