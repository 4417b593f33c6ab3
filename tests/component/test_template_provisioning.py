"""The local/test AWS resources come from template.yaml itself, intrinsics resolved."""

from __future__ import annotations

import boto3
import pytest

from local.provision import plan, provision
from local.template import (
    Resources,
    all_function_environments,
    function_environment,
    functions,
    load_template,
    resources_of,
)
from tests.conftest import template

TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")


def test_every_table_in_the_template_exists_with_its_key_schema(aws: Resources) -> None:
    client = boto3.client("dynamodb")
    for logical_id, resource in resources_of(template(), "AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        table = client.describe_table(TableName=aws.name(logical_id))["Table"]
        assert table["KeySchema"] == props["KeySchema"]
        assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
            props["AttributeDefinitions"], key=lambda a: a["AttributeName"]
        )
        assert {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])} == {
            i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])
        }


def test_tables_are_named_by_logical_id(aws: Resources) -> None:
    for logical_id in resources_of(template(), *TABLE_TYPES):
        assert aws.name(logical_id) == logical_id


def test_streams_and_ttl_follow_the_template(aws: Resources) -> None:
    client = boto3.client("dynamodb")
    for logical_id, resource in resources_of(template(), "AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        table = client.describe_table(TableName=logical_id)["Table"]
        stream = props.get("StreamSpecification")
        if stream:
            assert table["StreamSpecification"]["StreamViewType"] == stream["StreamViewType"]
            assert aws.stream_arn(logical_id) == table["LatestStreamArn"]
        else:
            assert not table.get("StreamSpecification", {}).get("StreamEnabled")
        ttl = client.describe_time_to_live(TableName=logical_id)["TimeToLiveDescription"]
        wanted = props.get("TimeToLiveSpecification")
        if wanted:
            assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": wanted["AttributeName"]}
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED"


def test_queues_exist_with_their_dead_letter_queue(aws: Resources) -> None:
    client = boto3.client("sqs")
    for logical_id, resource in resources_of(template(), "AWS::SQS::Queue").items():
        attributes = client.get_queue_attributes(QueueUrl=aws.url(logical_id), AttributeNames=["All"])[
            "Attributes"
        ]
        assert attributes["QueueArn"] == aws.arn(logical_id)
        if "RedrivePolicy" in resource["Properties"]:
            assert "deadLetterTargetArn" in attributes["RedrivePolicy"]


def test_function_environment_merges_globals_and_resolves_refs(aws: Resources) -> None:
    spec = template()
    for function in functions(spec):
        env = function_environment(spec, function.logical_id, aws)
        assert env["PROFILES_TABLE"] == "ProfilesTable"
        assert env["DATA_TABLE"] == "DataTable"
        assert env["EVENT_RETENTION_DAYS"] == str(spec["Parameters"]["EventRetentionDays"]["Default"])
        assert all(isinstance(value, str) for value in env.values())


def test_the_aws_fixture_exports_the_union_of_function_environments(aws: Resources) -> None:
    import os

    for env in all_function_environments(template(), aws).values():
        for name, value in env.items():
            if name != "POWERTOOLS_SERVICE_NAME":
                assert os.environ[name] == value


def test_intrinsics_resolve_against_local_names(tmp_path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        """
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Dlq: {Type: AWS::SQS::Queue}
  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 180
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: 3}
  Bus: {Type: AWS::SNS::Topic}
  Feed:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref Bus
      Protocol: sqs
      Endpoint: !GetAtt Work.Arn
      RawMessageDelivery: true
      FilterPolicy: {channel: [email]}
  Alarm: {Type: AWS::CloudWatch::Alarm}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/fn/
      Handler: app.lambda_handler
      Environment:
        Variables:
          STAGE: !Ref Stage
          QUEUE: !Ref Work
          NAME: !GetAtt Work.QueueName
          TOPIC: !Ref Bus
          SELF: !GetAtt Fn.Arn
          TEXT: !Sub "${Stage}-${AWS::Region}-${Bus.TopicName}"
          JOINED: !Join [",", [a, !Ref Stage]]
"""
    )
    spec = load_template(path)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            patch.setenv(name, "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        from moto import mock_aws

        with mock_aws():
            resources = provision(spec, boto3.Session())
            env = function_environment(spec, "Fn", resources)
            subscriptions = boto3.client("sns").list_subscriptions()["Subscriptions"]
            attributes = boto3.client("sns").get_subscription_attributes(
                SubscriptionArn=subscriptions[0]["SubscriptionArn"]
            )["Attributes"]
    assert env["STAGE"] == "dev"
    assert env["QUEUE"].endswith("/123456789012/Work")
    assert env["NAME"] == "Work"
    assert env["TOPIC"] == "arn:aws:sns:us-east-1:123456789012:Bus"
    assert env["SELF"] == "arn:aws:lambda:us-east-1:123456789012:function:Fn"
    assert env["TEXT"] == "dev-us-east-1-Bus"
    assert env["JOINED"] == "a,dev"
    assert attributes["RawMessageDelivery"] == "true"
    assert attributes["FilterPolicy"] == '{"channel": ["email"]}'
    assert attributes["Endpoint"] == "arn:aws:sqs:us-east-1:123456789012:Work"


def test_plan_knows_names_before_anything_exists() -> None:
    resources = plan(template())
    assert resources.name("ProfilesTable") == "ProfilesTable"
    assert resources.resolve({"Fn::GetAtt": ["ProfilesTable", "Arn"]}).endswith(":table/ProfilesTable")
    assert resources.resolve({"Ref": "EventRetentionDays"}) == "90"
