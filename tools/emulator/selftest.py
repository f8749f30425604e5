"""Self-check of the AWS emulator: starts it as a subprocess and drives it with boto3.

    tools/.venv/bin/python tools/emulator/selftest.py

Prints one line per check and ends with "N passed, M failed"; exits non-zero on any failure.
Each check starts from POST /_emulator/reset.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore.exceptions
from botocore.config import Config

EMULATOR = Path(__file__).with_name("aws_emulator.py")
PERIOD = {"Start": "2026-10-01", "End": "2026-11-01"}
# Headers of a raw S3 request as a SigV4 client (object_store) sends them; moto does not check the
# signature but picks the service from the credential scope.
S3_RAW_HEADERS = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/s3/aws4_request, "
                     "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=0",
    "x-amz-date": "20261126T000000Z",
    "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
}

CHECKS: list[Callable[[Emulator], None]] = []


def check(fn: Callable[[Emulator], None]) -> Callable[[Emulator], None]:
    CHECKS.append(fn)
    return fn


class Emulator:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(EMULATOR)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def client(self, service: str, attempts: int = 1) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
        )

    def http(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        data = None if body is None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def control(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        status, _, raw = self.http(method, path, body)
        if expect is not None:
            assert status == expect, f"{method} {path}: HTTP {status} {raw!r}"
        return json.loads(raw) if raw else None

    def calls(self) -> dict[str, int]:
        return self.control("GET", "/_emulator/calls", expect=200)

    def stop(self) -> int:
        """Close stdin, as a dying parent would, and return the exit code."""
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def client_error(fn: Callable[[], Any]) -> botocore.exceptions.ClientError:
    try:
        fn()
    except botocore.exceptions.ClientError as err:
        return err
    raise AssertionError("expected a ClientError")


def usage_result(amount: str, next_token: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "GroupDefinitions": [{"Type": "TAG", "Key": "iamPrincipal/team"}],
        "ResultsByTime": [
            {
                "TimePeriod": PERIOD,
                "Total": {},
                "Groups": [
                    {"Keys": ["iamPrincipal/team$ml"], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}
                ],
                "Estimated": False,
            }
        ],
        "DimensionValueAttributes": [],
    }
    if next_token:
        result["NextPageToken"] = next_token
    return result


def seed_usage(emu: Emulator, *results: dict[str, Any]) -> None:
    emu.control("POST", "/moto-api/static/ce/cost-and-usage-results", {"results": list(results)}, expect=201)


def cost_and_usage(ce: Any, **overrides: Any) -> dict[str, Any]:
    request = {
        "TimePeriod": PERIOD,
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "TAG", "Key": "iamPrincipal/team"}],
    }
    return ce.get_cost_and_usage(**{**request, **overrides})


def amount(answer: dict[str, Any]) -> str:
    return answer["ResultsByTime"][0]["Groups"][0]["Metrics"]["UnblendedCost"]["Amount"]


# --- GetCostAndUsage through moto's own seeding -------------------------------------------------


@check
def cost_and_usage_seeded_and_counted(emu: Emulator) -> None:
    seed_usage(emu, usage_result("123.45"))
    answer = cost_and_usage(emu.client("ce"))
    assert amount(answer) == "123.45", answer
    assert answer["ResultsByTime"][0]["Groups"][0]["Keys"] == ["iamPrincipal/team$ml"]
    assert answer["GroupDefinitions"] == [{"Type": "TAG", "Key": "iamPrincipal/team"}]
    assert emu.calls() == {"GetCostAndUsage": 1}, emu.calls()


@check
def signing_log_names_key_region_and_service(emu: Emulator) -> None:
    seed_usage(emu, usage_result("3.00"))
    cost_and_usage(emu.client("ce"))
    sts = boto3.client("sts", endpoint_url=emu.url, region_name="eu-west-1",
                       aws_access_key_id="other", aws_secret_access_key="other")
    sts.get_caller_identity()
    signed = emu.control("GET", "/_emulator/signed", expect=200)
    assert signed == [
        {"operation": "GetCostAndUsage", "access_key_id": "testing", "region": "us-east-1", "service": "ce"},
        {"operation": "GetCallerIdentity", "access_key_id": "other", "region": "eu-west-1", "service": "sts"},
    ], signed
    emu.control("POST", "/_emulator/reset", expect=200)
    assert emu.control("GET", "/_emulator/signed", expect=200) == []


@check
def request_log_keeps_json_bodies_per_operation(emu: Emulator) -> None:
    seed_usage(emu, usage_result("3.00"))
    cost_and_usage(emu.client("ce"), Filter={"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock"]}})
    logged = emu.control("GET", "/_emulator/requests", expect=200)
    assert list(logged) == ["GetCostAndUsage"], logged
    assert logged["GetCostAndUsage"][0]["Filter"] == {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock"]}}
    emu.control("POST", "/_emulator/reset", expect=200)
    assert emu.control("GET", "/_emulator/requests", expect=200) == {}


@check
def iam_authorization_details_page_with_cap_and_fault_after(emu: Emulator) -> None:
    iam = emu.client("iam")
    for i in range(5):
        iam.create_user(UserName=f"user{i}")
    iam.create_role(RoleName="role0", AssumeRolePolicyDocument="{}")
    one = iam.get_account_authorization_details(Filter=["User", "Role"])
    assert len(one["UserDetailList"]) == 5 and len(one["RoleDetailList"]) == 1 and not one["IsTruncated"], one
    emu.control("POST", "/_emulator/iam/page-cap", {"max_items": 2}, expect=200)
    pages = list(iam.get_paginator("get_account_authorization_details").paginate(Filter=["User", "Role"], MaxItems=1000))
    assert len(pages) == 3, pages
    names = [u["UserName"] for p in pages for u in p["UserDetailList"]] + [r["RoleName"] for p in pages for r in p["RoleDetailList"]]
    assert sorted(names) == ["role0", "user0", "user1", "user2", "user3", "user4"], names
    err = client_error(lambda: iam.get_account_authorization_details(Marker="bogus"))
    assert err.response["Error"]["Code"] == "InvalidInput", err.response
    # A fault that lets the first call pass hits the second page.
    emu.control("POST", "/_emulator/faults", {"operation": "GetAccountAuthorizationDetails", "status": 500,
                "error_type": "ServiceFailure", "after": 1}, expect=201)
    first = iam.get_account_authorization_details(MaxItems=2)
    err = client_error(lambda: iam.get_account_authorization_details(MaxItems=2, Marker=first["Marker"]))
    assert err.response["Error"]["Code"] == "ServiceFailure", err.response
    assert iam.get_account_authorization_details(MaxItems=2, Marker=first["Marker"])["IsTruncated"]
    emu.control("POST", "/_emulator/reset", expect=200)
    emu.control("POST", "/_emulator/faults", {"operation": "X", "error_type": "E", "after": -1}, expect=400)


@check
def cost_and_usage_cached_per_request_body(emu: Emulator) -> None:
    seed_usage(emu, usage_result("1.00"), usage_result("2.00"))
    ce = emu.client("ce")
    assert amount(cost_and_usage(ce)) == "1.00"
    assert amount(cost_and_usage(ce)) == "1.00", "identical body must get the cached answer"
    assert amount(cost_and_usage(ce, Filter={"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock"]}})) == "2.00"
    empty = cost_and_usage(ce, Metrics=["BlendedCost"])
    assert empty["ResultsByTime"] == [] and "NextPageToken" not in empty, empty
    # The empty answer is not cached: seeding afterwards serves the same body.
    seed_usage(emu, usage_result("3.00"))
    assert amount(cost_and_usage(ce, Metrics=["BlendedCost"])) == "3.00"


@check
def cost_and_usage_pages_in_seed_order(emu: Emulator) -> None:
    seed_usage(emu, usage_result("1.00", next_token="page-2"), usage_result("2.00"))
    ce = emu.client("ce")
    first = cost_and_usage(ce)
    assert first["NextPageToken"] == "page-2"
    second = cost_and_usage(ce, NextPageToken=first["NextPageToken"])
    assert amount(second) == "2.00" and "NextPageToken" not in second, second


# --- faults and latency ----------------------------------------------------------------------


@check
def limit_exceeded_fault_then_success(emu: Emulator) -> None:
    seed_usage(emu, usage_result("5.00"))
    emu.control(
        "POST",
        "/_emulator/faults",
        {"operation": "GetCostAndUsage", "status": 400, "error_type": "LimitExceededException",
         "message": "You made too many calls", "times": 1},
        expect=201,
    )
    ce = emu.client("ce")
    err = client_error(lambda: cost_and_usage(ce))
    assert err.response["Error"]["Code"] == "LimitExceededException", err.response
    assert err.response["Error"]["Message"] == "You made too many calls"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    headers = err.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-errortype"] == "LimitExceededException", headers
    assert headers["content-type"] == "application/x-amz-json-1.1", headers
    assert amount(cost_and_usage(ce)) == "5.00", "the call after the fault must succeed"
    assert emu.calls() == {"GetCostAndUsage": 2}, emu.calls()
    assert emu.control("GET", "/_emulator/faults", expect=200) == {}


@check
def sdk_retry_rides_over_throttling_fault(emu: Emulator) -> None:
    seed_usage(emu, usage_result("6.00"))
    emu.control("POST", "/_emulator/faults",
                {"operation": "GetCostAndUsage", "error_type": "ThrottlingException", "times": 2}, expect=201)
    assert amount(cost_and_usage(emu.client("ce", attempts=3))) == "6.00"
    assert emu.calls() == {"GetCostAndUsage": 3}, emu.calls()


@check
def raw_body_fault(emu: Emulator) -> None:
    # botocore quietly reads a malformed 200 body as an empty answer, so check the wire instead.
    emu.control("POST", "/_emulator/faults",
                {"operation": "GetCostAndUsage", "status": 200, "body": "{not json", "times": 1}, expect=201)
    target = {"X-Amz-Target": "AWSInsightsIndexService.GetCostAndUsage", "Content-Type": "application/x-amz-json-1.1"}
    status, headers, body = emu.http("POST", "/", "{}", target)
    assert (status, body) == (200, b"{not json"), (status, body)
    assert headers["Content-Type"] == "application/x-amz-json-1.1", headers
    assert emu.calls() == {"GetCostAndUsage": 1}, emu.calls()


@check
def delay_only_fault_and_global_latency(emu: Emulator) -> None:
    seed_usage(emu, usage_result("7.00"))
    ce = emu.client("ce")
    emu.control("POST", "/_emulator/faults", {"operation": "GetCostAndUsage", "delay_ms": 400}, expect=201)
    started = time.monotonic()
    assert amount(cost_and_usage(ce)) == "7.00"
    assert time.monotonic() - started >= 0.4
    assert emu.control("POST", "/_emulator/latency", {"ms": 300}, expect=200) == {"ms": 300}
    started = time.monotonic()
    emu.client("iam").list_roles()
    assert time.monotonic() - started >= 0.3
    emu.control("POST", "/_emulator/latency", {"ms": 0}, expect=200)


@check
def query_protocol_fault_is_xml(emu: Emulator) -> None:
    emu.control("POST", "/_emulator/faults",
                {"operation": "CreateRole", "status": 409, "error_type": "EntityAlreadyExists", "message": "exists"},
                expect=201)
    iam = emu.client("iam")
    err = client_error(lambda: iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}"))
    assert err.response["Error"] == {"Type": "Sender", "Code": "EntityAlreadyExists", "Message": "exists"}, err.response
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert emu.calls() == {"CreateRole": 1}, emu.calls()


@check
def faults_cleared_by_delete(emu: Emulator) -> None:
    emu.control("POST", "/_emulator/faults", {"operation": "ListRoles", "error_type": "ServiceFailure", "status": 500}, expect=201)
    assert list(emu.control("GET", "/_emulator/faults", expect=200)) == ["ListRoles"]
    emu.control("DELETE", "/_emulator/faults", expect=200)
    emu.client("iam").list_roles()


@check
def bad_control_requests_are_400(emu: Emulator) -> None:
    emu.control("POST", "/_emulator/faults", {"status": 400, "error_type": "X"}, expect=400)
    emu.control("POST", "/_emulator/faults", {"operation": "X", "status": 400}, expect=400)
    emu.control("POST", "/_emulator/latency", {"ms": -1}, expect=400)
    emu.control("GET", "/_emulator/nothing", expect=404)


# --- Cost Explorer operations added by the emulator --------------------------------------------


@check
def get_dimension_values(emu: Emulator) -> None:
    emu.control("POST", "/_emulator/ce/dimension-values",
                {"SERVICE": ["Amazon Bedrock", "Claude Sonnet 4.6 (Amazon Bedrock Edition)", "Amazon S3"],
                 "REGION": ["us-east-1"]}, expect=201)
    ce = emu.client("ce")
    answer = ce.get_dimension_values(TimePeriod=PERIOD, Dimension="SERVICE", SearchString="bedrock")
    assert answer["DimensionValues"] == [
        {"Value": "Amazon Bedrock", "Attributes": {}},
        {"Value": "Claude Sonnet 4.6 (Amazon Bedrock Edition)", "Attributes": {}},
    ], answer
    assert answer["ReturnSize"] == 2 and answer["TotalSize"] == 2
    assert len(ce.get_dimension_values(TimePeriod=PERIOD, Dimension="SERVICE")["DimensionValues"]) == 3
    assert ce.get_dimension_values(TimePeriod=PERIOD, Dimension="REGION")["DimensionValues"][0]["Value"] == "us-east-1"
    assert ce.get_dimension_values(TimePeriod=PERIOD, Dimension="USAGE_TYPE")["DimensionValues"] == []


def tag(key: str, status: str, tag_type: str = "UserDefined") -> dict[str, str]:
    return {"TagKey": key, "Type": tag_type, "Status": status,
            "LastUpdatedDate": "2026-10-01T00:00:00Z", "LastUsedDate": "2026-11-20T00:00:00Z"}


@check
def list_cost_allocation_tags(emu: Emulator) -> None:
    tags = [tag("iamPrincipal/team", "Active"), tag("iamPrincipal/project", "Inactive"),
            tag("aws:createdBy", "Active", "AWSGenerated")]
    emu.control("POST", "/_emulator/ce/cost-allocation-tags", {"CostAllocationTags": tags}, expect=201)
    ce = emu.client("ce")
    assert ce.list_cost_allocation_tags()["CostAllocationTags"] == tags
    active = ce.list_cost_allocation_tags(Status="Active", Type="UserDefined")["CostAllocationTags"]
    assert [t["TagKey"] for t in active] == ["iamPrincipal/team"], active
    by_key = ce.list_cost_allocation_tags(TagKeys=["iamPrincipal/project"])["CostAllocationTags"]
    assert [t["TagKey"] for t in by_key] == ["iamPrincipal/project"]
    first = ce.list_cost_allocation_tags(MaxResults=2)
    assert len(first["CostAllocationTags"]) == 2 and first["NextToken"]
    second = ce.list_cost_allocation_tags(MaxResults=2, NextToken=first["NextToken"])
    assert [t["TagKey"] for t in second["CostAllocationTags"]] == ["aws:createdBy"] and "NextToken" not in second
    err = client_error(lambda: ce.list_cost_allocation_tags(NextToken="garbage"))
    assert err.response["Error"]["Code"] == "ValidationException"


@check
def update_cost_allocation_tags_status(emu: Emulator) -> None:
    emu.control("POST", "/_emulator/ce/cost-allocation-tags",
                {"CostAllocationTags": [tag("iamPrincipal/team", "Inactive")]}, expect=201)
    ce = emu.client("ce")
    answer = ce.update_cost_allocation_tags_status(CostAllocationTagsStatus=[
        {"TagKey": "iamPrincipal/team", "Status": "Active"},
        {"TagKey": "no-such-key", "Status": "Active"},
    ])
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert [(e["TagKey"], e["Code"]) for e in answer["Errors"]] == [("no-such-key", "TagKeysNotFoundException")], answer
    listed = ce.list_cost_allocation_tags(Status="Active")["CostAllocationTags"]
    assert [t["TagKey"] for t in listed] == ["iamPrincipal/team"], listed
    too_many = [{"TagKey": f"k{i}", "Status": "Active"} for i in range(21)]
    err = client_error(lambda: ce.update_cost_allocation_tags_status(CostAllocationTagsStatus=too_many))
    assert err.response["Error"]["Code"] == "ValidationException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@check
def get_cost_forecast(emu: Emulator) -> None:
    ce = emu.client("ce")
    request = {"TimePeriod": {"Start": "2026-11-26", "End": "2026-12-01"}, "Metric": "UNBLENDED_COST",
               "Granularity": "MONTHLY"}
    err = client_error(lambda: ce.get_cost_forecast(**request))
    assert err.response["Error"]["Code"] == "DataUnavailableException", err.response
    forecast = {
        "Total": {"Amount": "812.50", "Unit": "USD"},
        "ForecastResultsByTime": [{"TimePeriod": request["TimePeriod"], "MeanValue": "812.50",
                                   "PredictionIntervalLowerBound": "700", "PredictionIntervalUpperBound": "900"}],
    }
    emu.control("POST", "/_emulator/ce/forecast", forecast, expect=201)
    answer = ce.get_cost_forecast(**request)
    assert answer["Total"] == forecast["Total"], answer
    assert answer["ForecastResultsByTime"] == forecast["ForecastResultsByTime"]


@check
def get_anomalies(emu: Emulator) -> None:
    anomalies = [
        {"AnomalyId": f"a{i}", "AnomalyStartDate": "2026-11-0{i}", "DimensionValue": "Amazon Bedrock",
         "Impact": {"MaxImpact": 10.0 * i, "TotalImpact": 20.0 * i}, "MonitorArn": "arn:aws:ce::123456789012:anomalymonitor/m"}
        for i in range(1, 4)
    ]
    emu.control("POST", "/_emulator/ce/anomalies", {"Anomalies": anomalies}, expect=201)
    ce = emu.client("ce")
    assert ce.get_anomalies(DateInterval={"StartDate": "2026-11-01"})["Anomalies"] == anomalies
    first = ce.get_anomalies(DateInterval={"StartDate": "2026-11-01"}, MaxResults=2)
    assert [a["AnomalyId"] for a in first["Anomalies"]] == ["a1", "a2"] and first["NextPageToken"]
    second = ce.get_anomalies(DateInterval={"StartDate": "2026-11-01"}, MaxResults=2, NextPageToken=first["NextPageToken"])
    assert [a["AnomalyId"] for a in second["Anomalies"]] == ["a3"] and "NextPageToken" not in second


@check
def get_tags(emu: Emulator) -> None:
    emu.control("POST", "/_emulator/ce/tags", {"iamPrincipal/team": ["ml", "web"], "env": ["prod"]}, expect=201)
    ce = emu.client("ce")
    values = ce.get_tags(TimePeriod=PERIOD, TagKey="iamPrincipal/team")
    assert values["Tags"] == ["ml", "web"] and values["ReturnSize"] == 2 and values["TotalSize"] == 2, values
    assert ce.get_tags(TimePeriod=PERIOD)["Tags"] == ["iamPrincipal/team", "env"]
    assert ce.get_tags(TimePeriod=PERIOD, TagKey="iamPrincipal/team", SearchString="W")["Tags"] == ["web"]
    assert ce.get_tags(TimePeriod=PERIOD, TagKey="unknown")["Tags"] == []


# --- Cost Explorer: anomaly monitors and anomaly filters -----------------------------------------

MONITOR_ARN = "arn:aws:ce::123456789012:anomalymonitor/0f3d4b2a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER_MONITOR_ARN = "arn:aws:ce::123456789012:anomalymonitor/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def real_anomaly(anomaly_id: str, start: str, end: str, monitor_arn: str, total_impact: float,
                 feedback: str | None = None) -> dict[str, Any]:
    """An anomaly in the shape AWS answers (every member of the Anomaly structure)."""
    anomaly = {
        "AnomalyId": anomaly_id,
        "AnomalyStartDate": start,
        "AnomalyEndDate": end,
        "DimensionValue": "Amazon Bedrock",
        "RootCauses": [{"Service": "Amazon Bedrock", "Region": "us-east-1",
                        "UsageType": "USE1-Claude4.6Sonnet-input-tokens", "LinkedAccount": "123456789012",
                        "LinkedAccountName": "ml-prod"}],
        "AnomalyScore": {"MaxScore": 0.91, "CurrentScore": 0.42},
        "Impact": {"MaxImpact": total_impact / 2, "TotalActualSpend": 100.0 + total_impact,
                   "TotalExpectedSpend": 100.0, "TotalImpact": total_impact,
                   "TotalImpactPercentage": total_impact},
        "MonitorArn": monitor_arn,
    }
    if feedback:
        anomaly["Feedback"] = feedback
    return anomaly


@check
def anomaly_monitors_create_get_delete(emu: Emulator) -> None:
    ce = emu.client("ce")
    assert ce.get_anomaly_monitors()["AnomalyMonitors"] == []
    arn = ce.create_anomaly_monitor(AnomalyMonitor={
        "MonitorName": "bedrock-services", "MonitorType": "DIMENSIONAL", "MonitorDimension": "SERVICE"})["MonitorArn"]
    assert re.fullmatch(r"arn:aws:ce::123456789012:anomalymonitor/[0-9a-f-]{36}", arn), arn
    custom = ce.create_anomaly_monitor(AnomalyMonitor={
        "MonitorName": "team-ml", "MonitorType": "CUSTOM",
        "MonitorSpecification": {"Tags": {"Key": "iamPrincipal/team", "Values": ["ml"]}}})["MonitorArn"]
    monitors = ce.get_anomaly_monitors()["AnomalyMonitors"]
    assert [m["MonitorArn"] for m in monitors] == [arn, custom], monitors
    first = monitors[0]
    assert (first["MonitorName"], first["MonitorType"], first["MonitorDimension"]) == (
        "bedrock-services", "DIMENSIONAL", "SERVICE"), first
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", first["CreationDate"]), first
    assert monitors[1]["MonitorSpecification"] == {"Tags": {"Key": "iamPrincipal/team", "Values": ["ml"]}}
    by_arn = ce.get_anomaly_monitors(MonitorArnList=[custom])["AnomalyMonitors"]
    assert [m["MonitorName"] for m in by_arn] == ["team-ml"], by_arn
    paged = ce.get_anomaly_monitors(MaxResults=1)
    assert len(paged["AnomalyMonitors"]) == 1 and paged["NextPageToken"], paged
    rest = ce.get_anomaly_monitors(MaxResults=1, NextPageToken=paged["NextPageToken"])
    assert [m["MonitorArn"] for m in rest["AnomalyMonitors"]] == [custom] and "NextPageToken" not in rest
    err = client_error(lambda: ce.get_anomaly_monitors(MonitorArnList=[OTHER_MONITOR_ARN]))
    assert err.response["Error"]["Code"] == "UnknownMonitorException", err.response
    err = client_error(lambda: ce.get_anomaly_monitors(NextPageToken="garbage"))
    assert err.response["Error"]["Code"] == "InvalidNextTokenException", err.response
    ce.delete_anomaly_monitor(MonitorArn=arn)
    assert [m["MonitorArn"] for m in ce.get_anomaly_monitors()["AnomalyMonitors"]] == [custom]
    err = client_error(lambda: ce.delete_anomaly_monitor(MonitorArn=arn))
    assert err.response["Error"]["Code"] == "UnknownMonitorException", err.response
    err = client_error(lambda: ce.create_anomaly_monitor(AnomalyMonitor={"MonitorName": "x", "MonitorType": "DIMENSIONAL"}))
    assert err.response["Error"]["Code"] == "ValidationException", err.response
    assert emu.calls() == {"GetAnomalyMonitors": 8, "CreateAnomalyMonitor": 3, "DeleteAnomalyMonitor": 2}, emu.calls()


@check
def anomaly_monitors_seeded(emu: Emulator) -> None:
    monitor = {"MonitorArn": MONITOR_ARN, "MonitorName": "Default-Services-Monitor", "MonitorType": "DIMENSIONAL",
               "MonitorDimension": "SERVICE", "CreationDate": "2026-01-15", "LastEvaluatedDate": "2026-11-25",
               "DimensionalValueCount": 42}
    emu.control("POST", "/_emulator/ce/anomaly-monitors", {"AnomalyMonitors": [monitor]}, expect=201)
    assert emu.client("ce").get_anomaly_monitors()["AnomalyMonitors"] == [monitor]
    emu.control("POST", "/_emulator/ce/anomaly-monitors", {"AnomalyMonitors": [{"MonitorName": "no arn"}]}, expect=400)


@check
def anomalies_real_shape_date_interval_and_monitor_filters(emu: Emulator) -> None:
    anomalies = [
        real_anomaly("a-oct", "2026-10-28", "2026-10-30", MONITOR_ARN, 40.0),
        real_anomaly("a-nov1", "2026-11-01", "2026-11-03", MONITOR_ARN, 250.5, feedback="YES"),
        real_anomaly("a-nov2", "2026-11-10", "2026-11-12", OTHER_MONITOR_ARN, 75.25),
        real_anomaly("a-nov3", "2026-11-20T00:00:00Z", "2026-11-24T00:00:00Z", MONITOR_ARN, 1200.0,
                     feedback="PLANNED_ACTIVITY"),
    ]
    emu.control("POST", "/_emulator/ce/anomalies", {"Anomalies": anomalies}, expect=201)
    ce = emu.client("ce")

    def ids(**kwargs: Any) -> list[str]:
        return [a["AnomalyId"] for a in ce.get_anomalies(**kwargs)["Anomalies"]]

    everything = ce.get_anomalies(DateInterval={"StartDate": "2026-10-01"})["Anomalies"]
    assert everything == anomalies, "every member must round-trip unchanged"
    # Filtered on AnomalyEndDate, both ends inclusive; no EndDate means no upper bound.
    assert ids(DateInterval={"StartDate": "2026-11-01"}) == ["a-nov1", "a-nov2", "a-nov3"]
    assert ids(DateInterval={"StartDate": "2026-10-30", "EndDate": "2026-11-12"}) == ["a-oct", "a-nov1", "a-nov2"]
    assert ids(DateInterval={"StartDate": "2026-11-24", "EndDate": "2026-11-30"}) == ["a-nov3"]
    assert ids(DateInterval={"StartDate": "2026-12-01"}) == []
    assert ids(DateInterval={"StartDate": "2026-10-01"}, MonitorArn=OTHER_MONITOR_ARN) == ["a-nov2"]
    assert ids(DateInterval={"StartDate": "2026-11-01"}, MonitorArn=MONITOR_ARN) == ["a-nov1", "a-nov3"]
    assert ids(DateInterval={"StartDate": "2026-10-01"}, Feedback="YES") == ["a-nov1"]
    assert ids(DateInterval={"StartDate": "2026-10-01"},
               TotalImpact={"NumericOperator": "GREATER_THAN", "StartValue": 200}) == ["a-nov1", "a-nov3"]
    assert ids(DateInterval={"StartDate": "2026-10-01"},
               TotalImpact={"NumericOperator": "BETWEEN", "StartValue": 50, "EndValue": 300}) == ["a-nov1", "a-nov2"]
    # Paging applies after the filters.
    first = ce.get_anomalies(DateInterval={"StartDate": "2026-11-01"}, MonitorArn=MONITOR_ARN, MaxResults=1)
    assert [a["AnomalyId"] for a in first["Anomalies"]] == ["a-nov1"] and first["NextPageToken"], first
    second = ce.get_anomalies(DateInterval={"StartDate": "2026-11-01"}, MonitorArn=MONITOR_ARN, MaxResults=1,
                              NextPageToken=first["NextPageToken"])
    assert [a["AnomalyId"] for a in second["Anomalies"]] == ["a-nov3"] and "NextPageToken" not in second
    err = client_error(lambda: ce.get_anomalies(DateInterval={"StartDate": "2026-10-01"}, NextPageToken="garbage"))
    assert err.response["Error"]["Code"] == "InvalidNextTokenException", err.response
    # As the Rust SDK sends it (awsJson1_1, members in model order).
    status, headers, body = emu.http("POST", "/", json.dumps(
        {"MonitorArn": MONITOR_ARN, "DateInterval": {"StartDate": "2026-11-15", "EndDate": "2026-11-26"}}),
        {"X-Amz-Target": "AWSInsightsIndexService.GetAnomalies", "Content-Type": "application/x-amz-json-1.1",
         "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/ce/aws4_request, "
                          "SignedHeaders=host, Signature=0"})
    assert status == 200 and [a["AnomalyId"] for a in json.loads(body)["Anomalies"]] == ["a-nov3"], (status, body)


# --- Budgets (moto's, with ShowFilterExpression and paging added) -----------------------------------

TEAM_FILTER = {"And": [
    {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock"]}},
    {"Tags": {"Key": "iamPrincipal/team", "Values": ["ml"], "MatchOptions": ["EQUALS"]}},
    {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund"]}}},
]}
TEAM_SPEND = {"ActualSpend": {"Amount": "123.45", "Unit": "USD"}, "ForecastedSpend": {"Amount": "480.00", "Unit": "USD"}}


def create_budgets(budgets: Any) -> None:
    budgets.create_budget(AccountId="123456789012", Budget={
        "BudgetName": "team-ml-bedrock", "BudgetLimit": {"Amount": "500", "Unit": "USD"}, "TimeUnit": "MONTHLY",
        "BudgetType": "COST", "FilterExpression": TEAM_FILTER, "CalculatedSpend": TEAM_SPEND})
    budgets.create_budget(AccountId="123456789012", Budget={
        "BudgetName": "account-total", "BudgetLimit": {"Amount": "1000.0", "Unit": "USD"}, "TimeUnit": "MONTHLY",
        "BudgetType": "COST"})


@check
def budgets_filter_expression_and_calculated_spend(emu: Emulator) -> None:
    budgets = emu.client("budgets")
    create_budgets(budgets)
    shown = budgets.describe_budgets(AccountId="123456789012", ShowFilterExpression=True)["Budgets"]
    assert [b["BudgetName"] for b in shown] == ["team-ml-bedrock", "account-total"], shown
    team, total = shown
    assert team["FilterExpression"] == TEAM_FILTER, team
    assert team["CalculatedSpend"] == TEAM_SPEND and team["BudgetLimit"] == {"Amount": "500", "Unit": "USD"}, team
    assert team["TimeUnit"] == "MONTHLY" and team["BudgetType"] == "COST" and "Start" in team["TimePeriod"], team
    assert "FilterExpression" not in total, total
    # moto fills CalculatedSpend with zeros when the budget was created without it.
    assert total["CalculatedSpend"]["ActualSpend"] == {"Amount": "0", "Unit": "USD"}, total
    # AWS returns FilterExpression only with ShowFilterExpression=true.
    hidden = budgets.describe_budgets(AccountId="123456789012")["Budgets"]
    assert all("FilterExpression" not in b for b in hidden) and hidden[0]["CalculatedSpend"] == TEAM_SPEND, hidden
    one = budgets.describe_budget(AccountId="123456789012", BudgetName="team-ml-bedrock", ShowFilterExpression=True)
    assert one["Budget"]["FilterExpression"] == TEAM_FILTER, one
    one = budgets.describe_budget(AccountId="123456789012", BudgetName="team-ml-bedrock")
    assert "FilterExpression" not in one["Budget"], one
    err = client_error(lambda: budgets.describe_budget(AccountId="123456789012", BudgetName="nope"))
    assert err.response["Error"]["Code"] == "NotFoundException", err.response
    assert emu.calls() == {"CreateBudget": 2, "DescribeBudgets": 2, "DescribeBudget": 3}, emu.calls()


@check
def budgets_describe_budgets_pages(emu: Emulator) -> None:
    budgets = emu.client("budgets")
    create_budgets(budgets)
    first = budgets.describe_budgets(AccountId="123456789012", MaxResults=1)
    assert [b["BudgetName"] for b in first["Budgets"]] == ["team-ml-bedrock"] and first["NextToken"], first
    second = budgets.describe_budgets(AccountId="123456789012", MaxResults=1, NextToken=first["NextToken"])
    assert [b["BudgetName"] for b in second["Budgets"]] == ["account-total"] and "NextToken" not in second, second
    err = client_error(lambda: budgets.describe_budgets(AccountId="123456789012", NextToken="garbage"))
    assert err.response["Error"]["Code"] == "InvalidNextTokenException", err.response
    # The wire answer, as the Rust SDK sends the request: no moto "nextToken": null left over.
    status, _, body = emu.http("POST", "/", json.dumps({"AccountId": "123456789012", "ShowFilterExpression": True}), {
        "X-Amz-Target": "AWSBudgetServiceGateway.DescribeBudgets", "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/budgets/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    answer = json.loads(body)
    assert status == 200 and set(answer) == {"Budgets"}, (status, answer)
    assert answer["Budgets"][0]["FilterExpression"] == TEAM_FILTER
    status, _, body = emu.http("POST", "/", json.dumps({"AccountId": "123456789012", "MaxResults": 0}), {
        "X-Amz-Target": "AWSBudgetServiceGateway.DescribeBudgets", "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/budgets/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    assert status == 400 and json.loads(body)["__type"] == "InvalidParameterException", (status, body)


# --- STS (moto's own) ---------------------------------------------------------------------------------

STS_RAW_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    # Without a credential scope naming sts, moto would route an unsigned form POST to S3.
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/sts/aws4_request, "
                     "SignedHeaders=host, Signature=0",
}


def sts_client(emu: Emulator, key: str, secret: str = "testing", token: str | None = None) -> Any:
    return boto3.client("sts", endpoint_url=emu.url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token)


@check
def sts_caller_identity_default_and_assumed_role(emu: Emulator) -> None:
    default = emu.client("sts").get_caller_identity()
    assert (default["Account"], default["Arn"], default["UserId"]) == (
        "123456789012", "arn:aws:sts::123456789012:user/moto", "AKIAIOSFODNN7EXAMPLE"), default
    # AssumeRole works without creating the role; its temporary key maps back to the session.
    assumed = emu.client("sts").assume_role(RoleArn="arn:aws:iam::123456789012:role/BedrockRole",
                                            RoleSessionName="gw-tenant-acme")
    creds = assumed["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA"), creds
    identity = sts_client(emu, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]).get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::123456789012:assumed-role/BedrockRole/gw-tenant-acme", identity
    assert identity["Account"] == "123456789012" and identity["UserId"].endswith(":gw-tenant-acme"), identity
    # The role is not in IAM, so moto makes up its AROA... id anew on every answer.
    assert identity["UserId"] != assumed["AssumedRoleUser"]["AssumedRoleId"], (identity, assumed)
    # With the role created in IAM first, UserId is stable: the role's id + ":" + session name.
    role = emu.client("iam").create_role(RoleName="StableRole", AssumeRolePolicyDocument="{}")["Role"]
    stable = emu.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="s1")
    stable_id = sts_client(emu, stable["Credentials"]["AccessKeyId"]).get_caller_identity()
    assert stable_id["UserId"] == stable["AssumedRoleUser"]["AssumedRoleId"] == f"{role['RoleId']}:s1", stable_id
    # Only the access key id matters to moto: no secret or session token needed.
    assert sts_client(emu, creds["AccessKeyId"], "x").get_caller_identity()["Arn"] == identity["Arn"]
    # Another account's role: that account.
    other = emu.client("sts").assume_role(RoleArn="arn:aws:iam::222222222222:role/Other", RoleSessionName="s2")
    other_id = sts_client(emu, other["Credentials"]["AccessKeyId"]).get_caller_identity()
    assert (other_id["Account"], other_id["Arn"]) == ("222222222222", "arn:aws:sts::222222222222:assumed-role/Other/s2")
    # Reset forgets the session: the key falls back to the default identity.
    emu.control("POST", "/_emulator/reset", expect=200)
    assert sts_client(emu, creds["AccessKeyId"]).get_caller_identity()["Arn"] == "arn:aws:sts::123456789012:user/moto"


@check
def sts_assume_role_raw_http_and_iam_user(emu: Emulator) -> None:
    # What a test harness without an SDK does: form POST, credential scope naming sts, XML answer.
    status, _, body = emu.http("POST", "/", "Action=AssumeRole&Version=2011-06-15"
                               "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FDataSciRole"
                               "&RoleSessionName=alice%40example.com", STS_RAW_HEADERS)
    key = re.search(rb"<AccessKeyId>(\w+)</AccessKeyId>", body)
    assert status == 200 and key, (status, body)
    status, _, body = emu.http("POST", "/", "Action=GetCallerIdentity&Version=2011-06-15", {
        **STS_RAW_HEADERS,
        "Authorization": STS_RAW_HEADERS["Authorization"].replace("testing/", key.group(1).decode() + "/")})
    assert b"<Arn>arn:aws:sts::123456789012:assumed-role/DataSciRole/alice@example.com</Arn>" in body, body
    # An IAM user's access key answers that user's ARN.
    iam = emu.client("iam")
    iam.create_user(UserName="user-1")
    access_key = iam.create_access_key(UserName="user-1")["AccessKey"]
    identity = sts_client(emu, access_key["AccessKeyId"], access_key["SecretAccessKey"]).get_caller_identity()
    assert (identity["Account"], identity["Arn"]) == ("123456789012", "arn:aws:iam::123456789012:user/user-1"), identity
    assert emu.calls() == {"AssumeRole": 1, "GetCallerIdentity": 2, "CreateUser": 1, "CreateAccessKey": 1}, emu.calls()


# --- AWS Price List (GetProducts, served by the emulator) ---------------------------------------------

PRICING_HEADERS = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "AWSPriceListService.GetProducts",
    # As aws-sdk-pricing signs it (signing name "pricing"); the emulator does not check it.
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/pricing/aws4_request, "
                     "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0",
    "X-Amz-Date": "20261126T000000Z",
}


def sdk_get_products(emu: Emulator, body: dict[str, Any], target: str = "GetProducts") -> tuple[int, dict[str, str], Any]:
    # aws-sdk-pricing 1.123 (protocol_serde/shape_get_products_input.rs) writes the members in
    # this order, skipping absent ones: ServiceCode, Filters [{Type, Field, Value}], FormatVersion,
    # NextToken, MaxResults.
    order = ["ServiceCode", "Filters", "FormatVersion", "NextToken", "MaxResults"]
    raw = json.dumps({k: body[k] for k in order if k in body}, separators=(",", ":"))
    headers = {**PRICING_HEADERS, "X-Amz-Target": f"AWSPriceListService.{target}"}
    status, answer_headers, answer = emu.http("POST", "/", raw, headers)
    return status, {k.lower(): v for k, v in answer_headers.items()}, json.loads(answer)


def price_dimension(doc: dict[str, Any]) -> dict[str, Any]:
    [term] = doc["terms"]["OnDemand"].values()
    [dimension] = term["priceDimensions"].values()
    return dimension


@check
def pricing_get_products_sdk_wire_format(emu: Emulator) -> None:
    status, headers, answer = sdk_get_products(emu, {
        "ServiceCode": "AmazonBedrock",
        "Filters": [{"Type": "TERM_MATCH", "Field": "model", "Value": "nova lite"},
                    {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"}],
        "FormatVersion": "aws_v1", "MaxResults": 100})
    assert status == 200, (status, answer)
    assert headers["content-type"] == "application/x-amz-json-1.1" and headers["x-amzn-requestid"], headers
    assert answer["FormatVersion"] == "aws_v1" and "NextToken" not in answer, answer
    assert all(isinstance(item, str) for item in answer["PriceList"]), "PriceList entries are JSON strings"
    docs = {json.loads(item)["product"]["attributes"]["usagetype"]: json.loads(item) for item in answer["PriceList"]}
    # Nova Lite has, per direction, the standard row and one row per inference tier, whose usage
    # type is the standard one + -batch/-flex/-priority and whose price is the standard price x
    # 0.5 / 0.5 / 1.75 (input 0.00006, output 0.00024 USD per 1K tokens).
    tiers = {"": (None, "0.0000600000", "0.0002400000"), "-batch": ("Batch", "0.0000300000", "0.0001200000"),
             "-flex": ("Flex", "0.0000300000", "0.0001200000"), "-priority": ("Priority", "0.0001050000", "0.0004200000")}
    expected = {f"USE1-NovaLite-{direction}-tokens{suffix}": (tier, price)
                for suffix, (tier, input_price, output_price) in tiers.items()
                for direction, price in (("input", input_price), ("output", output_price))}
    actual = {usage_type: (d["product"]["attributes"].get("serviceTier"), price_dimension(d)["pricePerUnit"]["USD"])
              for usage_type, d in docs.items()}
    assert len(answer["PriceList"]) == len(docs) == 8 and actual == expected, actual
    doc = docs["USE1-NovaLite-input-tokens"]
    assert doc["serviceCode"] == "AmazonBedrock" and doc["product"]["productFamily"] == "Amazon Bedrock", doc
    attributes = doc["product"]["attributes"]
    assert attributes == {
        "regionCode": "us-east-1", "inferenceType": "Input tokens", "servicecode": "AmazonBedrock",
        "feature": "On-demand Inference", "provider": "Amazon", "usagetype": "USE1-NovaLite-input-tokens",
        "locationType": "AWS Region", "location": "US East (N. Virginia)", "model": "Nova Lite",
        "servicename": "Amazon Bedrock", "operation": ""}, attributes
    sku = doc["product"]["sku"]
    assert list(doc["terms"]["OnDemand"]) == [f"{sku}.JRTCKXETXF"], doc["terms"]
    dimension = price_dimension(doc)
    assert dimension["rateCode"] == f"{sku}.JRTCKXETXF.6YS6EN2CT7", dimension
    assert (dimension["unit"], dimension["pricePerUnit"]) == ("1K tokens", {"USD": "0.0000600000"}), dimension
    assert dimension["description"] == "$0.00006 per 1K tokens for NovaLite-input-tokens in US East (N. Virginia)"
    assert price_dimension(docs["USE1-NovaLite-output-tokens"])["pricePerUnit"] == {"USD": "0.0002400000"}
    assert doc["version"] and doc["publicationDate"].endswith("Z"), doc
    # A tier row: the standard row's attributes with the suffixed usage type and serviceTier added,
    # its own SKU, and the tier's price (priority: 0.00006 x 1.75 = 0.000105 USD per 1K tokens).
    priority = docs["USE1-NovaLite-input-tokens-priority"]
    assert priority["product"]["attributes"] == {
        **attributes, "usagetype": "USE1-NovaLite-input-tokens-priority", "serviceTier": "Priority"}, priority
    assert priority["product"]["productFamily"] == "Amazon Bedrock" and priority["product"]["sku"] != sku, priority
    dimension = price_dimension(priority)
    assert (dimension["unit"], dimension["pricePerUnit"]) == ("1K tokens", {"USD": "0.0001050000"}), dimension
    assert dimension["description"] == (
        "$0.000105 per 1K tokens for NovaLite-input-tokens-priority in US East (N. Virginia)"), dimension
    assert docs["USE1-NovaLite-output-tokens-batch"]["product"]["attributes"]["serviceTier"] == "Batch"
    assert emu.calls() == {"GetProducts": 1}, emu.calls()


@check
def pricing_default_catalog_via_boto3(emu: Emulator) -> None:
    pricing = emu.client("pricing")

    def prices(service: str, *filters: tuple[str, str, str]) -> dict[str, tuple[str, str]]:
        items = pricing.get_products(ServiceCode=service, FormatVersion="aws_v1", Filters=[
            {"Type": t, "Field": f, "Value": v} for t, f, v in filters])["PriceList"]
        out = {}
        for item in items:
            doc = json.loads(item)
            dimension = price_dimension(doc)
            out[doc["product"]["attributes"]["usagetype"]] = (dimension["unit"], dimension["pricePerUnit"]["USD"])
        return out

    sonnet = prices("AmazonBedrockFoundationModels",
                    ("TERM_MATCH", "servicename", "Claude Sonnet 4.6 (Amazon Bedrock Edition)"),
                    ("TERM_MATCH", "regionCode", "us-east-1"))
    assert sonnet == {
        "USE1-MP:USE1_InputTokenCount_Global-Units": ("1M tokens", "3.0000000000"),
        "USE1-MP:USE1_OutputTokenCount_Global-Units": ("1M tokens", "15.0000000000"),
        "USE1-MP:USE1_CacheReadInputTokenCount_Global-Units": ("1M tokens", "0.3000000000"),
        "USE1-MP:USE1_CacheWriteInputTokenCount_Global-Units": ("1M tokens", "3.7500000000"),
        "USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units": ("1M tokens", "6.0000000000"),
        "USE1-MP:USE1_InputTokenCount-Units": ("1M tokens", "3.3000000000"),
        "USE1-MP:USE1_OutputTokenCount-Units": ("1M tokens", "16.5000000000"),
        "USE1-MP:USE1_CacheReadInputTokenCount-Units": ("1M tokens", "0.3300000000"),
        "USE1-MP:USE1_CacheWriteInputTokenCount-Units": ("1M tokens", "4.1250000000"),
        "USE1-MP:USE1_CacheWrite1hInputTokenCount-Units": ("1M tokens", "6.6000000000"),
    }, sonnet
    haiku = prices("AmazonBedrockFoundationModels", ("TERM_MATCH", "model", "Claude Haiku 4.5"),
                   ("TERM_MATCH", "regionCode", "us-west-2"), ("CONTAINS", "usagetype", "_global"))
    assert haiku == {
        "USW2-MP:USW2_InputTokenCount_Global-Units": ("1M tokens", "1.0000000000"),
        "USW2-MP:USW2_OutputTokenCount_Global-Units": ("1M tokens", "5.0000000000"),
        "USW2-MP:USW2_CacheReadInputTokenCount_Global-Units": ("1M tokens", "0.1000000000"),
        "USW2-MP:USW2_CacheWriteInputTokenCount_Global-Units": ("1M tokens", "1.2500000000"),
        "USW2-MP:USW2_CacheWrite1hInputTokenCount_Global-Units": ("1M tokens", "2.0000000000"),
    }, haiku
    # A 1-hour cache-write row, whole: regional Haiku in us-west-2, 2 x 1.1 = 2.2 USD per 1M tokens.
    [item] = pricing.get_products(ServiceCode="AmazonBedrockFoundationModels", Filters=[
        {"Type": "TERM_MATCH", "Field": "servicename", "Value": "Claude Haiku 4.5 (Amazon Bedrock Edition)"},
        {"Type": "EQUALS", "Field": "usagetype", "Value": "USW2-MP:USW2_CacheWrite1hInputTokenCount-Units"}])["PriceList"]
    cache_1h = json.loads(item)
    assert cache_1h["product"]["productFamily"] == "Machine Learning", cache_1h
    assert cache_1h["product"]["attributes"] == {
        "regionCode": "us-west-2", "servicecode": "AmazonBedrockFoundationModels",
        "usagetype": "USW2-MP:USW2_CacheWrite1hInputTokenCount-Units", "locationType": "AWS Region",
        "location": "US West (Oregon)", "model": "Claude Haiku 4.5",
        "servicename": "Claude Haiku 4.5 (Amazon Bedrock Edition)", "operation": "Usage"}, cache_1h
    dimension = price_dimension(cache_1h)
    assert (dimension["unit"], dimension["pricePerUnit"]["USD"], dimension["description"]) == (
        "1M tokens", "2.2000000000", "AWS Marketplace software usage|us-west-2|Million Cache Write 1h Input Tokens Regional"
    ), dimension
    # Opus's Marketplace rows carry no `model` attribute: only the service name says which model.
    opus = prices("AmazonBedrockFoundationModels", ("TERM_MATCH", "servicename", "Claude Opus 4.6 (Amazon Bedrock Edition)"),
                  ("TERM_MATCH", "regionCode", "us-east-1"))
    assert opus == {
        "USE1-MP:USE1_InputTokenCount_Global-Units": ("1M tokens", "5.0000000000"),
        "USE1-MP:USE1_OutputTokenCount_Global-Units": ("1M tokens", "25.0000000000"),
        "USE1-MP:USE1_CacheReadInputTokenCount_Global-Units": ("1M tokens", "0.5000000000"),
        "USE1-MP:USE1_CacheWriteInputTokenCount_Global-Units": ("1M tokens", "6.2500000000"),
        "USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units": ("1M tokens", "10.0000000000"),
        "USE1-MP:USE1_InputTokenCount-Units": ("1M tokens", "5.5000000000"),
        "USE1-MP:USE1_OutputTokenCount-Units": ("1M tokens", "27.5000000000"),
        "USE1-MP:USE1_CacheReadInputTokenCount-Units": ("1M tokens", "0.5500000000"),
        "USE1-MP:USE1_CacheWriteInputTokenCount-Units": ("1M tokens", "6.8750000000"),
        "USE1-MP:USE1_CacheWrite1hInputTokenCount-Units": ("1M tokens", "11.0000000000"),
    }, opus
    [item] = pricing.get_products(ServiceCode="AmazonBedrockFoundationModels", Filters=[
        {"Type": "EQUALS", "Field": "servicename", "Value": "Claude Opus 4.6 (Amazon Bedrock Edition)"},
        {"Type": "EQUALS", "Field": "usagetype", "Value": "USE1-MP:USE1_OutputTokenCount_Global-Units"}])["PriceList"]
    assert json.loads(item)["product"]["attributes"] == {
        "regionCode": "us-east-1", "servicecode": "AmazonBedrockFoundationModels",
        "usagetype": "USE1-MP:USE1_OutputTokenCount_Global-Units", "locationType": "AWS Region",
        "location": "US East (N. Virginia)", "servicename": "Claude Opus 4.6 (Amazon Bedrock Edition)",
        "operation": "Usage"}, item
    # So a filter on `model` never finds them, except NONE_OF (a product without the field matches it).
    assert prices("AmazonBedrockFoundationModels", ("TERM_MATCH", "model", "Claude Opus 4.6")) == {}
    assert prices("AmazonBedrockFoundationModels", ("CONTAINS", "model", "opus")) == {}
    not_sonnet_or_haiku = prices("AmazonBedrockFoundationModels", ("NONE_OF", "model", "Claude Sonnet 4.6, claude haiku 4.5"),
                                 ("TERM_MATCH", "regionCode", "us-east-1"))
    assert not_sonnet_or_haiku == opus, not_sonnet_or_haiku
    # EQUALS is exact; TERM_MATCH ignores case.
    assert prices("AmazonBedrockFoundationModels", ("EQUALS", "model", "claude sonnet 4.6")) == {}
    assert len(prices("AmazonBedrockFoundationModels", ("TERM_MATCH", "model", "claude sonnet 4.6"))) == 20, \
        "5 token kinds x (regional, global) x 2 regions"
    titan = prices("AmazonBedrock", ("TERM_MATCH", "model", "Titan Text Embeddings V2"),
                   ("TERM_MATCH", "regionCode", "us-east-1"))
    assert titan == {"USE1-TitanEmbeddingV2-Text-input-tokens": ("1K tokens", "0.0000200000")}, titan
    llama = prices("AmazonBedrock", ("CONTAINS", "usagetype", "llama3-3"), ("ANY_OF", "regionCode", "us-west-2, eu-west-1"))
    assert llama == {"USW2-Llama3-3-70B-input-tokens": ("1K tokens", "0.0007200000"),
                     "USW2-Llama3-3-70B-output-tokens": ("1K tokens", "0.0007200000")}, llama
    nova = prices("AmazonBedrock", ("CONTAINS", "model", "Nova"), ("NONE_OF", "regionCode", "us-west-2"),
                  ("TERM_MATCH", "inferenceType", "Output tokens"))
    # Nova Lite and Nova Pro also have batch/flex (x 0.5) and priority (x 1.75) rows; Nova Micro does not.
    assert nova == {"USE1-NovaMicro-output-tokens": ("1K tokens", "0.0001400000"),
                    "USE1-NovaLite-output-tokens": ("1K tokens", "0.0002400000"),
                    "USE1-NovaLite-output-tokens-batch": ("1K tokens", "0.0001200000"),
                    "USE1-NovaLite-output-tokens-flex": ("1K tokens", "0.0001200000"),
                    "USE1-NovaLite-output-tokens-priority": ("1K tokens", "0.0004200000"),
                    "USE1-NovaPro-output-tokens": ("1K tokens", "0.0032000000"),
                    "USE1-NovaPro-output-tokens-batch": ("1K tokens", "0.0016000000"),
                    "USE1-NovaPro-output-tokens-flex": ("1K tokens", "0.0016000000"),
                    "USE1-NovaPro-output-tokens-priority": ("1K tokens", "0.0056000000")}, nova
    flex = prices("AmazonBedrock", ("TERM_MATCH", "serviceTier", "flex"), ("TERM_MATCH", "regionCode", "us-west-2"))
    assert flex == {"USW2-NovaLite-input-tokens-flex": ("1K tokens", "0.0000300000"),
                    "USW2-NovaLite-output-tokens-flex": ("1K tokens", "0.0001200000"),
                    "USW2-NovaPro-input-tokens-flex": ("1K tokens", "0.0004000000"),
                    "USW2-NovaPro-output-tokens-flex": ("1K tokens", "0.0016000000")}, flex
    assert len(prices("AmazonBedrock")) == 42, "(9 usage types (Titan has no output) + 2 models x 2 x 3 tiers) x 2 regions"
    assert len(prices("AmazonBedrock", ("TERM_MATCH", "ServiceCode", "AmazonBedrock"))) == 42
    assert len(prices("AmazonBedrock", ("NONE_OF", "serviceTier", "Batch,Flex,Priority"))) == 18, "standard rows"
    services = pricing.describe_services()["Services"]
    assert [s["ServiceCode"] for s in services] == ["AmazonBedrock", "AmazonBedrockFoundationModels"], services
    assert "serviceTier" in services[0]["AttributeNames"], services
    assert "model" in services[1]["AttributeNames"] and "servicename" in services[1]["AttributeNames"], services
    values = pricing.get_attribute_values(ServiceCode="AmazonBedrockFoundationModels", AttributeName="servicename")
    assert [v["Value"] for v in values["AttributeValues"]] == [
        "Claude Haiku 4.5 (Amazon Bedrock Edition)", "Claude Opus 4.6 (Amazon Bedrock Edition)",
        "Claude Sonnet 4.6 (Amazon Bedrock Edition)"], values
    values = pricing.get_attribute_values(ServiceCode="AmazonBedrockFoundationModels", AttributeName="model")
    assert [v["Value"] for v in values["AttributeValues"]] == ["Claude Haiku 4.5", "Claude Sonnet 4.6"], values
    values = pricing.get_attribute_values(ServiceCode="AmazonBedrock", AttributeName="serviceTier")
    assert [v["Value"] for v in values["AttributeValues"]] == ["Batch", "Flex", "Priority"], values


# The default Price List catalogue, restated by hand (README, "Default catalog") to compare the
# emulator's whole answer against; nothing here comes from aws_emulator.py.
CATALOG_REGIONS = [("us-east-1", "USE1", "US East (N. Virginia)"), ("us-west-2", "USW2", "US West (Oregon)")]
# AmazonBedrock, USD per 1K tokens: (model, provider, usage-type slug, input, output or None)
CATALOG_FIRST_PARTY = [
    ("Nova Micro", "Amazon", "NovaMicro", "0.000035", "0.00014"),
    ("Nova Lite", "Amazon", "NovaLite", "0.00006", "0.00024"),
    ("Nova Pro", "Amazon", "NovaPro", "0.0008", "0.0032"),
    ("Llama 3.3 70B", "Meta", "Llama3-3-70B", "0.00072", "0.00072"),
    ("Titan Text Embeddings V2", "Amazon", "TitanEmbeddingV2-Text", "0.00002", None),
]
# Inference tiers, for Nova Lite and Nova Pro only: (usage-type suffix, serviceTier, x standard price)
CATALOG_TIERS = [("-batch", "Batch", "0.5"), ("-flex", "Flex", "0.5"), ("-priority", "Priority", "1.75")]
CATALOG_TIERED = {"Nova Lite", "Nova Pro"}
# AmazonBedrockFoundationModels, USD per 1M tokens of the global profile (regional: x 1.1), per
# (usage-type metric, description dimension); Opus's rows have no `model` attribute.
CATALOG_METRICS = [("InputTokenCount", "Input Tokens"), ("OutputTokenCount", "Response Tokens"),
                   ("CacheReadInputTokenCount", "Cache Read Input Tokens"),
                   ("CacheWriteInputTokenCount", "Cache Write Input Tokens"),
                   ("CacheWrite1hInputTokenCount", "Cache Write 1h Input Tokens")]
CATALOG_MARKETPLACE = [
    ("Claude Sonnet 4.6", ["3", "15", "0.30", "3.75", "6"]),
    ("Claude Haiku 4.5", ["1", "5", "0.10", "1.25", "2"]),
    ("Claude Opus 4.6", ["5", "25", "0.50", "6.25", "10"]),
]
CATALOG_WITHOUT_MODEL = {"Claude Opus 4.6"}


def expected_price_catalog() -> dict[tuple[str, str, str], tuple[str, dict[str, str], str, str]]:
    """(service code, usagetype, servicename) -> (productFamily, attributes, unit, USD price)."""
    expected = {}
    for region, prefix, location in CATALOG_REGIONS:
        for model, provider, slug, *direction_prices in CATALOG_FIRST_PARTY:
            for direction, price in zip(("input", "output"), direction_prices):
                if price is None:
                    continue
                attributes = {"regionCode": region, "inferenceType": f"{direction.capitalize()} tokens",
                              "servicecode": "AmazonBedrock", "feature": "On-demand Inference", "provider": provider,
                              "usagetype": f"{prefix}-{slug}-{direction}-tokens", "locationType": "AWS Region",
                              "location": location, "model": model, "servicename": "Amazon Bedrock", "operation": ""}
                rows = [(attributes, Decimal(price))]
                if model in CATALOG_TIERED:
                    rows += [({**attributes, "usagetype": attributes["usagetype"] + suffix, "serviceTier": tier},
                              Decimal(price) * Decimal(factor)) for suffix, tier, factor in CATALOG_TIERS]
                for attrs, amount in rows:
                    expected["AmazonBedrock", attrs["usagetype"], "Amazon Bedrock"] = (
                        "Amazon Bedrock", attrs, "1K tokens", f"{amount:.10f}")
        for model, global_prices in CATALOG_MARKETPLACE:
            servicename = f"{model} (Amazon Bedrock Edition)"
            for (metric, _), price in zip(CATALOG_METRICS, global_prices, strict=True):
                for suffix, factor in (("", Decimal("1.1")), ("_Global", Decimal(1))):
                    usage_type = f"{prefix}-MP:{prefix}_{metric}{suffix}-Units"
                    attributes = {"regionCode": region, "servicecode": "AmazonBedrockFoundationModels",
                                  "usagetype": usage_type, "locationType": "AWS Region", "location": location,
                                  "model": model, "servicename": servicename, "operation": "Usage"}
                    if model in CATALOG_WITHOUT_MODEL:
                        del attributes["model"]
                    expected["AmazonBedrockFoundationModels", usage_type, servicename] = (
                        "Machine Learning", attributes, "1M tokens", f"{Decimal(price) * factor:.10f}")
    return expected


@check
def pricing_default_catalog_complete(emu: Emulator) -> None:
    """Every product of the default catalogue, and nothing else, as restated above."""
    pricing = emu.client("pricing")
    expected = expected_price_catalog()
    actual, skus = {}, set()
    for service in ("AmazonBedrock", "AmazonBedrockFoundationModels"):
        answer = pricing.get_products(ServiceCode=service)
        assert "NextToken" not in answer, "the whole service fits one page of 100"
        for item in answer["PriceList"]:
            doc = json.loads(item)
            attributes = doc["product"]["attributes"]
            key = (doc["serviceCode"], attributes["usagetype"], attributes["servicename"])
            assert key not in actual, f"duplicate product {key}"
            dimension = price_dimension(doc)
            actual[key] = (doc["product"]["productFamily"], attributes, dimension["unit"], dimension["pricePerUnit"]["USD"])
            skus.add(doc["product"]["sku"])
            # The description names the usage type (Marketplace: the dimension and scope) and the price.
            description = dimension["description"]
            if service == "AmazonBedrock":
                location = attributes["location"]
                assert description.endswith(f" per 1K tokens for {attributes['usagetype'][5:]} in {location}"), description
                assert Decimal(description[1:].split()[0]) == Decimal(dimension["pricePerUnit"]["USD"]), description
            else:
                metric = attributes["usagetype"].split("_", 1)[1].removesuffix("-Units")
                dimension_name = dict(CATALOG_METRICS)[metric.removesuffix("_Global")]
                scope = "Global" if metric.endswith("_Global") else "Regional"
                assert description == (f"AWS Marketplace software usage|{attributes['regionCode']}|"
                                       f"Million {dimension_name} {scope}"), description
    assert len(skus) == len(actual), "one SKU per product"
    assert set(actual) == set(expected), (sorted(set(actual) - set(expected)), sorted(set(expected) - set(actual)))
    wrong = {k: (actual[k], expected[k]) for k in expected if actual[k] != expected[k]}
    assert not wrong, wrong
    counts = {service: sum(1 for k in actual if k[0] == service) for service in ("AmazonBedrock", "AmazonBedrockFoundationModels")}
    assert counts == {"AmazonBedrock": 42, "AmazonBedrockFoundationModels": 60}, counts


@check
def pricing_get_products_pages(emu: Emulator) -> None:
    request = {"ServiceCode": "AmazonBedrockFoundationModels",
               "Filters": [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"}],
               "FormatVersion": "aws_v1", "MaxResults": 10}
    seen, token, pages = [], None, 0
    while True:
        status, _, answer = sdk_get_products(emu, {**request, **({"NextToken": token} if token else {})})
        assert status == 200, answer
        seen += [json.loads(item)["product"]["sku"] for item in answer["PriceList"]]
        pages += 1
        token = answer.get("NextToken")
        if not token:
            break
    # 3 models x 5 token kinds x (regional, global) in us-east-1: exactly 3 full pages, no 4th.
    assert pages == 3 and len(seen) == len(set(seen)) == 30, (pages, len(seen))
    # A token only continues the query it came from.
    _, _, first = sdk_get_products(emu, request)
    status, headers, answer = sdk_get_products(emu, {**request, "Filters": [], "NextToken": first["NextToken"]})
    assert (status, answer["__type"]) == (400, "InvalidNextTokenException"), answer
    assert headers["x-amzn-errortype"] == "InvalidNextTokenException", headers
    status, _, answer = sdk_get_products(emu, {**request, "NextToken": "garbage"})
    assert (status, answer["__type"]) == (400, "InvalidNextTokenException"), answer
    # Without MaxResults a page holds up to 100 items.
    _, _, everything = sdk_get_products(emu, {"ServiceCode": "AmazonBedrockFoundationModels"})
    assert len(everything["PriceList"]) == 60 and "NextToken" not in everything
    # boto3's paginator follows NextToken too.
    paginator = emu.client("pricing").get_paginator("get_products")
    sizes = [len(p["PriceList"]) for p in paginator.paginate(ServiceCode="AmazonBedrock", PaginationConfig={"PageSize": 8})]
    assert sizes == [8, 8, 8, 8, 8, 2], sizes


@check
def pricing_errors(emu: Emulator) -> None:
    status, headers, answer = sdk_get_products(emu, {"ServiceCode": "AmazonFoo", "FormatVersion": "aws_v1"})
    assert (status, answer["__type"]) == (400, "NotFoundException"), answer
    assert headers["x-amzn-errortype"] == "NotFoundException" and answer["Message"], (headers, answer)
    for bad in ({"FormatVersion": "aws_v1"},
                {"ServiceCode": "AmazonBedrock", "Filters": [{"Type": "LIKE", "Field": "model", "Value": "x"}]},
                {"ServiceCode": "AmazonBedrock", "Filters": [{"Type": "TERM_MATCH", "Value": "x"}]},
                {"ServiceCode": "AmazonBedrock", "MaxResults": 101},
                {"ServiceCode": "AmazonBedrock", "FormatVersion": "aws_v2"}):
        status, _, answer = sdk_get_products(emu, bad)
        assert (status, answer["__type"]) == (400, "InvalidParameterException"), (bad, answer)
    status, _, answer = sdk_get_products(emu, {}, target="ListPriceLists")
    assert (status, answer["__type"]) == (400, "UnknownOperationException"), answer
    pricing = emu.client("pricing")
    err = client_error(lambda: pricing.get_products(ServiceCode="AmazonFoo"))
    assert err.response["Error"]["Code"] == "NotFoundException", err.response
    # Injected faults apply to GetProducts like any operation.
    emu.control("POST", "/_emulator/faults", {"operation": "GetProducts", "error_type": "ThrottlingException",
                                              "message": "Rate exceeded"}, expect=201)
    err = client_error(lambda: pricing.get_products(ServiceCode="AmazonBedrock"))
    assert err.response["Error"]["Code"] == "ThrottlingException", err.response
    assert len(pricing.get_products(ServiceCode="AmazonBedrock")["PriceList"]) == 42
    calls = emu.calls()
    assert calls["GetProducts"] == 5 + 3 + 1 and calls["ListPriceLists"] == 1, calls


@check
def pricing_seeded_catalog(emu: Emulator) -> None:
    defaults = emu.control("GET", "/_emulator/pricing/products", expect=200)
    assert {k: len(v) for k, v in defaults.items()} == {"AmazonBedrock": 42, "AmazonBedrockFoundationModels": 60}
    custom = json.loads(json.dumps(defaults["AmazonBedrock"][0]))
    custom["product"]["attributes"]["model"] = "Nova Premier"
    price_dimension(custom)["pricePerUnit"]["USD"] = "0.0025000000"
    del custom["serviceCode"]  # filled in from the key
    emu.control("POST", "/_emulator/pricing/products", {"AmazonBedrock": [custom]}, expect=201)
    catalog = emu.control("GET", "/_emulator/pricing/products", expect=200)
    assert list(catalog) == ["AmazonBedrock"] and catalog["AmazonBedrock"][0]["serviceCode"] == "AmazonBedrock"
    pricing = emu.client("pricing")
    [item] = pricing.get_products(ServiceCode="AmazonBedrock")["PriceList"]
    assert json.loads(item)["product"]["attributes"]["model"] == "Nova Premier"
    assert price_dimension(json.loads(item))["pricePerUnit"]["USD"] == "0.0025000000"
    # The seed replaces the whole catalog: other service codes are gone.
    assert client_error(lambda: pricing.get_products(ServiceCode="AmazonBedrockFoundationModels")).response[
        "Error"]["Code"] == "NotFoundException"
    # A PriceList string (as GetProducts answers it) is accepted as a document too.
    emu.control("POST", "/_emulator/pricing/products", {"AmazonBedrockService": [item]}, expect=201)
    assert len(pricing.get_products(ServiceCode="AmazonBedrockService")["PriceList"]) == 1
    for bad in ({"AmazonBedrock": {"product": {}}}, {"AmazonBedrock": [{"terms": {}}]}, {"AmazonBedrock": ["{no"]}):
        emu.control("POST", "/_emulator/pricing/products", bad, expect=400)
    # Any reset brings the default catalog back.
    emu.control("POST", "/_emulator/reset", expect=200)
    assert len(pricing.get_products(ServiceCode="AmazonBedrockFoundationModels")["PriceList"]) == 60
    emu.control("POST", "/_emulator/pricing/products", {}, expect=201)
    emu.control("POST", "/moto-api/reset", expect=200)
    assert len(pricing.get_products(ServiceCode="AmazonBedrock")["PriceList"]) == 42


# --- IAM, reset, lifetime -------------------------------------------------------------------------


@check
def iam_roles_with_tags(emu: Emulator) -> None:
    iam = emu.client("iam")
    iam.create_role(RoleName="bedrock-ml", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    iam.tag_role(RoleName="bedrock-ml", Tags=[{"Key": "team", "Value": "ml"}, {"Key": "project", "Value": "chat"}])
    details = iam.get_account_authorization_details(Filter=["Role"])
    roles = {r["RoleName"]: r for r in details["RoleDetailList"]}
    tags = {t["Key"]: t["Value"] for t in roles["bedrock-ml"]["Tags"]}
    assert tags == {"team": "ml", "project": "chat"}, roles["bedrock-ml"]
    calls = emu.calls()
    assert calls == {"CreateRole": 1, "TagRole": 1, "GetAccountAuthorizationDetails": 1}, calls


@check
def reset_clears_everything(emu: Emulator) -> None:
    seed_usage(emu, usage_result("9.00"))
    emu.control("POST", "/_emulator/ce/tags", {"team": ["ml"]}, expect=201)
    emu.control("POST", "/_emulator/faults", {"operation": "ListRoles", "error_type": "ServiceFailure", "times": 5}, expect=201)
    emu.control("POST", "/_emulator/latency", {"ms": 200}, expect=200)
    iam, ce = emu.client("iam"), emu.client("ce")
    iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    emu.control("POST", "/_emulator/reset", expect=200)
    assert emu.calls() == {}
    assert emu.control("GET", "/_emulator/faults", expect=200) == {}
    started = time.monotonic()
    assert iam.list_roles()["Roles"] == [], "moto state must be reset"
    assert time.monotonic() - started < 0.2, "latency must be reset"
    assert ce.get_tags(TimePeriod=PERIOD)["Tags"] == []
    assert cost_and_usage(ce)["ResultsByTime"] == [], "moto's GetCostAndUsage queue must be reset"


@check
def moto_api_reset_clears_emulator_state_too(emu: Emulator) -> None:
    emu.control("POST", "/_emulator/ce/tags", {"team": ["ml"]}, expect=201)
    emu.client("iam").list_roles()
    emu.control("POST", "/moto-api/reset", expect=200)
    assert emu.calls() == {}
    assert emu.client("ce").get_tags(TimePeriod=PERIOD)["Tags"] == []


@check
def seeds_are_per_account(emu: Emulator) -> None:
    emu.control("POST", "/_emulator/ce/tags?account_id=111111111111", {"team": ["ml"]}, expect=201)
    assert emu.client("ce").get_tags(TimePeriod=PERIOD)["Tags"] == []


# --- Athena ----------------------------------------------------------------------------------------

COLUMNS = [{"Name": "team", "Type": "varchar"}, {"Name": "cost", "Type": "double"}]


def athena_row(*values: str) -> dict[str, Any]:
    return {"Data": [{"VarCharValue": v} for v in values]}


def seed_athena_result(emu: Emulator, rows: list[dict[str, Any]]) -> None:
    emu.control("POST", "/moto-api/static/athena/query-results",
                {"results": [{"rows": rows, "column_info": COLUMNS}]}, expect=201)


def queue_outcomes(emu: Emulator, *outcomes: dict[str, Any]) -> None:
    emu.control("POST", "/_emulator/athena/outcomes", {"outcomes": list(outcomes)}, expect=201)


def start_query(athena: Any, sql: str = "SELECT team, cost FROM cur", **extra: Any) -> str:
    return athena.start_query_execution(QueryString=sql, WorkGroup="primary", **extra)["QueryExecutionId"]


def query_status(athena: Any, qid: str) -> dict[str, Any]:
    return athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]


def assert_invalid_request(err: botocore.exceptions.ClientError, message_part: str) -> None:
    assert err.response["Error"]["Code"] == "InvalidRequestException", err.response
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400, err.response
    assert message_part in err.response["Error"]["Message"], err.response


@check
def athena_default_execution_succeeds_with_statistics(emu: Emulator) -> None:
    athena = emu.client("athena")
    qid = athena.start_query_execution(QueryString="SELECT 1")["QueryExecutionId"]
    execution = query_status(athena, qid)
    assert execution["Status"]["State"] == "SUCCEEDED", execution
    assert "CompletionDateTime" in execution["Status"] and "AthenaError" not in execution["Status"]
    assert execution["Statistics"]["DataScannedInBytes"] == 0, execution
    # moto's nulls are dropped; AWS reports the primary workgroup when none was named.
    assert execution["WorkGroup"] == "primary" and "ResultConfiguration" not in execution, execution


@check
def athena_get_query_results_pages(emu: Emulator) -> None:
    header = athena_row("team", "cost")
    data = [athena_row(f"team{i}", f"{i}.5") for i in range(5)]
    seed_athena_result(emu, [header, *data])
    athena = emu.client("athena")
    qid = start_query(athena)
    assert query_status(athena, qid)["Status"]["State"] == "SUCCEEDED"
    everything = athena.get_query_results(QueryExecutionId=qid)
    assert everything["ResultSet"]["Rows"] == [header, *data] and "NextToken" not in everything, everything
    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        answer = athena.get_query_results(QueryExecutionId=qid, MaxResults=2, **kwargs)
        assert answer["ResultSet"]["ResultSetMetadata"]["ColumnInfo"] == COLUMNS, answer
        pages.append(answer["ResultSet"]["Rows"])
        token = answer.get("NextToken")
        if not token:
            break
    assert pages == [[header, data[0]], data[1:3], data[3:5]], pages
    # boto3's own paginator follows NextToken too.
    paginated = athena.get_paginator("get_query_results").paginate(
        QueryExecutionId=qid, PaginationConfig={"PageSize": 4})
    assert [len(p["ResultSet"]["Rows"]) for p in paginated] == [4, 2]
    err = client_error(lambda: athena.get_query_results(QueryExecutionId=qid, NextToken="garbage"))
    assert_invalid_request(err, "NextToken")
    other = start_query(athena)
    foreign = athena.get_query_results(QueryExecutionId=qid, MaxResults=1)["NextToken"]
    assert_invalid_request(client_error(lambda: athena.get_query_results(QueryExecutionId=other, NextToken=foreign)),
                           "NextToken")
    assert_invalid_request(client_error(lambda: athena.get_query_results(QueryExecutionId=qid, MaxResults=1001)),
                           "MaxResults")


@check
def athena_query_log(emu: Emulator) -> None:
    athena = emu.client("athena")
    first = athena.start_query_execution(
        QueryString="SELECT * FROM cur WHERE team = ?",
        QueryExecutionContext={"Database": "cur_db", "Catalog": "AwsDataCatalog"},
        ResultConfiguration={"OutputLocation": "s3://results/athena/"},
        WorkGroup="primary",
        ExecutionParameters=["'ml'"],
    )["QueryExecutionId"]
    second = athena.start_query_execution(QueryString="SELECT 2")["QueryExecutionId"]
    athena.stop_query_execution(QueryExecutionId=second)
    log = emu.control("GET", "/_emulator/athena/queries", expect=200)
    assert log == [
        {"id": first, "query": "SELECT * FROM cur WHERE team = ?", "database": "cur_db", "catalog": "AwsDataCatalog",
         "workgroup": "primary", "output_location": "s3://results/athena/", "execution_parameters": ["'ml'"],
         "result_reuse": None, "stopped": False},
        {"id": second, "query": "SELECT 2", "database": None, "catalog": None, "workgroup": None,
         "output_location": None, "execution_parameters": None, "result_reuse": None, "stopped": True},
    ], log
    # Stopping a finished query leaves it SUCCEEDED, as AWS does (moto alone would cancel it).
    assert query_status(athena, second)["Status"]["State"] == "SUCCEEDED"
    # A StartQueryExecution that moto refuses creates no execution and no log entry.
    client_error(lambda: athena.start_query_execution(QueryString="SELECT 3", WorkGroup="no-such-wg"))
    assert len(emu.control("GET", "/_emulator/athena/queries", expect=200)) == 2


@check
def athena_failed_outcome(emu: Emulator) -> None:
    reason = "SYNTAX_ERROR: line 1:8: Column 'x' cannot be resolved"
    queue_outcomes(emu, {"state": "FAILED", "reason": reason, "error_category": 2, "error_type": 1006,
                         "data_scanned_bytes": 1024})
    rows = [athena_row("team", "cost"), athena_row("ml", "1.0")]
    seed_athena_result(emu, rows)
    athena = emu.client("athena")
    failed = start_query(athena, "SELECT x FROM cur")
    for _ in range(2):
        execution = query_status(athena, failed)
        status = execution["Status"]
        assert status["State"] == "FAILED", status
        assert status["StateChangeReason"] == reason
        assert status["AthenaError"] == {"ErrorCategory": 2, "ErrorType": 1006, "Retryable": False,
                                         "ErrorMessage": reason}, status
        assert "CompletionDateTime" in status
        assert execution["Statistics"]["DataScannedInBytes"] == 1024, execution
        assert execution["Statistics"]["TotalExecutionTimeInMillis"] > 0, execution
    err = client_error(lambda: athena.get_query_results(QueryExecutionId=failed))
    assert_invalid_request(err, "Final query state: FAILED")
    # The failed query did not take the seeded result: the next (default) one gets it.
    retried = start_query(athena)
    assert query_status(athena, retried)["Status"]["State"] == "SUCCEEDED"
    assert athena.get_query_results(QueryExecutionId=retried)["ResultSet"]["Rows"] == rows
    assert emu.control("GET", "/_emulator/athena/outcomes", expect=200) == []


@check
def athena_cancelled_outcome_defaults(emu: Emulator) -> None:
    queue_outcomes(emu, {"state": "CANCELLED"})
    athena = emu.client("athena")
    qid = start_query(athena)
    status = query_status(athena, qid)["Status"]
    assert status["State"] == "CANCELLED" and status["StateChangeReason"], status
    assert status["AthenaError"]["Retryable"] is False and status["AthenaError"]["ErrorCategory"] == 2, status
    assert_invalid_request(client_error(lambda: athena.get_query_results(QueryExecutionId=qid)), "CANCELLED")


@check
def athena_running_then_succeeded(emu: Emulator) -> None:
    queue_outcomes(emu, {"state": "RUNNING_THEN_SUCCEEDED", "polls": 3, "data_scanned_bytes": 123456789})
    rows = [athena_row("team", "cost"), athena_row("ml", "2.0")]
    seed_athena_result(emu, rows)
    athena = emu.client("athena")
    qid = start_query(athena)
    # Before any poll the query counts as QUEUED.
    assert_invalid_request(client_error(lambda: athena.get_query_results(QueryExecutionId=qid)),
                           "Current state: QUEUED")
    seen = []
    for _ in range(3):
        execution = query_status(athena, qid)
        seen.append(execution["Status"]["State"])
        assert "CompletionDateTime" not in execution["Status"], execution
        assert execution["Statistics"]["DataScannedInBytes"] == 0, execution
    assert seen == ["QUEUED", "RUNNING", "RUNNING"], seen
    assert_invalid_request(client_error(lambda: athena.get_query_results(QueryExecutionId=qid)),
                           "Query has not yet finished. Current state: RUNNING")
    done = query_status(athena, qid)
    assert done["Status"]["State"] == "SUCCEEDED" and "CompletionDateTime" in done["Status"], done
    assert "AthenaError" not in done["Status"] and "StateChangeReason" not in done["Status"]
    statistics = done["Statistics"]
    assert statistics["DataScannedInBytes"] == 123456789, statistics
    assert statistics["TotalExecutionTimeInMillis"] == (
        statistics["QueryQueueTimeInMillis"] + statistics["ServicePreProcessingTimeInMillis"]
        + statistics["EngineExecutionTimeInMillis"] + statistics["ServiceProcessingTimeInMillis"]) > 0
    assert query_status(athena, qid)["Status"]["State"] == "SUCCEEDED", "SUCCEEDED must stay"
    assert athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"] == rows
    # Outcomes apply in order; the next query is back to moto's default.
    assert query_status(athena, start_query(athena))["Status"]["State"] == "SUCCEEDED"


@check
def athena_stop_running_query(emu: Emulator) -> None:
    queue_outcomes(emu, {"state": "RUNNING_THEN_SUCCEEDED", "polls": 5}, {"state": "RUNNING"})
    athena = emu.client("athena")
    slow, endless = start_query(athena), start_query(athena)
    assert query_status(athena, slow)["Status"]["State"] == "QUEUED"
    assert query_status(athena, slow)["Status"]["State"] == "RUNNING"
    athena.stop_query_execution(QueryExecutionId=slow)
    for _ in range(6):
        status = query_status(athena, slow)["Status"]
        assert status["State"] == "CANCELLED" and "CompletionDateTime" in status, status
    assert "AthenaError" not in status, status
    assert_invalid_request(client_error(lambda: athena.get_query_results(QueryExecutionId=slow)), "CANCELLED")
    states = [query_status(athena, endless)["Status"]["State"] for _ in range(4)]
    assert states == ["QUEUED", "RUNNING", "RUNNING", "RUNNING"], states
    athena.stop_query_execution(QueryExecutionId=endless)
    assert query_status(athena, endless)["Status"]["State"] == "CANCELLED"
    log = emu.control("GET", "/_emulator/athena/queries", expect=200)
    assert [(q["id"], q["stopped"]) for q in log] == [(slow, True), (endless, True)], log


@check
def athena_unknown_execution_id(emu: Emulator) -> None:
    athena = emu.client("athena")
    missing = "00000000-0000-0000-0000-000000000000"
    for call in (athena.get_query_execution, athena.get_query_results, athena.stop_query_execution):
        assert_invalid_request(client_error(lambda: call(QueryExecutionId=missing)), "was not found")


@check
def athena_outcome_control_requests(emu: Emulator) -> None:
    for bad in ({"outcomes": {"state": "FAILED"}}, {"outcomes": [{"state": "DONE"}]},
                {"outcomes": [{"state": "RUNNING_THEN_SUCCEEDED", "polls": -1}]},
                {"outcomes": [{"state": "SUCCEEDED", "reason": "x"}]},
                {"outcomes": [{"state": "RUNNING", "polls": 2}]},
                {"outcomes": [{"state": "FAILED", "error_category": "2"}]},
                {"outcomes": [{"state": "FAILED", "data_scanned_bytes": -5}]},
                {"outcomes": [{"state": "FAILED", "reson": "typo"}]},
                {"outcomes": [{"state": "FAILED", "reused_previous_result": True}]},
                {"outcomes": [{"state": "SUCCEEDED", "reused_previous_result": "yes"}]}):
        emu.control("POST", "/_emulator/athena/outcomes", bad, expect=400)
    queue_outcomes(emu, {"state": "FAILED"}, {"state": "RUNNING_THEN_SUCCEEDED", "polls": 2})
    pending = emu.control("GET", "/_emulator/athena/outcomes", expect=200)
    assert pending == [{"state": "FAILED"}, {"state": "RUNNING_THEN_SUCCEEDED", "polls": 2}], pending
    # A refused StartQueryExecution does not use up an outcome.
    athena = emu.client("athena")
    client_error(lambda: athena.start_query_execution(QueryString="SELECT 1", WorkGroup="no-such-wg"))
    assert len(emu.control("GET", "/_emulator/athena/outcomes", expect=200)) == 2
    assert query_status(athena, start_query(athena))["Status"]["State"] == "FAILED"
    emu.control("DELETE", "/_emulator/athena/outcomes", expect=200)
    assert emu.control("GET", "/_emulator/athena/outcomes", expect=200) == []
    assert query_status(athena, start_query(athena))["Status"]["State"] == "SUCCEEDED"


@check
def athena_result_reuse(emu: Emulator) -> None:
    athena = emu.client("athena")
    reuse = {"ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 15}}
    queue_outcomes(emu, {"state": "SUCCEEDED", "reused_previous_result": True}, {"state": "SUCCEEDED"})
    reused = athena.start_query_execution(QueryString="SELECT 1", ResultReuseConfiguration=reuse)["QueryExecutionId"]
    fresh = start_query(athena)
    stats = query_status(athena, reused)["Statistics"]
    assert stats["ResultReuseInformation"] == {"ReusedPreviousResult": True}, stats
    stats = query_status(athena, fresh)["Statistics"]
    assert stats["ResultReuseInformation"] == {"ReusedPreviousResult": False}, stats
    log = emu.control("GET", "/_emulator/athena/queries", expect=200)
    assert [q["result_reuse"] for q in log] == [reuse, None], log


@check
def athena_reset_clears_log_and_outcomes(emu: Emulator) -> None:
    athena = emu.client("athena")
    start_query(athena)
    queue_outcomes(emu, {"state": "FAILED"})
    emu.control("POST", "/_emulator/reset", expect=200)
    assert emu.control("GET", "/_emulator/athena/queries", expect=200) == []
    assert emu.control("GET", "/_emulator/athena/outcomes", expect=200) == []
    start_query(athena)
    queue_outcomes(emu, {"state": "FAILED"})
    emu.control("POST", "/moto-api/reset", expect=200)
    assert emu.control("GET", "/_emulator/athena/queries", expect=200) == []
    assert emu.control("GET", "/_emulator/athena/outcomes", expect=200) == []


# --- S3, as object_store reads Parquet (path-style, byte ranges) -----------------------------------

PARQUET_LIKE = b"PAR1" + bytes(range(256)) * 4 + b"\x10\x00\x00\x00PAR1"  # 1036 bytes


def s3_client(emu: Emulator) -> Any:
    return boto3.client(
        "s3", endpoint_url=emu.url, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": 1}),
    )


def seed_bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="cur")
    key = "export/data/BILLING_PERIOD=2026-10/part-0.parquet"
    s3.put_object(Bucket="cur", Key=key, Body=PARQUET_LIKE)
    s3.put_object(Bucket="cur", Key="export/data/BILLING_PERIOD=2026-11/part-0.parquet", Body=b"PAR1PAR1")
    s3.put_object(Bucket="cur", Key="export/metadata/manifest.json", Body=b"{}")
    return key


@check
def s3_list_with_prefix_and_delimiter(emu: Emulator) -> None:
    s3 = s3_client(emu)
    seed_bucket(s3)
    listed = s3.list_objects_v2(Bucket="cur", Prefix="export/data/", Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == [
        "export/data/BILLING_PERIOD=2026-10/", "export/data/BILLING_PERIOD=2026-11/"], listed
    assert "Contents" not in listed and listed["KeyCount"] == 2, listed
    inside = s3.list_objects_v2(Bucket="cur", Prefix="export/data/BILLING_PERIOD=2026-10/", Delimiter="/")
    [item] = inside["Contents"]
    assert item["Size"] == len(PARQUET_LIKE) and item["ETag"] == f'"{hashlib.md5(PARQUET_LIKE).hexdigest()}"', item
    first = s3.list_objects_v2(Bucket="cur", Prefix="export/", MaxKeys=2)
    assert first["IsTruncated"] and len(first["Contents"]) == 2, first
    rest = s3.list_objects_v2(Bucket="cur", Prefix="export/", ContinuationToken=first["NextContinuationToken"])
    assert [c["Key"] for c in rest["Contents"]] == ["export/metadata/manifest.json"], rest
    # The XML an object_store client parses: LastModified in RFC 3339 with milliseconds.
    status, _, body = emu.http("GET", "/cur?list-type=2&prefix=export%2Fdata%2FBILLING_PERIOD%3D2026-10%2F",
                               headers=S3_RAW_HEADERS)
    assert status == 200 and re.search(rb"<LastModified>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z</LastModified>", body), body


@check
def s3_get_object_byte_ranges(emu: Emulator) -> None:
    s3 = s3_client(emu)
    key = seed_bucket(s3)
    size = len(PARQUET_LIKE)
    cases = [
        ("bytes=0-3", 0, 3),  # first bytes
        ("bytes=-8", size - 8, size - 1),  # suffix: Parquet footer length + magic
        ("bytes=100-", 100, size - 1),  # open-ended
        ("bytes=1000-5000", 1000, size - 1),  # end past the object: clipped
        ("bytes=-5000", 0, size - 1),  # suffix longer than the object: all of it
    ]
    for header, first, last in cases:
        answer = s3.get_object(Bucket="cur", Key=key, Range=header)
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 206, (header, answer["ResponseMetadata"])
        assert answer["ContentRange"] == f"bytes {first}-{last}/{size}", (header, answer["ContentRange"])
        assert answer["Body"].read() == PARQUET_LIKE[first:last + 1], header
        assert answer["ContentLength"] == last + 1 - first
    whole = s3.get_object(Bucket="cur", Key=key)
    assert whole["ResponseMetadata"]["HTTPStatusCode"] == 200 and "ContentRange" not in whole
    assert whole["Body"].read() == PARQUET_LIKE
    err = client_error(lambda: s3.get_object(Bucket="cur", Key=key, Range=f"bytes={size}-"))
    assert err.response["Error"]["Code"] == "InvalidRange" and err.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    # As object_store sends it: key percent-encoded ("=" as %3D), SigV4 headers, a suffix range.
    status, headers, body = emu.http("GET", "/cur/export/data/BILLING_PERIOD%3D2026-10/part-0.parquet",
                                     headers={**S3_RAW_HEADERS, "Range": "bytes=-8"})
    headers = {k.lower(): v for k, v in headers.items()}
    assert (status, body) == (206, PARQUET_LIKE[-8:]), (status, body)
    assert headers["content-range"] == f"bytes {size - 8}-{size - 1}/{size}", headers
    parsedate_to_datetime(headers["last-modified"])  # RFC 2822 date, as object_store parses it


@check
def s3_head_object(emu: Emulator) -> None:
    s3 = s3_client(emu)
    key = seed_bucket(s3)
    head = s3.head_object(Bucket="cur", Key=key)
    assert head["ContentLength"] == len(PARQUET_LIKE), head
    assert head["ETag"] == f'"{hashlib.md5(PARQUET_LIKE).hexdigest()}"', head
    headers = head["ResponseMetadata"]["HTTPHeaders"]
    modified = parsedate_to_datetime(headers["last-modified"])
    assert headers["last-modified"].endswith(" GMT") and abs(time.time() - modified.timestamp()) < 60, headers
    assert headers["accept-ranges"] == "bytes", headers
    err = client_error(lambda: s3.head_object(Bucket="cur", Key="export/missing.parquet"))
    assert err.response["Error"]["Code"] == "404", err.response


# --- CUR 2.0 line items: Cost Explorer (ce_engine.py) and Athena (athena_engine.py) computed ----------
#
# One small CUR 2.0 export, written with pyarrow, serves both engines. Every expected figure below is
# worked out by hand from the lines in CUR_LINES, not by code shared with the engines.

ROLE = "arn:aws:sts::111122223333:assumed-role/BedrockRole/"
BEDROCK = {"servicename": "Amazon Bedrock", "product_name": "Amazon Bedrock", "model": "Nova Lite"}
CLAUDE = {"servicename": "Claude Sonnet 4.6 (Amazon Bedrock Edition)", "product_name": "Claude Sonnet 4.6",
          "model": "Claude Sonnet 4.6"}
S3_PRODUCT = {"servicename": "Amazon Simple Storage Service", "product_name": "Amazon S3"}


def cur_line(day: str, kind: str, code: str, product: dict[str, str], tags: dict[str, str], cost: float,
             net: float | None, usage: float, unit: str | None, principal: str | None = None,
             region: str = "us-east-1", usage_type: str = "USE1-NovaLite-input-tokens") -> dict[str, Any]:
    return {"day": day, "kind": kind, "code": code, "product": product, "tags": tags, "cost": cost, "net": net,
            "usage": usage, "unit": unit, "principal": principal, "region": region, "usage_type": usage_type}


# September: one file, no manifest. October: a create-new export with two deliveries; the manifest
# names only the newer one (so O1 is stale: Cost Explorer ignores it, Athena reads it).
CUR_LINES = {
    "S1": cur_line("2026-09-10", "Usage", "AmazonBedrock", BEDROCK, {"iamPrincipal/team": "ml"}, 1.25, 1.00, 20.0,
                   "1K tokens", ROLE + "s1"),
    "S2": cur_line("2026-09-20", "Usage", "AmazonBedrock", BEDROCK, {}, 0.75, None, 12.5, "1K tokens", ROLE + "s2"),
    "S3": cur_line("2026-09-30", "Credit", "AmazonBedrock", BEDROCK, {"iamPrincipal/team": "ml"}, -0.50, -0.50, 0.0,
                   None, ROLE + "s1"),
    "O1": cur_line("2026-10-03", "Usage", "AmazonBedrock", BEDROCK, {"iamPrincipal/team": "ml"}, 9.99, 9.99, 5.0,
                   "1K tokens", ROLE + "old"),
    "N1": cur_line("2026-10-03", "Usage", "AmazonBedrock", BEDROCK, {"iamPrincipal/team": "ml"}, 2.00, 1.80, 40.0,
                   "1K tokens", ROLE + "s1"),
    "N2": cur_line("2026-10-04", "Usage", "AmazonBedrockFoundationModels", CLAUDE, {"iamPrincipal/team": "web"},
                   3.30, None, 15.0, "1M tokens", ROLE + "s3", usage_type="USE1-MP:USE1_InputTokenCount-Units"),
    "N3": cur_line("2026-10-15", "Usage", "AmazonS3", S3_PRODUCT, {}, 0.40, 0.40, 3.0, "GB-Mo",
                   usage_type="TimedStorage-ByteHrs"),
    "N4": cur_line("2026-10-20", "Refund", "AmazonBedrock", BEDROCK, {"iamPrincipal/team": "ml"}, -0.25, -0.25, 0.0,
                   None, ROLE + "s1"),
    "N5": cur_line("2026-10-31", "Usage", "AmazonBedrock", BEDROCK, {"iamPrincipal/team": ""}, 0.60, 0.55, 10.0,
                   "1K tokens", ROLE + "s4", region="us-west-2", usage_type="USW2-NovaLite-input-tokens"),
}
CUR_FILES = {
    "data/BILLING_PERIOD=2026-09/export-00001.snappy.parquet": ["S1", "S2", "S3"],
    "data/BILLING_PERIOD=2026-10/2026-11-01T06:00:00.000Z-5f0c1c5e-0000-4000-8000-000000000001/x-00001.snappy.parquet": ["O1"],
    "data/BILLING_PERIOD=2026-10/2026-11-02T06:00:00.000Z-5f0c1c5e-0000-4000-8000-000000000002/x-00001.snappy.parquet":
        ["N1", "N2", "N3", "N4", "N5"],
}
NEWEST_OCTOBER = list(CUR_FILES)[2]
_CUR_EXPORT: list[Path] = []


def cur_export() -> Path:
    """The export folder (built once per run, removed by main)."""
    if _CUR_EXPORT:
        return _CUR_EXPORT[0]
    import tempfile
    from datetime import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(tempfile.mkdtemp(prefix="emulator-cur-")) / "export"
    string_map = pa.map_(pa.string(), pa.string())
    for relative, names in CUR_FILES.items():
        lines = [CUR_LINES[n] for n in names]
        table = pa.table({
            "line_item_usage_start_date": pa.array([dt.fromisoformat(l["day"]) for l in lines], pa.timestamp("ms")),
            "line_item_usage_end_date": pa.array([dt.fromisoformat(l["day"]) for l in lines], pa.timestamp("ms")),
            "line_item_iam_principal": pa.array([l["principal"] for l in lines], pa.string()),
            "line_item_line_item_type": [l["kind"] for l in lines],
            "line_item_product_code": [l["code"] for l in lines],
            "line_item_usage_type": [l["usage_type"] for l in lines],
            "line_item_operation": ["Usage"] * len(lines),
            "line_item_usage_account_id": ["111122223333"] * len(lines),
            "line_item_usage_amount": pa.array([l["usage"] for l in lines], pa.float64()),
            "pricing_unit": pa.array([l["unit"] for l in lines], pa.string()),
            "line_item_unblended_cost": pa.array([l["cost"] for l in lines], pa.float64()),
            "line_item_net_unblended_cost": pa.array([l["net"] for l in lines], pa.float64()),
            "line_item_currency_code": ["USD"] * len(lines),
            "product_region_code": [l["region"] for l in lines],
            "product": pa.array([list(l["product"].items()) for l in lines], string_map),
            "tags": pa.array([list(l["tags"].items()) for l in lines], string_map),
        })
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    manifest = root / "metadata/BILLING_PERIOD=2026-10/export-Manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({
        "exportName": "export", "billingPeriod": {"start": "2026-10-01T00:00:00.000Z", "end": "2026-11-01T00:00:00.000Z"},
        "dataFiles": [f"s3://cur-bucket/cur/export/{NEWEST_OCTOBER}"],
    }))
    # An older manifest (by mtime) naming the stale delivery: the newest manifest wins.
    stale = manifest.with_name("export-2026-11-01-Manifest.json")
    stale.write_text(json.dumps({"dataFiles": [f"s3://cur-bucket/cur/export/{list(CUR_FILES)[1]}"]}))
    os.utime(stale, (time.time() - 86400, time.time() - 86400))
    _CUR_EXPORT.append(root)
    return root


def load_line_items(emu: Emulator, body: dict[str, Any]) -> Any:
    return emu.control("POST", "/_emulator/ce/line-items", body, expect=201)


def estimated(bucket_end: str) -> bool:
    """A bucket is estimated when it ends after the first day of the emulator's current month."""
    from datetime import datetime as dt, timezone as tz

    raw = os.environ.get("BEDROCK_COST_MCP_NOW", "").strip()
    now = dt.fromisoformat((raw + "T12:00:00Z" if len(raw) == 10 else raw).replace("Z", "+00:00")) if raw else dt.now(tz.utc)
    return bucket_end > f"{now.year:04d}-{now.month:02d}-01"


def groups_of(answer: dict[str, Any], *metrics: str) -> list[tuple[str, list[str], tuple[tuple[str, str], ...]]]:
    return [(r["TimePeriod"]["Start"], g["Keys"], tuple((g["Metrics"][m]["Amount"], g["Metrics"][m]["Unit"]) for m in metrics))
            for r in answer["ResultsByTime"] for g in r["Groups"]]


BEDROCK_SERVICES = {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock", "Claude Sonnet 4.6 (Amazon Bedrock Edition)"]}}
NO_CREDITS = {"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund"]}}}


@check
def ce_engine_loads_export_by_manifest(emu: Emulator) -> None:
    root = cur_export()
    loaded = load_line_items(emu, {"cur": str(root)})
    # September has no manifest: its one file. October: only the manifest's newest delivery.
    assert loaded["line_items"] == 8, loaded
    assert loaded["periods"] == {
        "2026-09": {"manifest": None, "files": 1},
        "2026-10": {"manifest": "metadata/BILLING_PERIOD=2026-10/export-Manifest.json", "files": 1},
    }, loaded
    assert loaded["files"] == [list(CUR_FILES)[0], NEWEST_OCTOBER], loaded
    status = emu.control("GET", "/_emulator/ce/line-items", expect=200)
    assert status["loaded"] and status["line_items"] == 8 and status["page_groups"] == 500, status
    for bad in ({"cur": "relative/path"}, {"cur": str(root / "missing")}, {}, {"line_items": "x"},
                {"line_items": [{"line_item_unblended_cost": 1}]}):
        emu.control("POST", "/_emulator/ce/line-items", bad, expect=400)


@check
def ce_engine_groups_by_tag_without_credits(emu: Emulator) -> None:
    load_line_items(emu, {"cur": str(cur_export())})
    ce = emu.client("ce")
    answer = ce.get_cost_and_usage(
        TimePeriod={"Start": "2026-09-01", "End": "2026-11-01"}, Granularity="MONTHLY",
        Metrics=["UnblendedCost", "NetUnblendedCost", "UsageQuantity"],
        GroupBy=[{"Type": "TAG", "Key": "iamPrincipal/team"}],
        Filter={"And": [BEDROCK_SERVICES, NO_CREDITS]})
    usd = lambda a: (a, "USD")  # noqa: E731
    # Sep: S1 (ml) and S2 (untagged); S3 is a Credit. Oct: N1 (ml), N2 (web), N5 (tag "" = untagged);
    # N3 is S3, N4 a Refund, O1 a stale delivery. Net falls back to unblended where CUR has none (S2, N2).
    assert groups_of(answer, "UnblendedCost", "NetUnblendedCost", "UsageQuantity") == [
        ("2026-09-01", ["iamPrincipal/team$"], (usd("0.75"), usd("0.75"), ("12.5", "N/A"))),
        ("2026-09-01", ["iamPrincipal/team$ml"], (usd("1.25"), usd("1"), ("20", "N/A"))),
        ("2026-10-01", ["iamPrincipal/team$"], (usd("0.6"), usd("0.55"), ("10", "N/A"))),
        ("2026-10-01", ["iamPrincipal/team$ml"], (usd("2"), usd("1.8"), ("40", "N/A"))),
        ("2026-10-01", ["iamPrincipal/team$web"], (usd("3.3"), usd("3.3"), ("15", "N/A"))),
    ], answer["ResultsByTime"]
    for result in answer["ResultsByTime"]:
        assert result["Total"] == {} and result["Estimated"] == estimated(result["TimePeriod"]["End"]), result
    assert [r["TimePeriod"] for r in answer["ResultsByTime"]] == [
        {"Start": "2026-09-01", "End": "2026-10-01"}, {"Start": "2026-10-01", "End": "2026-11-01"}]
    assert answer["GroupDefinitions"] == [{"Type": "TAG", "Key": "iamPrincipal/team"}], answer
    assert answer["DimensionValueAttributes"] == [] and "NextPageToken" not in answer, answer
    assert emu.calls() == {"GetCostAndUsage": 1}, emu.calls()


@check
def ce_engine_totals_daily_and_clipped_months(emu: Emulator) -> None:
    load_line_items(emu, {"cur": str(cur_export())})
    ce = emu.client("ce")
    daily = ce.get_cost_and_usage(TimePeriod={"Start": "2026-10-02", "End": "2026-10-05"}, Granularity="DAILY",
                                  Metrics=["UnblendedCost"], Filter=BEDROCK_SERVICES)
    # Every day of the period is a bucket, empty ones with "0".
    assert [(r["TimePeriod"]["Start"], r["TimePeriod"]["End"], r["Total"], r["Groups"]) for r in daily["ResultsByTime"]] == [
        ("2026-10-02", "2026-10-03", {"UnblendedCost": {"Amount": "0", "Unit": "USD"}}, []),
        ("2026-10-03", "2026-10-04", {"UnblendedCost": {"Amount": "2", "Unit": "USD"}}, []),
        ("2026-10-04", "2026-10-05", {"UnblendedCost": {"Amount": "3.3", "Unit": "USD"}}, []),
    ], daily
    assert "GroupDefinitions" not in daily
    # MONTHLY buckets are clipped to the period; credits count unless filtered out:
    # Sep 15-30: S2 0.75 + S3 -0.50; Oct 1-20 (End exclusive): N1 2.00 + N2 3.30 + N3 0.40 (N4 is on the 20th).
    monthly = ce.get_cost_and_usage(TimePeriod={"Start": "2026-09-15", "End": "2026-10-20"}, Granularity="MONTHLY",
                                    Metrics=["UnblendedCost"])
    assert [(r["TimePeriod"], r["Total"]["UnblendedCost"]["Amount"]) for r in monthly["ResultsByTime"]] == [
        ({"Start": "2026-09-15", "End": "2026-10-01"}, "0.25"),
        ({"Start": "2026-10-01", "End": "2026-10-20"}, "5.7"),
    ], monthly


@check
def ce_engine_filters_tags_dimensions_and_two_group_keys(emu: Emulator) -> None:
    load_line_items(emu, {"cur": str(cur_export())})
    ce = emu.client("ce")
    october = {"Start": "2026-10-01", "End": "2026-11-01"}

    def total(flt: dict[str, Any]) -> str:
        answer = ce.get_cost_and_usage(TimePeriod=october, Granularity="MONTHLY", Metrics=["UnblendedCost"], Filter=flt)
        return answer["ResultsByTime"][0]["Total"]["UnblendedCost"]["Amount"]

    team = "iamPrincipal/team"
    # As the server asks: named values OR untagged (a "" value, or MatchOptions ABSENT). Untagged in
    # October: N3 (S3, no tags) and N5 (tag "").
    assert total({"Tags": {"Key": team, "Values": ["ml"]}}) == "1.75"  # N1 2.00 + N4 -0.25
    assert total({"Tags": {"Key": team, "Values": ["ml", ""]}}) == "2.75"  # + N3 0.40 + N5 0.60
    assert total({"Or": [{"Tags": {"Key": team, "Values": ["web"], "MatchOptions": ["EQUALS"]}},
                         {"Tags": {"Key": team, "MatchOptions": ["ABSENT"]}}]}) == "4.3"  # N2 + N3 + N5
    assert total({"Tags": {"Key": team}}) == "1"  # no Values: ABSENT (N3 + N5)
    assert total({"Tags": {"Key": team, "Values": ["ML"]}}) == "0"  # case sensitive
    assert total({"Tags": {"Key": team, "Values": ["ML"], "MatchOptions": ["EQUALS", "CASE_INSENSITIVE"]}}) == "1.75"
    assert total({"Dimensions": {"Key": "REGION", "Values": ["us-west-2"]}}) == "0.6"
    assert total({"Dimensions": {"Key": "SERVICE_CODE", "Values": ["AmazonS3"]}}) == "0.4"
    assert total({"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Refund"]}}) == "-0.25"
    assert total({"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["111122223333"]}}) == "6.05"
    assert total({"Dimensions": {"Key": "USAGE_TYPE", "Values": ["USE1-MP:USE1_InputTokenCount-Units"]}}) == "3.3"
    assert total({"Not": {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock"]}}}) == "3.7"  # N2 + N3
    answer = ce.get_cost_and_usage(TimePeriod=october, Granularity="MONTHLY", Metrics=["UnblendedCost"],
                                   GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "RECORD_TYPE"}])
    assert groups_of(answer, "UnblendedCost") == [
        ("2026-10-01", ["Amazon Bedrock", "Refund"], (("-0.25", "USD"),)),
        ("2026-10-01", ["Amazon Bedrock", "Usage"], (("2.6", "USD"),)),
        ("2026-10-01", ["Amazon Simple Storage Service", "Usage"], (("0.4", "USD"),)),
        ("2026-10-01", ["Claude Sonnet 4.6 (Amazon Bedrock Edition)", "Usage"], (("3.3", "USD"),)),
    ], answer


@check
def ce_engine_validation_errors(emu: Emulator) -> None:
    load_line_items(emu, {"cur": str(cur_export())})
    ce = emu.client("ce")

    def code(**overrides: Any) -> str:
        request = {"TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"}, "Granularity": "MONTHLY",
                   "Metrics": ["UnblendedCost"], **overrides}
        err = client_error(lambda: ce.get_cost_and_usage(**request))
        return f"{err.response['Error']['Code']}: {err.response['Error']['Message']}"

    two_roots = {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock"]}, "Tags": {"Key": "iamPrincipal/team", "Values": ["ml"]}}
    assert code(Filter=two_roots).startswith("ValidationException: Filter: Expression has more than one root"), code(Filter=two_roots)
    assert code(GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}] * 3).startswith("ValidationException: GroupBy can have at most 2")
    assert code(Metrics=["Spend"]).startswith("ValidationException: Invalid metrics")
    assert code(TimePeriod={"Start": "2026-11-01", "End": "2026-10-01"}).startswith("ValidationException: Start date")
    assert code(Filter={"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["x"]}}).startswith("ValidationException: Dimension")
    assert code(NextPageToken="bogus").startswith("InvalidNextTokenException")


@check
def ce_engine_never_adds_currencies(emu: Emulator) -> None:
    base = {"line_item_usage_start_date": "2026-10-05T00:00:00Z", "line_item_line_item_type": "Usage",
            "product": {"servicename": "Amazon Bedrock"}, "line_item_unblended_cost": 1.5}
    load_line_items(emu, {"line_items": [
        {**base, "line_item_currency_code": "USD", "line_item_usage_account_id": "111111111111"},
        {**base, "line_item_currency_code": "EUR", "line_item_usage_account_id": "222222222222"}]})
    ce = emu.client("ce")
    request = {"TimePeriod": {"Start": "2026-10-01", "End": "2026-11-01"}, "Granularity": "MONTHLY", "Metrics": ["UnblendedCost"]}
    err = client_error(lambda: ce.get_cost_and_usage(**request))
    assert err.response["Error"]["Code"] == "ValidationException" and "EUR, USD" in err.response["Error"]["Message"], err.response
    split = ce.get_cost_and_usage(**request, GroupBy=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}])
    assert groups_of(split, "UnblendedCost") == [("2026-10-01", ["111111111111"], (("1.5", "USD"),)),
                                                 ("2026-10-01", ["222222222222"], (("1.5", "EUR"),))], split
    # Usage alone never mixes currencies.
    usage = ce.get_cost_and_usage(**{**request, "Metrics": ["UsageQuantity"]})
    assert usage["ResultsByTime"][0]["Total"] == {"UsageQuantity": {"Amount": "0", "Unit": "N/A"}}, usage


@check
def ce_engine_pages_groups(emu: Emulator) -> None:
    load_line_items(emu, {"cur": str(cur_export())})
    emu.control("POST", "/_emulator/ce/page-size", {"groups": 2}, expect=200)
    ce = emu.client("ce")
    request = {"TimePeriod": {"Start": "2026-09-01", "End": "2026-11-01"}, "Granularity": "MONTHLY",
               "Metrics": ["UnblendedCost"], "GroupBy": [{"Type": "TAG", "Key": "iamPrincipal/team"}]}
    pages, token = [], None
    while True:
        answer = ce.get_cost_and_usage(**request, **({"NextPageToken": token} if token else {}))
        pages.append(groups_of(answer, "UnblendedCost"))
        token = answer.get("NextPageToken")
        if not token:
            break
    # Sep: "$" 0.75, "$ml" 1.25 - 0.50; Oct: "$" 0.40 + 0.60, "$ml" 2.00 - 0.25, "$web" 3.30.
    assert pages == [
        [("2026-09-01", ["iamPrincipal/team$"], (("0.75", "USD"),)), ("2026-09-01", ["iamPrincipal/team$ml"], (("0.75", "USD"),))],
        [("2026-10-01", ["iamPrincipal/team$"], (("1", "USD"),)), ("2026-10-01", ["iamPrincipal/team$ml"], (("1.75", "USD"),))],
        [("2026-10-01", ["iamPrincipal/team$web"], (("3.3", "USD"),))],
    ], pages
    first = ce.get_cost_and_usage(**request)
    changed = {**request, "Metrics": ["NetUnblendedCost"], "NextPageToken": first["NextPageToken"]}
    err = client_error(lambda: ce.get_cost_and_usage(**changed))
    assert err.response["Error"]["Code"] == "RequestChangedException", err.response
    assert emu.calls()["GetCostAndUsage"] == 5, emu.calls()


@check
def ce_engine_dimension_values(emu: Emulator) -> None:
    load_line_items(emu, {"cur": str(cur_export())})
    ce = emu.client("ce")
    period = {"Start": "2026-09-01", "End": "2026-11-01"}

    def values(dimension: str, **extra: Any) -> list[str]:
        answer = ce.get_dimension_values(TimePeriod=period, Dimension=dimension, **extra)
        assert answer["ReturnSize"] == answer["TotalSize"] == len(answer["DimensionValues"]), answer
        return [v["Value"] for v in answer["DimensionValues"]]

    # As the server asks: SERVICE containing "Bedrock" (case-insensitive).
    assert values("SERVICE", SearchString="bedrock", Context="COST_AND_USAGE") == [
        "Amazon Bedrock", "Claude Sonnet 4.6 (Amazon Bedrock Edition)"]
    assert values("RECORD_TYPE") == ["Credit", "Refund", "Usage"]
    assert values("REGION") == ["us-east-1", "us-west-2"]
    assert values("LINKED_ACCOUNT") == ["111122223333"]
    september = ce.get_dimension_values(TimePeriod={"Start": "2026-09-01", "End": "2026-10-01"}, Dimension="RECORD_TYPE")
    assert [v["Value"] for v in september["DimensionValues"]] == ["Credit", "Usage"], september
    # CUR line types map to Cost Explorer's record type names.
    load_line_items(emu, {"line_items": [
        {"line_item_usage_start_date": "2026-10-01", "line_item_line_item_type": t, "line_item_unblended_cost": 1}
        for t in ("RIFee", "EdpDiscount", "SavingsPlanNegation", "SomethingNew")]})
    assert values("RECORD_TYPE") == ["Enterprise Discount Program Discount", "Recurring reservation fee",
                                     "SavingsPlanNegation", "SomethingNew"]


@check
def ce_engine_unloaded_keeps_seeded_answers(emu: Emulator) -> None:
    emu.control("POST", "/_emulator/ce/dimension-values", {"SERVICE": ["Seeded Service"]}, expect=201)
    seed_usage(emu, usage_result("42.00"))
    load_line_items(emu, {"cur": str(cur_export())})
    ce = emu.client("ce")
    computed = ce.get_dimension_values(TimePeriod=PERIOD, Dimension="SERVICE")
    assert "Seeded Service" not in [v["Value"] for v in computed["DimensionValues"]], computed
    emu.control("DELETE", "/_emulator/ce/line-items", expect=200)
    assert amount(cost_and_usage(ce)) == "42.00"
    assert [v["Value"] for v in ce.get_dimension_values(TimePeriod=PERIOD, Dimension="SERVICE")["DimensionValues"]] == ["Seeded Service"]
    load_line_items(emu, {"cur": str(cur_export())})
    emu.control("POST", "/_emulator/reset", expect=200)
    assert emu.control("GET", "/_emulator/ce/line-items", expect=200)["loaded"] is False


# The SQL the server sends for bedrock_spend grouped by tag:team, filtered to team ml or untagged, monthly over
# two months, on a table partitioned by billing_period (core/src/sources/cur_sql.rs, Dialect::Athena): its shape.
USAGE_TYPES_SQL = "'Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage'"
TOKEN_AMOUNT = (
    "CASE pricing_unit WHEN '1K tokens' THEN line_item_usage_amount * 1000 "
    "WHEN '1M tokens' THEN line_item_usage_amount * 1000000 WHEN 'tokens' THEN line_item_usage_amount "
    "WHEN 'Units' THEN CASE WHEN strpos(line_item_usage_type, 'TokenCount') > 0 "
    "OR strpos(line_item_usage_type, '_tokens') > 0 THEN line_item_usage_amount * 1000000 END "
    "ELSE CASE lower(pricing_unit) WHEN '1k tokens' THEN line_item_usage_amount * 1000 "
    "WHEN '1m tokens' THEN line_item_usage_amount * 1000000 WHEN 'tokens' THEN line_item_usage_amount ELSE NULL END END"
)
TEAM = "element_at(tags, 'iamPrincipal/team')"
SERVER_SQL = (
    f"SELECT CAST(date_trunc('month', line_item_usage_start_date) AS DATE), {TEAM}, "
    "CASE WHEN COALESCE(line_item_iam_principal, '') = '' THEN 'n' ELSE 'y' END, line_item_line_item_type, "
    "COALESCE(line_item_currency_code, 'USD'), \"billing_period\", "
    f"CASE WHEN line_item_line_item_type NOT IN ({USAGE_TYPES_SQL}) "
    "THEN CAST(date_trunc('month', line_item_usage_start_date) AS DATE) END, "
    f"SUM(line_item_unblended_cost) AS cost, SUM({TOKEN_AMOUNT}) AS tokens, "
    f"SUM(CASE WHEN ({TOKEN_AMOUNT}) IS NULL THEN line_item_unblended_cost ELSE 0 END) AS other_cost "
    "FROM \"curdb\".\"cur_v2\" WHERE "
    f"((line_item_line_item_type IN ({USAGE_TYPES_SQL}) AND line_item_usage_start_date >= TIMESTAMP '2026-09-01 00:00:00' "
    "AND line_item_usage_start_date < TIMESTAMP '2026-11-01 00:00:00') "
    f"OR (line_item_line_item_type NOT IN ({USAGE_TYPES_SQL}) AND \"billing_period\" IN ('2026-09', '2026-10'))) "
    "AND \"billing_period\" IN ('2026-09', '2026-10') "
    "AND (COALESCE(line_item_iam_principal, '') <> '' OR line_item_product_code IN ('AmazonBedrock', 'AmazonBedrockService') "
    "OR COALESCE(element_at(product, 'servicename'), '') LIKE '%Bedrock%' "
    "OR COALESCE(line_item_product_code, '') LIKE '%Bedrock%') "
    f"AND ({TEAM} IN (?) OR COALESCE({TEAM}, '') = '') "
    "GROUP BY 1, 2, 3, 4, 5, 6, 7"
)


def register_cur_table(emu: Emulator) -> Path:
    root = cur_export()
    table = emu.control("POST", "/_emulator/athena/tables",
                        {"database": "curdb", "table": "cur_v2", "location": str(root / "data")}, expect=201)
    assert table == {"catalog": "AwsDataCatalog", "database": "curdb", "table": "cur_v2", "location": str(root / "data")}, table
    return root


def run_query(athena: Any, sql: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    qid = athena.start_query_execution(QueryString=sql, WorkGroup="primary",
                                       QueryExecutionContext={"Catalog": "AwsDataCatalog", "Database": "curdb"},
                                       **extra)["QueryExecutionId"]
    return qid, query_status(athena, qid)


def all_rows(athena: Any, qid: str, page_size: int = 1000) -> list[list[str | None]]:
    rows, token = [], None
    while True:
        answer = athena.get_query_results(QueryExecutionId=qid, MaxResults=page_size, **({"NextToken": token} if token else {}))
        rows.extend([d.get("VarCharValue") for d in r["Data"]] for r in answer["ResultSet"]["Rows"])
        token = answer.get("NextToken")
        if not token:
            return rows


@check
def athena_engine_runs_server_sql(emu: Emulator) -> None:
    root = register_cur_table(emu)
    seed_athena_result(emu, [athena_row("team", "cost"), athena_row("seeded", "1")])
    athena = emu.client("athena")
    qid, execution = run_query(athena, SERVER_SQL, ExecutionParameters=["'ml'"])
    assert execution["Status"]["State"] == "SUCCEEDED", execution
    # Athena reads every file of the two partitions, the stale October delivery (O1) included.
    sizes = sum((root / f).stat().st_size for f in CUR_FILES)
    assert execution["Statistics"]["DataScannedInBytes"] == sizes, execution["Statistics"]
    rows = all_rows(athena, qid, page_size=2)
    assert rows[0] == ["_col0", "_col1", "_col2", "line_item_line_item_type", "_col4", "billing_period", "_col6",
                       "cost", "tokens", "other_cost"], rows[0]
    number = lambda v: None if v is None else float(v)  # noqa: E731
    got = sorted(((*r[:7], *map(number, r[7:])) for r in rows[1:]), key=str)
    # Team ml or untagged, Bedrock lines only (N2 is team web, N3 is S3 without a principal): S2 has no
    # tag (NULL), N5 has the tag with "" (the map holds ""). Usage by usage date; the credit (S3) and the
    # refund (N4) by billing period, with their month in _col6, no tokens (NULL) and their cost in
    # other_cost. October's usage holds the stale delivery too (O1: 9.99, 5K tokens).
    expected = sorted([
        ("2026-09-01", None, "y", "Usage", "USD", "2026-09", None, 0.75, 12500.0, 0.0),
        ("2026-09-01", "ml", "y", "Usage", "USD", "2026-09", None, 1.25, 20000.0, 0.0),
        ("2026-09-01", "ml", "y", "Credit", "USD", "2026-09", "2026-09-01", -0.50, None, -0.50),
        ("2026-10-01", "ml", "y", "Usage", "USD", "2026-10", None, 2.00 + 9.99, 45000.0, 0.0),
        ("2026-10-01", "ml", "y", "Refund", "USD", "2026-10", "2026-10-01", -0.25, None, -0.25),
        ("2026-10-01", "", "y", "Usage", "USD", "2026-10", None, 0.60, 10000.0, 0.0),
    ], key=str)
    assert len(got) == len(expected), got
    for g, e in zip(got, expected):
        assert g[:7] == e[:7], (g, e)
        for a, b in zip(g[7:], e[7:]):
            assert (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-6), (g, e)
    page = athena.get_query_results(QueryExecutionId=qid)
    columns = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    assert [c["Type"] for c in columns] == ["date", "varchar", "varchar", "varchar", "varchar", "varchar", "date",
                                            "double", "double", "double"], columns
    null_cells = [r["Data"][1] for r in page["ResultSet"]["Rows"][1:] if "VarCharValue" not in r["Data"][1]]
    assert null_cells == [{}], page["ResultSet"]["Rows"]  # NULL: no VarCharValue
    # The seeded result was not used, and waits for a query on an unregistered table.
    other = start_query(athena, "SELECT team, cost FROM other_table")
    assert athena.get_query_results(QueryExecutionId=other)["ResultSet"]["Rows"][1] == athena_row("seeded", "1")
    log = emu.control("GET", "/_emulator/athena/queries", expect=200)
    assert log[0]["translated_query"] == SERVER_SQL.replace("IN (?)", "IN ('ml')"), log[0]
    assert log[0]["engine"] == "duckdb" and log[0]["tables"] == ["awsdatacatalog.curdb.cur_v2"], log[0]
    assert log[0]["data_scanned_bytes"] == sizes and log[0]["error"] is None, log[0]
    assert "translated_query" not in log[1], log[1]


@check
def athena_engine_prunes_partitions_and_formats_values(emu: Emulator) -> None:
    root = register_cur_table(emu)
    athena = emu.client("athena")
    sql = ("SELECT MIN(line_item_usage_start_date) AS first_use, SUM(line_item_usage_amount) * 1000000 AS big, "
           "date_format(MIN(line_item_usage_start_date), '%Y-%m %M %e %H:%i:%s') AS formatted, "
           "CAST(0.0001 AS DOUBLE) AS small, COUNT(*) AS n, element_at(product, 'nokey') AS missing, "
           "element_at(tags, 'iamPrincipal/team') FROM cur_v2 "
           "WHERE \"BILLING_PERIOD\" = '2026-09' AND line_item_line_item_type = 'Usage' GROUP BY 6, 7 ORDER BY 7")
    qid, execution = run_query(athena, sql)
    assert execution["Status"]["State"] == "SUCCEEDED", execution
    september = root / list(CUR_FILES)[0]
    assert execution["Statistics"]["DataScannedInBytes"] == september.stat().st_size, execution["Statistics"]
    rows = all_rows(athena, qid)
    # Doubles as Java writes them (Athena): 20.0 * 1e6 = 2.0E7; S2 12.5 * 1e6 = 1.25E7.
    # date_format takes Trino's (MySQL) specifiers: %M month name, %e day, %i minutes, %s seconds.
    assert rows == [["first_use", "big", "formatted", "small", "n", "missing", "_col6"],
                    ["2026-09-10 00:00:00.000", "2.0E7", "2026-09 September 10 00:00:00", "1.0E-4", "1", None, "ml"],
                    ["2026-09-20 00:00:00.000", "1.25E7", "2026-09 September 20 00:00:00", "1.0E-4", "1", None, None]], rows
    columns = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    assert [c["Type"] for c in columns] == ["timestamp", "double", "varchar", "double", "bigint", "varchar", "varchar"], columns
    log = emu.control("GET", "/_emulator/athena/queries", expect=200)
    assert log[0]["scanned_files"] == [str(september)], log[0]
    # Three-part names and the unqualified name in the query's database reach the same table.
    _, three = run_query(athena, 'SELECT COUNT(*) FROM "AwsDataCatalog"."curdb"."cur_v2"')
    assert three["Status"]["State"] == "SUCCEEDED", three


@check
def athena_engine_failures(emu: Emulator) -> None:
    register_cur_table(emu)
    athena = emu.client("athena")

    def failure(sql: str, **extra: Any) -> dict[str, Any]:
        qid, execution = run_query(athena, sql, **extra)
        status = execution["Status"]
        assert status["State"] == "FAILED", execution
        assert status["AthenaError"]["ErrorMessage"] == status["StateChangeReason"], status
        assert_invalid_request(client_error(lambda: athena.get_query_results(QueryExecutionId=qid)), "FAILED")
        return status

    status = failure("SELECT line_item_iam_principal, nope FROM cur_v2")
    assert status["StateChangeReason"].startswith("COLUMN_NOT_FOUND: line 1:33: Column 'nope' cannot be resolved"), status
    status = failure("SELECT * FROM cur_v2 JOIN curdb.nope ON true")
    assert status["StateChangeReason"].startswith("TABLE_NOT_FOUND: ") and "'awsdatacatalog.curdb.nope'" in status["StateChangeReason"], status
    status = failure("SELECT FROM FROM cur_v2 WHERE")
    assert status["StateChangeReason"].startswith("SYNTAX_ERROR: line 1:"), status
    assert status["AthenaError"]["ErrorCategory"] == 2 and status["AthenaError"]["ErrorType"] == 1006, status
    # Trino's subscript fails on a missing key (S2 has no team tag); element_at gives NULL.
    status = failure("SELECT tags['iamPrincipal/team'] FROM cur_v2")
    assert status["StateChangeReason"] == "INVALID_FUNCTION_ARGUMENT: Key not present in map: iamPrincipal/team", status
    status = failure("SELECT * FROM cur_v2 WHERE line_item_line_item_type = ?")
    assert status["StateChangeReason"].startswith("INVALID_PARAMETER_USAGE"), status
    # Queued outcomes still drive an engine query: polls first, then the engine's answer.
    queue_outcomes(emu, {"state": "RUNNING_THEN_SUCCEEDED", "polls": 2})
    qid, first = run_query(athena, "SELECT COUNT(*) AS n FROM cur_v2 WHERE line_item_line_item_type = ?",
                           ExecutionParameters=["'Refund'"])
    assert [first["Status"]["State"], query_status(athena, qid)["Status"]["State"]] == ["QUEUED", "RUNNING"]
    done = query_status(athena, qid)
    assert done["Status"]["State"] == "SUCCEEDED" and done["Statistics"]["DataScannedInBytes"] > 0, done
    assert all_rows(athena, qid) == [["n"], ["1"]]
    emu.control("DELETE", "/_emulator/athena/tables", expect=200)
    assert emu.control("GET", "/_emulator/athena/tables", expect=200) == []
    for bad in ({"database": "curdb", "table": "t", "location": "relative"},
                {"database": "cur db", "table": "t", "location": "/"}, {"table": "t", "location": "/"}):
        emu.control("POST", "/_emulator/athena/tables", bad, expect=400)


@check
def athena_and_cost_explorer_agree_where_they_should(emu: Emulator) -> None:
    """The same export through both engines: equal for a month with one delivery, and Athena's
    October higher by exactly the stale delivery that the manifest leaves out (O1, 9.99)."""
    register_cur_table(emu)
    load_line_items(emu, {"cur": str(cur_export())})
    athena, ce = emu.client("athena"), emu.client("ce")
    qid, _ = run_query(athena, "SELECT \"billing_period\", SUM(line_item_unblended_cost) AS cost FROM cur_v2 GROUP BY 1 ORDER BY 1")
    by_month = {r[0]: float(r[1]) for r in all_rows(athena, qid)[1:]}
    answer = ce.get_cost_and_usage(TimePeriod={"Start": "2026-09-01", "End": "2026-11-01"}, Granularity="MONTHLY",
                                   Metrics=["UnblendedCost"])
    ce_months = [float(r["Total"]["UnblendedCost"]["Amount"]) for r in answer["ResultsByTime"]]
    assert abs(by_month["2026-09"] - ce_months[0]) < 1e-9 and abs(ce_months[0] - 1.5) < 1e-9, (by_month, ce_months)
    assert abs(ce_months[1] - 6.05) < 1e-9 and abs(by_month["2026-10"] - (6.05 + 9.99)) < 1e-9, (by_month, ce_months)


@check
def data_exports_need_the_bucket_policy_and_cur2_properties(emu: Emulator) -> None:
    exports = emu.client("bcm-data-exports")
    s3 = s3_client(emu)
    export = {
        "Name": "cur2",
        "DataQuery": {"QueryStatement": "SELECT * FROM COST_AND_USAGE_REPORT",
                      "TableConfigurations": {"COST_AND_USAGE_REPORT": {"INCLUDE_IAM_PRINCIPAL_DATA": "TRUE",
                                                                        "TIME_GRANULARITY": "DAILY"}}},
        "DestinationConfigurations": {"S3Destination": {
            "S3Bucket": "exports", "S3Prefix": "cur", "S3Region": "us-east-1",
            "S3OutputConfigurations": {"OutputType": "CUSTOM", "Format": "PARQUET", "Compression": "PARQUET",
                                       "Overwrite": "OVERWRITE_REPORT"}}},
        "RefreshCadence": {"Frequency": "SYNCHRONOUS"},
    }
    try:
        exports.create_export(Export=export)
        raise AssertionError("an export into a missing bucket was created")
    except botocore.exceptions.ClientError as err:
        assert err.response["Error"]["Code"] == "ValidationException", err.response
    s3.create_bucket(Bucket="exports")
    try:
        exports.create_export(Export=export)
        raise AssertionError("an export without the bucket policy was created")
    except botocore.exceptions.ClientError as err:
        assert "bcm-data-exports.amazonaws.com" in err.response["Error"]["Message"], err.response
    s3.put_bucket_policy(Bucket="exports", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "bcm-data-exports.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::exports/*"}]}))
    wrong = json.loads(json.dumps(export))
    wrong["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"]["INCLUDE_PRINCIPALS"] = "TRUE"
    try:
        exports.create_export(Export=wrong)
        raise AssertionError("an unknown table property was accepted")
    except botocore.exceptions.ClientError as err:
        assert "has no such property" in err.response["Error"]["Message"], err.response
    arn = exports.create_export(Export=export)["ExportArn"]
    assert arn.startswith("arn:aws:bcm-data-exports:us-east-1:123456789012:export/cur2-"), arn
    listed = exports.list_exports()["Exports"]
    assert [e["ExportArn"] for e in listed] == [arn], listed
    got = exports.get_export(ExportArn=arn)["Export"]
    assert got["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"]["INCLUDE_IAM_PRINCIPAL_DATA"] == "TRUE"
    export["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"]["TIME_GRANULARITY"] = "HOURLY"
    exports.update_export(ExportArn=arn, Export=export)
    got = exports.get_export(ExportArn=arn)["Export"]
    assert got["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"]["TIME_GRANULARITY"] == "HOURLY"
    exports.delete_export(ExportArn=arn)
    assert exports.list_exports()["Exports"] == []


@check
def tag_backfill_takes_a_month_start_once_a_day(emu: Emulator) -> None:
    ce = emu.client("ce")
    now = datetime.now(timezone.utc)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    for bad in ("2020-01-01T00:00:00Z", now.strftime("%Y-%m-15T00:00:00Z")):
        try:
            ce.start_cost_allocation_tag_backfill(BackfillFrom=bad)
            raise AssertionError(f"{bad} was accepted")
        except botocore.exceptions.ClientError as err:
            assert err.response["Error"]["Code"] == "ValidationException", err.response
    started = ce.start_cost_allocation_tag_backfill(BackfillFrom=first)["BackfillRequest"]
    assert started["BackfillStatus"] == "PROCESSING" and started["BackfillFrom"] == first, started
    try:
        ce.start_cost_allocation_tag_backfill(BackfillFrom=first)
        raise AssertionError("a second backfill while one runs was accepted")
    except botocore.exceptions.ClientError as err:
        assert err.response["Error"]["Code"] == "BackfillLimitExceededException", err.response
    history = ce.list_cost_allocation_tag_backfill_history()["BackfillRequests"]
    assert [h["BackfillStatus"] for h in history] == ["PROCESSING"], history
    history = ce.list_cost_allocation_tag_backfill_history()["BackfillRequests"]
    assert [h["BackfillStatus"] for h in history] == ["SUCCEEDED"], history
    try:
        ce.start_cost_allocation_tag_backfill(BackfillFrom=first)
        raise AssertionError("a second backfill within 24 hours was accepted")
    except botocore.exceptions.ClientError as err:
        assert err.response["Error"]["Code"] == "LimitExceededException", err.response


@check
def athena_ddl_makes_tables_getTableMetadata_reads(emu: Emulator) -> None:
    athena = emu.client("athena")
    try:
        athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="db", TableName="t")
        raise AssertionError("a table that was never created has metadata")
    except botocore.exceptions.ClientError as err:
        assert err.response["Error"]["Code"] == "MetadataException", err.response
    for sql in ("CREATE DATABASE IF NOT EXISTS db",
                "CREATE EXTERNAL TABLE IF NOT EXISTS db.t (\n  a string,\n  m map<string,string>\n)\n"
                "PARTITIONED BY (billing_period string)\nSTORED AS PARQUET\nLOCATION 's3://b/p/'\n"
                "TBLPROPERTIES ('projection.enabled'='true')"):
        start_query(athena, sql, ResultConfiguration={"OutputLocation": "s3://results/"})
    meta = athena.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="db", TableName="t")["TableMetadata"]
    assert [c["Name"] for c in meta["Columns"]] == ["a", "m"], meta
    assert meta["PartitionKeys"] == [{"Name": "billing_period", "Type": "string"}], meta
    assert meta["Parameters"]["location"] == "s3://b/p/" and meta["Parameters"]["projection.enabled"] == "true"
    start_query(athena, "DROP TABLE IF EXISTS db.t", ResultConfiguration={"OutputLocation": "s3://results/"})
    assert emu.control("GET", "/_emulator/athena/catalog", expect=200) == {"databases": ["db"], "tables": []}


@check
def anomaly_subscriptions_need_a_known_monitor_and_tag_monitors_a_key(emu: Emulator) -> None:
    ce = emu.client("ce")
    try:
        ce.create_anomaly_monitor(AnomalyMonitor={"MonitorName": "m", "MonitorType": "DIMENSIONAL",
                                                  "MonitorDimension": "TAG"})
        raise AssertionError("a TAG monitor without its key was created")
    except botocore.exceptions.ClientError as err:
        assert err.response["Error"]["Code"] == "ValidationException", err.response
    arn = ce.create_anomaly_monitor(AnomalyMonitor={
        "MonitorName": "m", "MonitorType": "DIMENSIONAL", "MonitorDimension": "TAG",
        "MonitorSpecification": {"Tags": {"Key": "iamPrincipal/team"}}})["MonitorArn"]
    sub = {"SubscriptionName": "s", "Subscribers": [{"Type": "EMAIL", "Address": "a@example.com"}],
           "Frequency": "DAILY"}
    try:
        ce.create_anomaly_subscription(AnomalySubscription=dict(sub, MonitorArnList=[arn + "x"]))
        raise AssertionError("a subscription to an unknown monitor was created")
    except botocore.exceptions.ClientError as err:
        assert err.response["Error"]["Code"] == "UnknownMonitorException", err.response
    sub_arn = ce.create_anomaly_subscription(AnomalySubscription=dict(sub, MonitorArnList=[arn]))["SubscriptionArn"]
    listed = ce.get_anomaly_subscriptions()["AnomalySubscriptions"]
    assert [s["SubscriptionArn"] for s in listed] == [sub_arn], listed
    ce.delete_anomaly_subscription(SubscriptionArn=sub_arn)
    assert ce.get_anomaly_subscriptions()["AnomalySubscriptions"] == []


def main() -> int:
    emu = Emulator()
    passed = failed = 0
    try:
        for fn in CHECKS:
            try:
                emu.control("POST", "/_emulator/reset", expect=200)
                fn(emu)
            except Exception:  # noqa: BLE001 - every failure is reported, then the run goes on
                failed += 1
                print(f"FAIL {fn.__name__}\n{traceback.format_exc()}", flush=True)
            else:
                passed += 1
                print(f"ok   {fn.__name__}", flush=True)
    finally:
        code = emu.stop()
        for root in _CUR_EXPORT:
            import shutil

            shutil.rmtree(root.parent, ignore_errors=True)
    if code == 0:
        passed += 1
        print("ok   emulator_exits_on_stdin_eof")
    else:
        failed += 1
        print(f"FAIL emulator_exits_on_stdin_eof: exit code {code}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
