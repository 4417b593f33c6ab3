"""Operational guarantees of template.yaml that hold for every resource, present and future.

checkov (`make checkov`) checks the template against its generic rules; these tests check
what is specific to cohortcast: every function logged and alarmed, every table kept, every
topic and queue encrypted, every suppression explained.
"""

from __future__ import annotations

from typing import Any

from local.provision import plan
from local.template import FUNCTION_TYPES, resources_of
from tests.conftest import template


def _ref(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def _alarms_by_function(spec: dict[str, Any]) -> dict[str, set[str]]:
    alarmed: dict[str, set[str]] = {}
    for alarm in resources_of(spec, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props.get("Namespace") != "AWS/Lambda":
            continue
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        for dimension in props["Dimensions"]:
            if dimension["Name"] == "FunctionName":
                alarmed.setdefault(_ref(dimension["Value"]), set()).add(props["MetricName"])
    return alarmed


def test_every_function_alarms_on_its_errors_and_its_throttles() -> None:
    spec = template()
    alarmed = _alarms_by_function(spec)
    for function in resources_of(spec, *FUNCTION_TYPES):
        assert alarmed.get(function) == {"Errors", "Throttles"}, function


def test_every_function_logs_to_its_own_group_kept_for_the_retention_parameter() -> None:
    spec = template()
    groups = resources_of(spec, "AWS::Logs::LogGroup")
    used = []
    for function, resource in resources_of(spec, *FUNCTION_TYPES).items():
        group = _ref(resource["Properties"]["LoggingConfig"]["LogGroup"])
        used.append(group)
        props = groups[group]["Properties"]
        assert function in props["LogGroupName"]["Fn::Sub"]
        assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert props["KmsKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert len(set(used)) == len(used), "two functions share a log group"


def test_the_http_api_logs_routes_not_paths_and_throttles_by_default() -> None:
    spec = template()
    props = spec["Resources"]["HttpApi"]["Properties"]
    log_group = spec["Resources"]["ApiAccessLogGroup"]["Properties"]
    assert props["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    log_format = props["AccessLogSettings"]["Format"]
    assert "$context.routeKey" in log_format
    assert "$context.path" not in log_format  # paths carry user ids and unsubscribe tokens
    assert props["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }


def test_every_table_survives_stack_deletion_and_replacement_with_point_in_time_recovery() -> None:
    for table, resource in resources_of(template(), "AWS::DynamoDB::Table").items():
        assert resource.get("DeletionPolicy") == "Retain", table
        assert resource.get("UpdateReplacePolicy") == "Retain", table
        recovery = resource["Properties"].get("PointInTimeRecoverySpecification") or {}
        assert recovery.get("PointInTimeRecoveryEnabled") is True, table


def test_every_topic_is_encrypted_with_the_stacks_key_and_every_queue_at_least_with_sse_sqs() -> None:
    spec = template()
    for topic, resource in resources_of(spec, "AWS::SNS::Topic").items():
        assert resource["Properties"].get("KmsMasterKeyId") == {"Ref": "DataKey"}, topic
    for queue, resource in resources_of(spec, "AWS::SQS::Queue").items():
        props = resource["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), queue


def test_the_key_lets_ses_and_alarms_publish_to_encrypted_topics_from_this_account_only() -> None:
    statements = template()["Resources"]["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    publishers = next(s for s in statements if s["Sid"] == "SesAndAlarmsPublishToEncryptedTopics")
    assert set(publishers["Principal"]["Service"]) == {"ses.amazonaws.com", "cloudwatch.amazonaws.com"}
    assert publishers["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_the_push_and_sms_deliverer_cannot_publish_to_any_topic_of_the_stack() -> None:
    spec = template()
    statements = [
        statement
        for policy in spec["Resources"]["DeliverSnsFunction"]["Properties"]["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
    ]
    denied = {
        _ref(resource)
        for statement in statements
        if statement["Effect"] == "Deny" and statement["Action"] == "sns:Publish"
        for resource in statement["Resource"]
    }
    assert denied == set(resources_of(spec, "AWS::SNS::Topic"))


def test_every_checkov_suppression_gives_its_reason() -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in resources_of(template()).items()
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", [])
    ]
    assert skips, "no suppressions found: was the Metadata format changed?"
    for logical_id, skip in skips:
        assert skip["id"].startswith("CKV_"), logical_id
        assert len(skip.get("comment", "")) >= 40, f"{logical_id} skips {skip['id']} without a reason"


def test_the_local_stack_resolves_the_key_and_log_groups_like_cloudformation() -> None:
    resources = plan(template())
    assert resources.resolve({"Fn::GetAtt": ["DataKey", "Arn"]}).endswith(":key/DataKey")
    assert resources.resolve({"Ref": "IngestLogGroup"}) == "/aws/lambda/cohortcast-local/IngestFunction"
    assert resources.resolve({"Ref": "LogRetentionDays"}) == "30"
