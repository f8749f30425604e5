"""Self-check of the AWS emulator: starts it as a subprocess and drives it with boto3.

    tools/.venv/bin/python tools/emulator/selftest.py

Prints one line per check and ends with "N passed, M failed"; exits non-zero on any failure.
Each check starts from POST /_emulator/reset.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore.exceptions
from botocore.config import Config

EMULATOR = Path(__file__).with_name("aws_emulator.py")
PERIOD = {"Start": "2026-10-01", "End": "2026-11-01"}

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
