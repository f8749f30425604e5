"""Loopback AWS emulator for bedrock-cost-mcp tests: moto server 5.2.5 plus our extensions.

Usage:
    tools/.venv/bin/python tools/emulator/aws_emulator.py [--port 0] [--host 127.0.0.1]
        [--no-stdin-watch] [--verbose]

It prints exactly one line, ``READY <port>``, on stdout once it serves; everything else goes to
stderr. It runs until SIGTERM/SIGINT, or until its stdin reaches EOF when stdin is a pipe, socket
or terminal (so a test process that dies takes the emulator with it). When stdin is /dev/null or
a file (a background job in a shell script, CI without stdin) it is not watched; ``--no-stdin-watch``
turns the watch off explicitly.

One process, one port:
- every request goes through ``EmulatorMiddleware``, which serves ``/_emulator/*`` (call counters,
  fault injection, latency, extra Cost Explorer seeds, Athena outcomes and query log; see
  README.md) and otherwise hands the request to moto's own WSGI app,
  ``DomainDispatcherApplication(create_backend_app)``, the app ``moto.server`` and
  ``ThreadedMotoServer`` serve;
- Cost Explorer operations that moto 5.2.5 lacks (they answer HTTP 500 NotImplementedError there)
  are added as methods of moto's ``CostExplorerResponse``, answering from per-account seed stores
  (GetAnomalies with its MonitorArn/DateInterval/Feedback/TotalImpact filters, and anomaly
  monitors: CreateAnomalyMonitor, GetAnomalyMonitors, DeleteAnomalyMonitor);
- the AWS Price List service (X-Amz-Target ``AWSPriceListService.*``), which moto 5.2.5 does not
  route at all, is answered by the middleware itself: GetProducts, DescribeServices and
  GetAttributeValues over a default Bedrock catalog (``default_price_catalog``) or a seeded one;
- CloudWatch Logs Insights ``stats`` queries (StartQuery, GetQueryResults, StopQuery), which moto's
  own query engine lacks, are answered by the middleware from moto's stored log events
  (``insights_engine``; the queries are listed at ``GET /_emulator/logs/queries``); other queries go
  to moto;
- Bedrock's GetInferenceProfile (moto has none) is answered by the middleware from seeded
  application inference profiles (``INFERENCE_PROFILES``), and ListTagsForResource of a seeded
  profile from its ``"tags"`` (other resources go to moto);
- Budgets' DescribeBudget/DescribeBudgets of moto's ``BudgetsResponse`` are wrapped: FilterExpression
  only with ShowFilterExpression=true, and DescribeBudgets pages (MaxResults, NextToken);
- IAM's GetAccountAuthorizationDetails (moto answers one page whatever MaxItems says) is replaced
  by a version that pages like IAM (MaxItems, IsTruncated, Marker), with a test cap on page size;
- four Athena operations of moto's ``AthenaResponse`` are wrapped (StartQueryExecution,
  GetQueryExecution, StopQueryExecution, GetQueryResults): the wrappers call moto's method and
  add GetQueryResults paging, the query log and queued outcomes (FAILED, CANCELLED, RUNNING for
  some polls), kept in ``ATHENA``, which any reset clears;
- answers computed from CUR 2.0 line items, each engine in its own module: while line items are
  loaded (``/_emulator/ce/line-items``), GetCostAndUsage (moto's method is wrapped) and
  GetDimensionValues come from ``ce_engine.CeEngine`` (``CE_ENGINE``); a StartQueryExecution whose
  SQL names a table registered with ``/_emulator/athena/tables`` runs on DuckDB
  (``athena_engine.AthenaEngine``, ``ATHENA_ENGINE``) and its execution reports that result,
  instead of moto's seeded one.

This touches moto internals (``CostExplorerResponse`` and its ``get_cost_and_usage``, ``ce_backends``,
``AthenaResponse``, ``BudgetsResponse``, ``AthenaBackend.executions``/``query_results_queue``,
``Execution.status``, ``moto_api_backend``, ``IamResponse``/``ActionResult``,
``DomainDispatcherApplication``, ``MotoRequestHandler``), so moto is pinned to 5.2.5 and the
emulator refuses to start on another version.

Observed in moto 5.2.5 (GetCostAndUsage, seeded through /moto-api/static/ce/cost-and-usage-results):
- Seeds are queued per account. An answer is cached per exact raw request body: the same body
  gets the same answer again without consuming the queue; any other body takes the next queued
  item, so body bytes matter (key order, whitespace), not the query's meaning.
- Once the queue is empty a new body gets ``{"ResultsByTime": [], "DimensionValueAttributes": []}``.
  That empty answer is not cached: seeding later and repeating the same body gets the new seed.
- ``NextPageToken`` is not interpreted. Paging works only because a follow-up request carries a
  ``NextPageToken`` and so is a different body: it takes the next queued item, whatever the token
  says. Seed the pages in the order the client will ask for them, each page but the last with a
  ``NextPageToken``.
- GroupBy, Filter, Metrics and TimePeriod are ignored; the seed must already be the answer.
- A call that this emulator answers with an injected fault never reaches moto, so it does not
  consume a seed; a delay-only fault passes through and does.

Observed in moto 5.2.5 (Athena), before our wrappers:
- GetQueryExecution answers ``Status`` = ``{State, SubmissionDateTime, CompletionDateTime}``
  (epoch seconds as JSON numbers, both set at start), never StateChangeReason or AthenaError;
  ``Statistics`` with every counter 0 (DataScannedInBytes included); ``null`` for an absent
  ResultConfiguration, QueryExecutionContext or WorkGroup; OutputLocation with ``<id>.csv``
  appended. An execution is SUCCEEDED at once (its QUEUED -> RUNNING -> SUCCEEDED transitions are
  "immediate" unless /moto-api/state-manager says otherwise).
- An unknown QueryExecutionId is HTTP 500 (KeyError) in GetQueryExecution and StopQueryExecution,
  and empty rows in GetQueryResults.
- StopQueryExecution makes any execution CANCELLED, even a SUCCEEDED one.
- GetQueryResults on a non-SUCCEEDED execution raises QueryStillRunning: HTTP 400,
  ``{"__type": "InvalidRequestException", "message": "Query has not yet finished. Current state:
  CANCELLED"}``, for CANCELLED and FAILED too. It ignores MaxResults and NextToken.
- Results seeded through /moto-api/static/athena/query-results are queued per account and region;
  StartQueryExecution hands the next one to the new execution (and writes it as CSV to the output
  location when that bucket exists); an execution started with the queue empty takes the next seed
  at its first GetQueryResults, or gets empty rows.
- Successful answers carry ``Content-Type: text/html; charset=utf-8`` (boto3 does not mind; the
  Cost Explorer extensions answer the same way).

Observed in moto 5.2.5 (Budgets, STS, Cost Explorer anomalies, Price List), before our changes:
- CreateBudget stores the Budget dict as sent; DescribeBudget(s) answer it back with BudgetLimit,
  FilterExpression (Tags, Dimensions, And/Not, as sent), CalculatedSpend and TimePeriod intact,
  CalculatedSpend {ActualSpend, ForecastedSpend} = "0" USD when it was not sent, AWS's default
  CostTypes for COST budgets, LastUpdatedTime and TimePeriod as epoch seconds (TimePeriod defaults
  to the first of this month .. 2087-06-15). It returns FilterExpression whatever
  ShowFilterExpression says, ignores MaxResults/NextToken and adds ``"nextToken": null``; an
  account without budgets gets ``{"Budgets": []}``. UpdateBudget is not implemented (HTTP 500).
- GetCallerIdentity answers Account 123456789012 for any access key; for a key moto does not know
  (``testing``) Arn ``arn:aws:sts::123456789012:user/moto`` and UserId ``AKIAIOSFODNN7EXAMPLE``.
  A key minted by AssumeRole maps back to ``arn:aws:sts::<role account>:assumed-role/<role>/<session>``
  (UserId ``AROA...:<session>``; the AROA part is random per answer unless the role exists in IAM);
  a key from IAM CreateAccessKey maps to ``arn:aws:iam::123456789012:user/<name>``. AssumeRole does
  not need the role to exist. Any reset forgets the minted keys.
- Cost Explorer has no anomaly operations (CreateAnomalyMonitor, GetAnomalyMonitors, GetAnomalies:
  HTTP 500 NotImplementedError).
- The Price List service has no backend: a request signed for "pricing" gets HTTP 500.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import logging
import os
import signal
import re
import stat
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import moto
from moto.athena.models import Execution
from moto.athena.responses import AthenaResponse
from moto.budgets.responses import BudgetsResponse
from moto.ce.models import ce_backends
from moto.ce.responses import CostExplorerResponse
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.iam.exceptions import InvalidInput as IamInvalidInput
from moto.iam.responses import IamResponse
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends
from moto.core.exceptions import JsonRESTError
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

# Our engines, modules next to this file (the directory of a script is on sys.path).
import athena_engine
import ce_engine
import insights_engine

PINNED_MOTO_VERSION = "5.2.5"

# The SDKs send Cost Explorer requests as AWS JSON 1.1; the same type goes on our error answers.
AWS_JSON_1_1 = "application/x-amz-json-1.1"

# UpdateCostAllocationTagsStatus accepts 1 to 20 entries (API model: CostAllocationTagStatusList).
MAX_TAG_STATUS_UPDATES = 20
# ListCostAllocationTags pages at 100 by default and accepts at most 1000 (API reference).
DEFAULT_TAG_PAGE_SIZE = 100
MAX_TAG_PAGE_SIZE = 1000


# The calendar follows the server's: BEDROCK_COST_MCP_NOW pins "now" (RFC 3339, or a date read as
# noon UTC) and the clock runs on from there, as in the server (core/src/domain/clock.rs).
_STARTED = time.monotonic()


def _pinned_now() -> datetime | None:
    raw = os.environ.get("BEDROCK_COST_MCP_NOW", "").strip()
    if not raw:
        return None
    if len(raw) == 10:
        raw += "T12:00:00Z"
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(timezone.utc)


_PINNED = _pinned_now()


def calendar_now() -> datetime:
    if _PINNED is None:
        return datetime.now(timezone.utc)
    from datetime import timedelta
    return _PINNED + timedelta(seconds=time.monotonic() - _STARTED)


def utc_now_iso() -> str:
    return calendar_now().strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Cost Explorer seed stores
# ---------------------------------------------------------------------------------------------


@dataclass
class CeSeeds:
    """What the added Cost Explorer operations answer from, for one account."""

    dimension_values: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cost_allocation_tags: list[dict[str, Any]] = field(default_factory=list)
    forecast: dict[str, Any] | None = None
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    anomaly_monitors: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, list[str]] = field(default_factory=dict)
    backfills: list[dict[str, Any]] = field(default_factory=list)
    anomaly_subscriptions: list[dict[str, Any]] = field(default_factory=list)


_SEEDS_ATTR = "emulator_seeds"
# Guards the seed stores (werkzeug serves each request on its own thread); hold it to call ce_seeds.
_seeds_lock = threading.Lock()


def ce_seeds(account_id: str) -> CeSeeds:
    """The seed store of one account, kept as an attribute of moto's CostExplorerBackend.

    moto internals: ``ce_backends[account]["global"]`` is the backend that CostExplorerResponse
    uses for that account (moto maps "global" to the "aws" partition). Keeping our store on it
    means any moto reset (``/moto-api/reset``, ``/_emulator/reset``) drops it together with moto's
    own GetCostAndUsage queue, since a reset rebuilds the backend objects.
    """
    backend = ce_backends[account_id]["global"]
    seeds = getattr(backend, _SEEDS_ATTR, None)
    if seeds is None:
        seeds = CeSeeds()
        setattr(backend, _SEEDS_ATTR, seeds)
    return seeds


def validation_error(message: str) -> JsonRESTError:
    # moto turns a raised JsonRESTError into an HTTP 400 JSON error answer.
    return JsonRESTError("ValidationException", message)


def invalid_next_token() -> JsonRESTError:
    # The error Cost Explorer models for a bad token in GetAnomalies and GetAnomalyMonitors (and
    # Budgets in DescribeBudgets).
    return JsonRESTError("InvalidNextTokenException", "The pagination token is invalid")


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_offset(token: str | None, error: Callable[[], JsonRESTError]) -> int:
    if not token:
        return 0
    try:
        kind, value = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        offset = int(value)
    except ValueError as err:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise error() from err
    if kind != "offset" or offset < 0:
        raise error()
    return offset


def page(
    items: list[Any],
    token: str | None,
    max_results: int | None,
    error: Callable[[], JsonRESTError] = lambda: validation_error("Invalid pagination token"),
) -> tuple[list[Any], str | None]:
    """Slice one page out of items; the returned token is None on the last page.

    ``error`` makes the exception for a token we did not mint (the operation's modeled error).
    """
    start = decode_offset(token, error)
    end = len(items) if max_results is None else start + max_results
    return items[start:end], (encode_offset(end) if end < len(items) else None)


def matches_search(value: str, search: str | None) -> bool:
    return not search or search.lower() in value.lower()


# moto internals: BaseResponse.call_action dispatches an operation to the method of the response
# class named after it in snake case, with the raw request body in self.body and the caller's
# account in self.current_account; a str return value is a 200 answer, and a raised JsonRESTError
# becomes an error answer. moto 5.2.5's CostExplorerResponse has none of the methods below.


def get_dimension_values(self: CostExplorerResponse) -> str:
    params = json.loads(self.body)
    computed = ce_engine_call(CE_ENGINE.get_dimension_values, params)
    if computed is not None:
        return json.dumps(computed)
    search = params.get("SearchString")
    with _seeds_lock:
        seeded = ce_seeds(self.current_account).dimension_values.get(params.get("Dimension"), [])
        values = [dict(v) for v in seeded if matches_search(v["Value"], search)]
    return json.dumps({"DimensionValues": values, "ReturnSize": len(values), "TotalSize": len(values)})


def list_cost_allocation_tags(self: CostExplorerResponse) -> str:
    params = json.loads(self.body)
    max_results = params.get("MaxResults", DEFAULT_TAG_PAGE_SIZE)
    if not 1 <= max_results <= MAX_TAG_PAGE_SIZE:
        raise validation_error(f"MaxResults must be between 1 and {MAX_TAG_PAGE_SIZE}")
    status, tag_type, tag_keys = params.get("Status"), params.get("Type"), params.get("TagKeys")
    with _seeds_lock:
        tags = [
            dict(tag)
            for tag in ce_seeds(self.current_account).cost_allocation_tags
            if (status is None or tag.get("Status") == status)
            and (tag_type is None or tag.get("Type") == tag_type)
            and (tag_keys is None or tag["TagKey"] in tag_keys)
        ]
    items, next_token = page(tags, params.get("NextToken"), max_results)
    answer: dict[str, Any] = {"CostAllocationTags": items}
    if next_token:
        answer["NextToken"] = next_token
    return json.dumps(answer)


def update_cost_allocation_tags_status(self: CostExplorerResponse) -> str:
    updates = json.loads(self.body).get("CostAllocationTagsStatus", [])
    if not 1 <= len(updates) <= MAX_TAG_STATUS_UPDATES:
        raise validation_error(
            f"CostAllocationTagsStatus must contain between 1 and {MAX_TAG_STATUS_UPDATES} entries"
        )
    errors = []
    with _seeds_lock:
        by_key = {tag["TagKey"]: tag for tag in ce_seeds(self.current_account).cost_allocation_tags}
        for update in updates:
            tag = by_key.get(update["TagKey"])
            if tag is None:
                errors.append(
                    {
                        "TagKey": update["TagKey"],
                        "Code": "TagKeysNotFoundException",
                        "Message": f"Tag key {update['TagKey']} was not found",
                    }
                )
                continue
            tag["Status"] = update["Status"]
            tag["LastUpdatedDate"] = utc_now_iso()
    return json.dumps({"Errors": errors})


def get_cost_forecast(self: CostExplorerResponse) -> str:
    with _seeds_lock:
        forecast = ce_seeds(self.current_account).forecast
    if forecast is None:
        # What AWS answers for an account without enough cost history.
        raise JsonRESTError(
            "DataUnavailableException", "Insufficient amount of historical data to generate forecast."
        )
    return json.dumps(forecast)


# GetAnomalies TotalImpact filter: NumericOperator -> test of (total impact, StartValue, EndValue).
IMPACT_OPERATORS: dict[str, Callable[[float, float, float | None], bool]] = {
    "EQUAL": lambda v, start, _end: v == start,
    "GREATER_THAN_OR_EQUAL": lambda v, start, _end: v >= start,
    "LESS_THAN_OR_EQUAL": lambda v, start, _end: v <= start,
    "GREATER_THAN": lambda v, start, _end: v > start,
    "LESS_THAN": lambda v, start, _end: v < start,
    "BETWEEN": lambda v, start, end: end is not None and start <= v <= end,
}


def day(value: Any) -> str:
    """The YYYY-MM-DD part of a Cost Explorer date ("2026-11-02" or "2026-11-02T00:00:00Z")."""
    return str(value)[:10]


def anomaly_matches(anomaly: dict[str, Any], params: dict[str, Any]) -> bool:
    """GetAnomalies' filters, as the API reference describes them."""
    monitor_arn = params.get("MonitorArn")
    if monitor_arn and anomaly.get("MonitorArn") != monitor_arn:
        return False
    # "The returned anomaly object will have an AnomalyEndDate in the specified time range"; both
    # ends inclusive, no EndDate means no upper bound. An anomaly still open (no AnomalyEndDate)
    # is dated by its AnomalyStartDate.
    interval = params["DateInterval"]
    when = day(anomaly.get("AnomalyEndDate") or anomaly.get("AnomalyStartDate") or "")
    if when < day(interval["StartDate"]):
        return False
    if interval.get("EndDate") and when > day(interval["EndDate"]):
        return False
    if params.get("Feedback") and anomaly.get("Feedback") != params["Feedback"]:
        return False
    impact_filter = params.get("TotalImpact")
    if impact_filter:
        total = (anomaly.get("Impact") or {}).get("TotalImpact")
        if total is None:
            return False
        test = IMPACT_OPERATORS[impact_filter["NumericOperator"]]
        return test(float(total), float(impact_filter["StartValue"]), impact_filter.get("EndValue"))
    return True


def get_anomalies(self: CostExplorerResponse) -> str:
    params = json.loads(self.body)
    if params.get("MaxResults", 1) < 1:
        raise validation_error("MaxResults must be at least 1")
    interval = params.get("DateInterval")
    if not isinstance(interval, dict) or not interval.get("StartDate"):
        raise validation_error("DateInterval.StartDate is required")
    impact_filter = params.get("TotalImpact")
    if impact_filter is not None and (
        impact_filter.get("NumericOperator") not in IMPACT_OPERATORS or "StartValue" not in impact_filter
    ):
        raise validation_error(
            f"TotalImpact needs a NumericOperator ({', '.join(IMPACT_OPERATORS)}) and a StartValue"
        )
    with _seeds_lock:
        anomalies = [a for a in ce_seeds(self.current_account).anomalies if anomaly_matches(a, params)]
    items, next_token = page(anomalies, params.get("NextPageToken"), params.get("MaxResults"), invalid_next_token)
    answer: dict[str, Any] = {"Anomalies": items}
    if next_token:
        answer["NextPageToken"] = next_token
    return json.dumps(answer)


def unknown_monitor(arn: str) -> JsonRESTError:
    return JsonRESTError("UnknownMonitorException", f"Cost anomaly monitor does not exist for the account: {arn}")


def today_iso() -> str:
    return calendar_now().strftime("%Y-%m-%d")


def create_anomaly_monitor(self: CostExplorerResponse) -> str:
    monitor = dict(json.loads(self.body).get("AnomalyMonitor") or {})
    if not monitor.get("MonitorName") or monitor.get("MonitorType") not in ("DIMENSIONAL", "CUSTOM"):
        raise validation_error("AnomalyMonitor needs a MonitorName and a MonitorType (DIMENSIONAL or CUSTOM)")
    if monitor["MonitorType"] == "DIMENSIONAL" and not monitor.get("MonitorDimension"):
        raise validation_error("A DIMENSIONAL monitor needs a MonitorDimension")
    # AWS managed monitors on a tag or cost category name the key to analyze (API reference,
    # AnomalyMonitor.MonitorSpecification: {"Tags": {"Key": ...}}).
    if monitor.get("MonitorDimension") in ("TAG", "COST_CATEGORY"):
        spec = monitor.get("MonitorSpecification") or {}
        if not (spec.get("Tags") or spec.get("CostCategories") or {}).get("Key"):
            raise validation_error("A TAG or COST_CATEGORY monitor needs MonitorSpecification with the Key to analyze")
    if monitor["MonitorType"] == "CUSTOM" and not monitor.get("MonitorSpecification"):
        raise validation_error("A CUSTOM monitor needs a MonitorSpecification")
    # AWS names monitors arn:aws:ce::<account>:anomalymonitor/<uuid>; the create dates are ours.
    monitor["MonitorArn"] = f"arn:aws:ce::{self.current_account}:anomalymonitor/{uuid.uuid4()}"
    monitor.setdefault("CreationDate", today_iso())
    monitor.setdefault("LastUpdatedDate", monitor["CreationDate"])
    monitor.setdefault("DimensionalValueCount", 0)
    with _seeds_lock:
        ce_seeds(self.current_account).anomaly_monitors.append(monitor)
    return json.dumps({"MonitorArn": monitor["MonitorArn"]})


def get_anomaly_monitors(self: CostExplorerResponse) -> str:
    params = json.loads(self.body)
    if params.get("MaxResults", 1) < 1:
        raise validation_error("MaxResults must be at least 1")
    wanted = params.get("MonitorArnList") or []
    with _seeds_lock:
        monitors = [dict(m) for m in ce_seeds(self.current_account).anomaly_monitors]
    if wanted:
        known = {m["MonitorArn"] for m in monitors}
        missing = [arn for arn in wanted if arn not in known]
        if missing:
            raise unknown_monitor(missing[0])
        monitors = [m for m in monitors if m["MonitorArn"] in wanted]
    items, next_token = page(monitors, params.get("NextPageToken"), params.get("MaxResults"), invalid_next_token)
    answer: dict[str, Any] = {"AnomalyMonitors": items}
    if next_token:
        answer["NextPageToken"] = next_token
    return json.dumps(answer)


def delete_anomaly_monitor(self: CostExplorerResponse) -> str:
    arn = json.loads(self.body).get("MonitorArn")
    with _seeds_lock:
        seeds = ce_seeds(self.current_account)
        kept = [m for m in seeds.anomaly_monitors if m["MonitorArn"] != arn]
        if len(kept) == len(seeds.anomaly_monitors):
            raise unknown_monitor(str(arn))
        seeds.anomaly_monitors = kept
    return json.dumps({})


def get_tags(self: CostExplorerResponse) -> str:
    params = json.loads(self.body)
    with _seeds_lock:
        store = ce_seeds(self.current_account).tags
        if params.get("TagKey"):
            candidates = list(store.get(params["TagKey"], []))
        else:
            candidates = list(store)
    tags = [t for t in candidates if matches_search(t, params.get("SearchString"))]
    return json.dumps({"Tags": tags, "ReturnSize": len(tags), "TotalSize": len(tags)})


# StartCostAllocationTagBackfill (aws-sdk-costexplorer 1.138): BackfillFrom is the first day of a
# month as `YYYY-MM-DDTHH:MM:SSZ`, not before the previous twelve months nor in the future; one
# request at a time (BackfillLimitExceededException while one is PROCESSING) and one per 24 hours
# (LimitExceededException). A request is PROCESSING until its first listing, SUCCEEDED after.
BACKFILL_SPACING_SECONDS = 24 * 3600


def start_cost_allocation_tag_backfill(self: CostExplorerResponse) -> str:
    raw = json.loads(self.body or "{}").get("BackfillFrom", "")
    try:
        start = datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        raise validation_error(f"BackfillFrom {raw!r} is not a date-time like 2026-01-01T00:00:00Z")
    now = calendar_now()
    earliest = (now.year * 12 + now.month - 1) - 12
    if start.day != 1 or start.hour or start.minute or start.second:
        raise validation_error("BackfillFrom must be the first day of a month")
    if start > now or (start.year * 12 + start.month - 1) < earliest:
        raise validation_error("BackfillFrom cannot precede the previous twelve months or be in the future")
    with _seeds_lock:
        history = ce_seeds(self.current_account).backfills
        if any(b["BackfillStatus"] == "PROCESSING" for b in history):
            raise JsonRESTError("BackfillLimitExceededException", "A request to backfill is already in progress")
        if history:
            last = datetime.strptime(history[-1]["RequestedAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            if (now - last).total_seconds() < BACKFILL_SPACING_SECONDS:
                raise JsonRESTError("LimitExceededException", "You can request a backfill once every 24 hours")
        request = {"BackfillFrom": raw, "RequestedAt": utc_now_iso(), "BackfillStatus": "PROCESSING",
                   "LastUpdatedAt": utc_now_iso()}
        history.append(request)
        return json.dumps({"BackfillRequest": dict(request)})


def list_cost_allocation_tag_backfill_history(self: CostExplorerResponse) -> str:
    with _seeds_lock:
        history = ce_seeds(self.current_account).backfills
        answer = [dict(b) for b in reversed(history)]
        for b in history:
            if b["BackfillStatus"] == "PROCESSING":
                b["BackfillStatus"] = "SUCCEEDED"
                b["CompletedAt"] = b["LastUpdatedAt"] = utc_now_iso()
    return json.dumps({"BackfillRequests": answer})


def create_anomaly_subscription(self: CostExplorerResponse) -> str:
    sub = dict(json.loads(self.body).get("AnomalySubscription") or {})
    if not sub.get("SubscriptionName") or not sub.get("MonitorArnList") or not sub.get("Subscribers"):
        raise validation_error("AnomalySubscription needs SubscriptionName, MonitorArnList and Subscribers")
    if sub.get("Frequency") not in ("DAILY", "IMMEDIATE", "WEEKLY"):
        raise validation_error("Frequency must be DAILY, IMMEDIATE or WEEKLY")
    with _seeds_lock:
        known = {m["MonitorArn"] for m in ce_seeds(self.current_account).anomaly_monitors}
        for arn in sub["MonitorArnList"]:
            if arn not in known:
                raise unknown_monitor(arn)
        sub["SubscriptionArn"] = f"arn:aws:ce::{self.current_account}:anomalysubscription/{uuid.uuid4()}"
        ce_seeds(self.current_account).anomaly_subscriptions.append(sub)
    return json.dumps({"SubscriptionArn": sub["SubscriptionArn"]})


def get_anomaly_subscriptions(self: CostExplorerResponse) -> str:
    with _seeds_lock:
        subs = [dict(x) for x in ce_seeds(self.current_account).anomaly_subscriptions]
    return json.dumps({"AnomalySubscriptions": subs})


def delete_anomaly_subscription(self: CostExplorerResponse) -> str:
    arn = json.loads(self.body).get("SubscriptionArn")
    with _seeds_lock:
        subs = ce_seeds(self.current_account).anomaly_subscriptions
        if not any(x["SubscriptionArn"] == arn for x in subs):
            raise JsonRESTError("UnknownSubscriptionException", f"subscription {arn} not found")
        subs[:] = [x for x in subs if x["SubscriptionArn"] != arn]
    return json.dumps({})


CE_EXTENSIONS: dict[str, Callable[[CostExplorerResponse], str]] = {
    "create_anomaly_subscription": create_anomaly_subscription,
    "get_anomaly_subscriptions": get_anomaly_subscriptions,
    "delete_anomaly_subscription": delete_anomaly_subscription,
    "start_cost_allocation_tag_backfill": start_cost_allocation_tag_backfill,
    "list_cost_allocation_tag_backfill_history": list_cost_allocation_tag_backfill_history,
    "get_dimension_values": get_dimension_values,
    "list_cost_allocation_tags": list_cost_allocation_tags,
    "update_cost_allocation_tags_status": update_cost_allocation_tags_status,
    "get_cost_forecast": get_cost_forecast,
    "get_anomalies": get_anomalies,
    "create_anomaly_monitor": create_anomaly_monitor,
    "get_anomaly_monitors": get_anomaly_monitors,
    "delete_anomaly_monitor": delete_anomaly_monitor,
    "get_tags": get_tags,
}


# GetCostAndUsage and GetDimensionValues computed from CUR line items (ce_engine.py) while some are
# loaded with POST /_emulator/ce/line-items; otherwise moto's queue and our seeds answer.
CE_ENGINE = ce_engine.CeEngine()
_CE_ORIGINALS: dict[str, Callable[[CostExplorerResponse], Any]] = {}


def ce_engine_call(method: Callable[..., dict[str, Any] | None], *args: Any) -> dict[str, Any] | None:
    try:
        return method(*args)
    except ce_engine.CeError as err:
        raise JsonRESTError(err.code, err.message) from err


def get_cost_and_usage(self: CostExplorerResponse) -> Any:
    params = json.loads(self.body or "{}")
    computed = ce_engine_call(CE_ENGINE.get_cost_and_usage, params, calendar_now())
    if computed is None:
        return _CE_ORIGINALS["get_cost_and_usage"](self)
    return json.dumps(computed)


def install_ce_extensions() -> None:
    for name, method in CE_EXTENSIONS.items():
        if hasattr(CostExplorerResponse, name):
            raise RuntimeError(f"moto's CostExplorerResponse already has {name}; review the extension")
        setattr(CostExplorerResponse, name, method)
    original = CostExplorerResponse.__dict__.get("get_cost_and_usage")
    if original is None:
        raise RuntimeError("moto's CostExplorerResponse has no get_cost_and_usage of its own; review the override")
    _CE_ORIGINALS["get_cost_and_usage"] = original
    CostExplorerResponse.get_cost_and_usage = get_cost_and_usage


# ---------------------------------------------------------------------------------------------
# Seeding endpoints (/_emulator/ce/*)
# ---------------------------------------------------------------------------------------------


class BadRequest(Exception):
    """A control request the emulator cannot act on; answered as HTTP 400."""


def seed_dimension_values(seeds: CeSeeds, body: dict[str, Any]) -> None:
    store = {}
    for dimension, values in body.items():
        if not isinstance(values, list):
            raise BadRequest(f"{dimension}: expected a list of values")
        # A value is a string, or a full DimensionValuesWithAttributes object.
        store[dimension] = [v if isinstance(v, dict) else {"Value": v, "Attributes": {}} for v in values]
        if not all(isinstance(v.get("Value"), str) for v in store[dimension]):
            raise BadRequest(f"{dimension}: each value is a string or an object with a string Value")
    seeds.dimension_values = store


def seed_cost_allocation_tags(seeds: CeSeeds, body: dict[str, Any]) -> None:
    tags = body.get("CostAllocationTags")
    if not isinstance(tags, list) or not all("TagKey" in t for t in tags):
        raise BadRequest('expected {"CostAllocationTags": [{"TagKey": ...}, ...]}')
    seeds.cost_allocation_tags = [dict(t) for t in tags]


def seed_forecast(seeds: CeSeeds, body: dict[str, Any]) -> None:
    seeds.forecast = body


def seed_anomalies(seeds: CeSeeds, body: dict[str, Any]) -> None:
    anomalies = body.get("Anomalies")
    if not isinstance(anomalies, list):
        raise BadRequest('expected {"Anomalies": [...]}')
    seeds.anomalies = anomalies


def seed_anomaly_monitors(seeds: CeSeeds, body: dict[str, Any]) -> None:
    monitors = body.get("AnomalyMonitors")
    if not isinstance(monitors, list) or not all(
        isinstance(m, dict) and isinstance(m.get("MonitorArn"), str) for m in monitors
    ):
        raise BadRequest('expected {"AnomalyMonitors": [{"MonitorArn": ..., ...}, ...]}')
    seeds.anomaly_monitors = [dict(m) for m in monitors]


def seed_tags(seeds: CeSeeds, body: dict[str, Any]) -> None:
    if not all(isinstance(v, list) for v in body.values()):
        raise BadRequest('expected {"<tag key>": ["<value>", ...], ...}')
    seeds.tags = {key: list(values) for key, values in body.items()}


CE_SEEDERS: dict[str, Callable[[CeSeeds, dict[str, Any]], None]] = {
    "/_emulator/ce/dimension-values": seed_dimension_values,
    "/_emulator/ce/cost-allocation-tags": seed_cost_allocation_tags,
    "/_emulator/ce/forecast": seed_forecast,
    "/_emulator/ce/anomalies": seed_anomalies,
    "/_emulator/ce/anomaly-monitors": seed_anomaly_monitors,
    "/_emulator/ce/tags": seed_tags,
}


# ---------------------------------------------------------------------------------------------
# Athena: GetQueryResults paging, query log, queued query outcomes
# ---------------------------------------------------------------------------------------------

# GetQueryResults pages at 1000 rows by default and accepts at most 1000 (API reference).
MAX_ATHENA_RESULTS_PAGE = 1000
ATHENA_TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
# Statistics of a finished execution whose outcome sets data_scanned_bytes: fixed, plausible
# timings. As in AWS, the total is queue + pre-processing + engine + service processing time,
# and query planning is part of the engine time.
ATHENA_EMULATED_TIMINGS = {
    "QueryQueueTimeInMillis": 12,
    "ServicePreProcessingTimeInMillis": 8,
    "QueryPlanningTimeInMillis": 40,
    "EngineExecutionTimeInMillis": 250,
    "ServiceProcessingTimeInMillis": 15,
    "TotalExecutionTimeInMillis": 285,
}
# (StateChangeReason, ErrorCategory, ErrorType) when a FAILED/CANCELLED outcome gives none.
# Categories: 1 SYSTEM, 2 USER, 3 OTHER; error type 1000 is "user error" (Athena error catalog).
ATHENA_OUTCOME_DEFAULTS = {
    "FAILED": ("GENERIC_USER_ERROR: query failed (emulated)", 2, 1000),
    "CANCELLED": ("Query cancelled (emulated)", 2, 1000),
}
ATHENA_OUTCOME_FIELDS = {
    "state", "polls", "reason", "error_category", "error_type", "data_scanned_bytes",
    "reused_previous_result",
}


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class AthenaOutcome:
    """What one query execution does, queued by POST /_emulator/athena/outcomes."""

    spec: dict[str, Any]  # as posted, for GET /_emulator/athena/outcomes
    final: str | None  # SUCCEEDED, FAILED or CANCELLED; None: RUNNING until stopped
    polls: int  # GetQueryExecution calls answered QUEUED (the first) or RUNNING before `final`
    reason: str | None
    error_category: int | None
    error_type: int | None
    data_scanned_bytes: int | None
    reused_previous_result: bool = False

    @classmethod
    def from_json(cls, spec: Any) -> AthenaOutcome:
        if not isinstance(spec, dict):
            raise BadRequest("each outcome must be an object")
        unknown = sorted(set(spec) - ATHENA_OUTCOME_FIELDS)
        if unknown:
            raise BadRequest(f"unknown outcome fields: {', '.join(unknown)}")
        state = spec.get("state")
        if state == "RUNNING_THEN_SUCCEEDED":
            final, polls = "SUCCEEDED", spec.get("polls", 1)
        elif state == "RUNNING":
            if "polls" in spec:
                raise BadRequest("a RUNNING outcome never finishes by itself; it takes no polls")
            final, polls = None, 0
        elif state in ATHENA_TERMINAL_STATES:
            final, polls = state, spec.get("polls", 0)
        else:
            raise BadRequest(
                "state must be SUCCEEDED, FAILED, CANCELLED, RUNNING_THEN_SUCCEEDED or RUNNING"
            )
        if not is_int(polls) or polls < 0:
            raise BadRequest("polls must be a non-negative integer")
        failure = final in ("FAILED", "CANCELLED")
        if not failure and {"reason", "error_category", "error_type"} & set(spec):
            raise BadRequest("reason, error_category and error_type apply to FAILED and CANCELLED only")
        reason, category, error_type = ATHENA_OUTCOME_DEFAULTS.get(final, (None, None, None))
        reason = spec.get("reason", reason)
        category = spec.get("error_category", category)
        error_type = spec.get("error_type", error_type)
        if failure and not (isinstance(reason, str) and is_int(category) and is_int(error_type)):
            raise BadRequest("reason must be a string, error_category and error_type integers")
        scanned = spec.get("data_scanned_bytes")
        if scanned is not None and (not is_int(scanned) or scanned < 0):
            raise BadRequest("data_scanned_bytes must be a non-negative integer")
        reused = spec.get("reused_previous_result", False)
        if not isinstance(reused, bool) or (reused and final != "SUCCEEDED"):
            raise BadRequest("reused_previous_result must be a boolean, true only for a query that succeeds")
        return cls(dict(spec), final, polls, reason, category, error_type, scanned, reused)


@dataclass
class AthenaQuery:
    """One execution that StartQueryExecution created: its query-log entry, its outcome state."""

    log: dict[str, Any]  # the entry GET /_emulator/athena/queries shows
    outcome: AthenaOutcome | None  # None: moto's own behaviour (SUCCEEDED at once)
    polls_seen: int = 0  # GetQueryExecution calls answered so far
    cancelled_by_stop: bool = False
    completed_at: float | None = None  # epoch seconds, once the outcome reached its final state
    engine: athena_engine.EngineResult | None = None  # computed by DuckDB (a registered table)

    def state(self) -> str:
        """The controlled state: what the last GetQueryExecution reported, or would report first."""
        assert self.outcome is not None
        if self.cancelled_by_stop:
            return "CANCELLED"
        call = max(self.polls_seen, 1)
        if self.outcome.final is None or call <= self.outcome.polls:
            return "QUEUED" if call == 1 else "RUNNING"
        return self.outcome.final

    def settle(self, execution: Execution) -> str:
        """Mirror a final controlled state onto moto's Execution; return the state."""
        state = self.state()
        if state in ATHENA_TERMINAL_STATES and self.completed_at is None:
            self.completed_at = time.time()
            # moto internals: Execution.status is a ManagedState property; setting it to a state
            # without outgoing transitions (FAILED, CANCELLED) or the last one (SUCCEEDED) sticks.
            execution.status = state
        return state


class AthenaControl:
    """Queued outcomes and the query log, for every account and region (execution ids are UUIDs)."""

    def __init__(self) -> None:
        # werkzeug serves each request on its own thread; hold the lock to touch the fields.
        self.lock = threading.Lock()
        self.outcomes: list[AthenaOutcome] = []
        self.queries: dict[str, AthenaQuery] = {}  # by execution id, in start order

    def clear(self) -> None:
        with self.lock:
            self.outcomes.clear()
            self.queries.clear()


ATHENA = AthenaControl()
# Queries naming a table registered with POST /_emulator/athena/tables run on DuckDB.
ATHENA_ENGINE = athena_engine.AthenaEngine()


def engine_outcome(outcome: AthenaOutcome | None, result: athena_engine.EngineResult) -> AthenaOutcome:
    """The outcome of an execution the engine ran: a queued outcome still sets the polls and a
    FAILED/CANCELLED/RUNNING end; the engine's failure replaces a SUCCEEDED end, and its data
    scanned fills a SUCCEEDED outcome that names none."""
    if result.error is not None:
        reason, category, error_type = result.error
        if outcome is None:
            return AthenaOutcome({}, "FAILED", 0, reason, category, error_type, None)
        if outcome.final == "SUCCEEDED":
            return replace(outcome, final="FAILED", reason=reason, error_category=category,
                           error_type=error_type, reused_previous_result=False)
        return outcome
    if outcome is None:
        return AthenaOutcome({}, "SUCCEEDED", 0, None, None, None, result.scanned_bytes)
    if outcome.final == "SUCCEEDED" and outcome.data_scanned_bytes is None and not outcome.reused_previous_result:
        return replace(outcome, data_scanned_bytes=result.scanned_bytes)
    return outcome


def athena_invalid_request(message: str) -> JsonRESTError:
    # The shape moto's own QueryStillRunning has: HTTP 400,
    # {"__type": "InvalidRequestException", "message": ...} and x-amzn-ErrorType.
    return JsonRESTError("InvalidRequestException", message)


def athena_execution(response: AthenaResponse, exec_id: str) -> Execution:
    """moto's Execution for an id, or the InvalidRequestException AWS answers for an unknown one.

    moto internals: ``AthenaResponse.athena_backend`` is ``athena_backends[account][region]`` of the
    caller, and its ``executions`` dict holds moto's ``Execution`` objects. For an unknown id moto
    5.2.5 answers HTTP 500 (a KeyError) in GetQueryExecution and StopQueryExecution, and empty rows
    in GetQueryResults.
    """
    execution = response.athena_backend.executions.get(exec_id)
    if execution is None:
        raise athena_invalid_request(f"QueryExecution {exec_id} was not found")
    return execution


def encode_results_token(exec_id: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"results:{exec_id}:{offset}".encode()).decode()


def decode_results_token(token: str | None, exec_id: str, row_count: int) -> int:
    if token is None:
        return 0
    try:
        kind, token_exec_id, value = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        offset = int(value)
    except ValueError as err:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise athena_invalid_request("The NextToken is not valid") from err
    # A token we minted names this execution and an offset inside its rows.
    if kind != "results" or token_exec_id != exec_id or not 0 < offset < row_count:
        raise athena_invalid_request("The NextToken is not valid")
    return offset


# moto internals: as with Cost Explorer, BaseResponse.call_action dispatches an Athena operation to
# the AthenaResponse method named after it in snake case, and a raised JsonRESTError becomes an
# error answer. Here we replace moto's own methods and call the originals (saved by
# install_athena_extensions) for moto's part of the answer.
_ATHENA_ORIGINALS: dict[str, Callable[[AthenaResponse], Any]] = {}


class AthenaCatalog:
    """Databases and tables made by DDL statements (CREATE DATABASE, CREATE EXTERNAL TABLE,
    DROP TABLE, DROP DATABASE; Athena DDL reference), answered by GetTableMetadata and listed at
    GET /_emulator/athena/catalog. The DDL itself runs as a moto execution (it succeeds); the
    table's columns and TBLPROPERTIES are kept as text (partition projection is not evaluated:
    like a projected table over an export's BILLING_PERIOD= folders, the engine reads every
    partition folder under the location). A table whose LOCATION is in moto's S3 is queried by
    the DuckDB engine: before each query its objects are copied to a local folder registered as
    the table (`mirror`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.databases: set[str] = set()
        self.tables: dict[tuple[str, str], dict[str, Any]] = {}
        self.mirrors: dict[tuple[str, str], str] = {}

    def clear(self) -> None:
        import shutil

        with self.lock:
            self.databases.clear()
            self.tables.clear()
            for folder in self.mirrors.values():
                shutil.rmtree(folder, ignore_errors=True)
            self.mirrors.clear()

    def mirror(self) -> None:
        """Copy the S3 objects under each DDL table's location to its local folder and register
        that folder with the Athena engine under the table's name."""
        import shutil
        import tempfile

        with self.lock:
            tables = [(k, t["Parameters"].get("location", "")) for k, t in self.tables.items()]
        for (database, table), location in tables:
            if not location.startswith("s3://"):
                continue
            bucket_name, _, prefix = location[len("s3://"):].partition("/")
            try:
                bucket = s3_backends[DEFAULT_ACCOUNT_ID]["global"].get_bucket(bucket_name)
            except Exception:  # moto raises MissingBucket: Athena then reads no files
                continue
            with self.lock:
                folder = self.mirrors.get((database, table))
                if folder is None:
                    folder = self.mirrors[(database, table)] = tempfile.mkdtemp(prefix="athena-ddl-")
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder, exist_ok=True)
            for name in list(bucket.keys.keys()):
                if not name.startswith(prefix) or name.endswith("/"):
                    continue
                key = bucket.keys[name]
                target = os.path.join(folder, name[len(prefix):].lstrip("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as out:
                    out.write(key.value)
            ATHENA_ENGINE.register({"database": database, "table": table, "location": folder})

    def apply(self, sql: str) -> None:
        text = (sql or "").strip().rstrip(";")
        flags = re.IGNORECASE | re.DOTALL
        with self.lock:
            if m := re.match(r"CREATE\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?", text, flags):
                self.databases.add(m.group(1).lower())
            elif m := re.match(r"CREATE\s+EXTERNAL\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?\.`?(\w+)`?\s*\((.*?)\)\s*"
                               r"(?:PARTITIONED\s+BY\s*\((.*?)\))?.*?LOCATION\s+'([^']+)'(?:.*?TBLPROPERTIES\s*\((.*)\))?", text, flags):
                def columns(raw: str | None) -> list[dict[str, str]]:
                    out = []
                    for part in re.split(r",(?![^<]*>)", raw or ""):
                        bits = part.strip().split(None, 1)
                        if len(bits) == 2:
                            out.append({"Name": bits[0].strip("`"), "Type": bits[1].strip()})
                    return out
                props = dict(re.findall(r"'([^']+)'\s*=\s*'([^']*)'", m.group(6) or ""))
                self.tables[(m.group(1).lower(), m.group(2).lower())] = {
                    "Name": m.group(2).lower(), "TableType": "EXTERNAL_TABLE",
                    "Columns": columns(m.group(3)), "PartitionKeys": columns(m.group(4)),
                    "Parameters": dict(props, location=m.group(5)),
                }
            elif m := re.match(r"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?`?(\w+)`?\.`?(\w+)`?", text, flags):
                key = (m.group(1).lower(), m.group(2).lower())
                self.tables.pop(key, None)
                if key in self.mirrors:
                    with ATHENA_ENGINE.lock:
                        ATHENA_ENGINE.tables.pop((athena_engine.DEFAULT_CATALOG.lower(), *key), None)
            elif m := re.match(r"DROP\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+EXISTS\s+)?`?(\w+)`?", text, flags):
                self.databases.discard(m.group(1).lower())

    def listing(self) -> dict[str, Any]:
        with self.lock:
            return {"databases": sorted(self.databases),
                    "tables": [dict(t, Database=d) for (d, _), t in sorted(self.tables.items())]}


ATHENA_CATALOG = AthenaCatalog()


def get_table_metadata(self: AthenaResponse) -> str:
    database = (self._get_param("DatabaseName") or "").lower()
    table = (self._get_param("TableName") or "").lower()
    with ATHENA_CATALOG.lock:
        found = ATHENA_CATALOG.tables.get((database, table))
    if found is None:
        raise JsonRESTError("MetadataException", f"Table {table} not found in database {database}")
    return json.dumps({"TableMetadata": found})


def start_query_execution(self: AthenaResponse) -> Any:
    ATHENA_CATALOG.apply(self._get_param("QueryString"))
    ATHENA_CATALOG.mirror()
    context = self._get_param("QueryExecutionContext") or {}
    result_config = self._get_param("ResultConfiguration") or {}
    log = {
        "id": None,
        "query": self._get_param("QueryString"),
        "database": context.get("Database"),
        "catalog": context.get("Catalog"),
        "workgroup": self._get_param("WorkGroup"),
        # As sent: moto (like AWS) reports OutputLocation with "<id>.csv" appended.
        "output_location": result_config.get("OutputLocation"),
        "execution_parameters": self._get_param("ExecutionParameters"),
        # As sent (None when the caller asked for none).
        "result_reuse": self._get_param("ResultReuseConfiguration"),
        "stopped": False,
    }
    backend = self.athena_backend
    # A query naming a registered table runs on DuckDB now (before the lock: it may take a while).
    # DDL is moto's (it succeeds) and the catalog's, never DuckDB's.
    ddl = re.match(r"\s*(CREATE|DROP|ALTER|MSCK)\b", log["query"] or "", re.IGNORECASE)
    computed = None if ddl else ATHENA_ENGINE.run(
        log["query"], log["execution_parameters"], log["catalog"], log["database"])
    if computed is not None:
        log.update(
            engine="duckdb",
            translated_query=computed.translated_sql,
            tables=computed.tables,
            data_scanned_bytes=computed.scanned_bytes,
            scanned_files=computed.scanned_files,
            error=computed.error[0] if computed.error else None,
        )
    # Held across moto's call so that concurrent starts take outcomes in the order they start.
    with ATHENA.lock:
        outcome = ATHENA.outcomes.pop(0) if ATHENA.outcomes else None
        # moto internals: moto's start_query_execution hands the next result seeded through
        # /moto-api/static/athena/query-results (AthenaBackend.query_results_queue) to the new
        # execution. One that will never succeed must not take it from the query that will, so it
        # gets an empty queue to look at; nor does one that DuckDB answers. (A seed posted during
        # this call would be lost.)
        hide_seeds = computed is not None or (outcome is not None and outcome.final != "SUCCEEDED")
        seeds = backend.query_results_queue
        if hide_seeds:
            backend.query_results_queue = []
        try:
            answer = _ATHENA_ORIGINALS["start_query_execution"](self)
        except BaseException:
            if outcome is not None:
                ATHENA.outcomes.insert(0, outcome)
            raise
        finally:
            if hide_seeds:
                backend.query_results_queue = seeds
        if not isinstance(answer, str):
            # moto's error answer (a WorkGroup that does not exist): no execution was created, so
            # the outcome waits for the next StartQueryExecution.
            if outcome is not None:
                ATHENA.outcomes.insert(0, outcome)
            return answer
        exec_id = json.loads(answer)["QueryExecutionId"]
        log["id"] = exec_id
        if computed is not None:
            outcome = engine_outcome(outcome, computed)
        query = AthenaQuery(log=log, outcome=outcome, engine=computed)
        ATHENA.queries[exec_id] = query
        if outcome is not None:
            query.settle(backend.executions[exec_id])
    return answer


def get_query_execution(self: AthenaResponse) -> str:
    exec_id = self._get_param("QueryExecutionId")
    execution = athena_execution(self, exec_id)
    with ATHENA.lock:
        query = ATHENA.queries.get(exec_id)
        if query is not None and query.outcome is None:
            query = None
        if query is not None:
            query.polls_seen += 1
            state = query.settle(execution)
    answer = json.loads(_ATHENA_ORIGINALS["get_query_execution"](self))
    execution_json = answer["QueryExecution"]
    # moto writes null for members it has no value for (ResultConfiguration, QueryExecutionContext,
    # WorkGroup); AWS leaves them out, and reports the primary workgroup when none was named.
    for key in [k for k, v in execution_json.items() if v is None]:
        del execution_json[key]
    execution_json.setdefault("WorkGroup", "primary")
    # moto 5.2.5 reports Statistics with every counter 0; keep DataScannedInBytes there regardless.
    statistics = execution_json.setdefault("Statistics", {})
    statistics.setdefault("DataScannedInBytes", 0)
    if query is None:
        return json.dumps(answer)

    outcome = query.outcome
    status = execution_json["Status"]
    status["State"] = state
    if state in ATHENA_TERMINAL_STATES:
        status["CompletionDateTime"] = query.completed_at
        if outcome.data_scanned_bytes is not None:
            statistics.update(ATHENA_EMULATED_TIMINGS, DataScannedInBytes=outcome.data_scanned_bytes)
        if state == "SUCCEEDED":
            statistics["ResultReuseInformation"] = {"ReusedPreviousResult": outcome.reused_previous_result}
    else:
        status.pop("CompletionDateTime", None)
    if state in ("FAILED", "CANCELLED") and not query.cancelled_by_stop:
        status["StateChangeReason"] = outcome.reason
        status["AthenaError"] = {
            "ErrorCategory": outcome.error_category,
            "ErrorType": outcome.error_type,
            "Retryable": False,
            "ErrorMessage": outcome.reason,
        }
    return json.dumps(answer)


def stop_query_execution(self: AthenaResponse) -> Any:
    exec_id = self._get_param("QueryExecutionId")
    execution = athena_execution(self, exec_id)
    with ATHENA.lock:
        query = ATHENA.queries.get(exec_id)
        if query is not None:
            query.log["stopped"] = True
        if query is not None and query.outcome is not None:
            if query.state() not in ATHENA_TERMINAL_STATES:
                query.cancelled_by_stop = True
                query.settle(execution)
            return json.dumps({})
    if execution.status in ATHENA_TERMINAL_STATES:
        # AWS leaves a finished query as it is; moto 5.2.5 would turn even a SUCCEEDED one into
        # CANCELLED.
        return json.dumps({})
    return _ATHENA_ORIGINALS["stop_query_execution"](self)


def get_query_results(self: AthenaResponse) -> str:
    exec_id = self._get_param("QueryExecutionId")
    execution = athena_execution(self, exec_id)
    with ATHENA.lock:
        query = ATHENA.queries.get(exec_id)
        state = query.state() if query is not None and query.outcome is not None else execution.status
        computed = query.engine if query is not None else None
    # moto's own check (QueryStillRunning) says "has not yet finished" for FAILED and CANCELLED too.
    if state in ("FAILED", "CANCELLED"):
        raise athena_invalid_request(f"Query did not finish successfully. Final query state: {state}")
    if state != "SUCCEEDED":
        raise athena_invalid_request(f"Query has not yet finished. Current state: {state}")
    max_results = self._get_param("MaxResults", MAX_ATHENA_RESULTS_PAGE)
    if not is_int(max_results) or not 1 <= max_results <= MAX_ATHENA_RESULTS_PAGE:
        raise athena_invalid_request(f"MaxResults must be between 1 and {MAX_ATHENA_RESULTS_PAGE}")
    # moto 5.2.5 ignores MaxResults and NextToken and answers every row: page its answer here.
    # Whatever else moto answers (UpdateCount when it has one) stays as it is.
    if computed is not None:
        answer = computed.results_answer()
    else:
        answer = json.loads(_ATHENA_ORIGINALS["get_query_results"](self))
    rows = answer["ResultSet"]["Rows"]
    start = decode_results_token(self._get_param("NextToken"), exec_id, len(rows))
    end = start + max_results
    answer["ResultSet"]["Rows"] = rows[start:end]
    answer.pop("NextToken", None)
    if end < len(rows):
        answer["NextToken"] = encode_results_token(exec_id, end)
    return json.dumps(answer)


ATHENA_OVERRIDES: dict[str, Callable[[AthenaResponse], Any]] = {
    "start_query_execution": start_query_execution,
    "get_query_execution": get_query_execution,
    "stop_query_execution": stop_query_execution,
    "get_query_results": get_query_results,
}


def install_athena_extensions() -> None:
    if hasattr(AthenaResponse, "get_table_metadata"):
        raise RuntimeError("moto's AthenaResponse already has get_table_metadata; review the extension")
    AthenaResponse.get_table_metadata = get_table_metadata
    for name, method in ATHENA_OVERRIDES.items():
        original = AthenaResponse.__dict__.get(name)
        if original is None:
            raise RuntimeError(f"moto's AthenaResponse has no {name} of its own; review the override")
        _ATHENA_ORIGINALS[name] = original
        setattr(AthenaResponse, name, method)


# ---------------------------------------------------------------------------------------------
# Budgets: ShowFilterExpression and DescribeBudgets paging on top of moto's
# ---------------------------------------------------------------------------------------------

# DescribeBudgets pages at 100 by default and accepts 1 to 1000 (API model: MaxResultsDescribeBudgets).
DEFAULT_BUDGETS_PAGE = 100
MAX_BUDGETS_PAGE = 1000

# moto internals: BudgetsResponse dispatches like CostExplorerResponse (BaseResponse.call_action,
# snake-case method names). moto 5.2.5 keeps the Budget of CreateBudget as the dict it was sent
# (Budget.budget) and answers it back from Budget.to_dict(), adding CalculatedSpend (zeros) and
# CostTypes (AWS's defaults) when absent. So BudgetLimit, FilterExpression, CalculatedSpend,
# TimePeriod, Metrics and the rest come back as created. What it does not do, and the wrappers
# below add: hide FilterExpression unless ShowFilterExpression is true (AWS only returns it then),
# and page DescribeBudgets (moto ignores MaxResults/NextToken and writes "nextToken": null).
_BUDGETS_ORIGINALS: dict[str, Callable[[BudgetsResponse], Any]] = {}


def hide_filter_expression(response: BudgetsResponse, budget: dict[str, Any]) -> dict[str, Any]:
    if response._get_param("ShowFilterExpression") is not True:
        budget.pop("FilterExpression", None)
    return budget


def describe_budget(self: BudgetsResponse) -> str:
    answer = json.loads(_BUDGETS_ORIGINALS["describe_budget"](self))
    hide_filter_expression(self, answer["Budget"])
    return json.dumps(answer)


def describe_budgets(self: BudgetsResponse) -> str:
    max_results = self._get_param("MaxResults", DEFAULT_BUDGETS_PAGE)
    if not is_int(max_results) or not 1 <= max_results <= MAX_BUDGETS_PAGE:
        raise JsonRESTError("InvalidParameterException", f"MaxResults must be between 1 and {MAX_BUDGETS_PAGE}")
    answer = json.loads(_BUDGETS_ORIGINALS["describe_budgets"](self))
    budgets = [hide_filter_expression(self, b) for b in answer["Budgets"]]
    items, next_token = page(budgets, self._get_param("NextToken"), max_results, invalid_next_token)
    result: dict[str, Any] = {"Budgets": items}
    if next_token:
        result["NextToken"] = next_token
    return json.dumps(result)


# Budget actions (moto has none): CreateBudgetAction, DescribeBudgetActionsForBudget and
# DeleteBudgetAction with aws-sdk-budgets 1.130's shapes. Like AWS, an action needs an existing
# budget, an execution role ARN, a threshold, one to eleven subscribers and a definition; an
# APPLY_IAM_POLICY definition names a policy and at least one role, group or user. Kept per
# account and budget; any reset clears them.
BUDGET_ACTIONS: dict[tuple[str, str], list[dict[str, Any]]] = {}
_budget_actions_lock = threading.Lock()


def create_budget_action(self: BudgetsResponse) -> str:
    account, name = self._get_param("AccountId"), self._get_param("BudgetName")
    self.backend.describe_budget(account, name)  # NotFoundException for an unknown budget
    definition = self._get_param("Definition") or {}
    iam = definition.get("IamActionDefinition")
    if self._get_param("ActionType") == "APPLY_IAM_POLICY" and not (
            iam and iam.get("PolicyArn") and (iam.get("Roles") or iam.get("Groups") or iam.get("Users"))):
        raise JsonRESTError("InvalidParameterException",
                            "APPLY_IAM_POLICY needs IamActionDefinition with PolicyArn and roles, groups or users")
    subscribers = self._get_param("Subscribers") or []
    if not 1 <= len(subscribers) <= 11:
        raise JsonRESTError("InvalidParameterException", "an action needs 1 to 11 subscribers")
    if not str(self._get_param("ExecutionRoleArn") or "").startswith("arn:"):
        raise JsonRESTError("InvalidParameterException", "ExecutionRoleArn must be a role ARN")
    action = {
        "ActionId": str(uuid.uuid4()), "BudgetName": name,
        "NotificationType": self._get_param("NotificationType"), "ActionType": self._get_param("ActionType"),
        "ActionThreshold": self._get_param("ActionThreshold"), "Definition": definition,
        "ExecutionRoleArn": self._get_param("ExecutionRoleArn"), "ApprovalModel": self._get_param("ApprovalModel"),
        "Status": "STANDBY", "Subscribers": subscribers,
    }
    with _budget_actions_lock:
        BUDGET_ACTIONS.setdefault((account, name), []).append(action)
    return json.dumps({"AccountId": account, "BudgetName": name, "ActionId": action["ActionId"]})


def describe_budget_actions_for_budget(self: BudgetsResponse) -> str:
    account, name = self._get_param("AccountId"), self._get_param("BudgetName")
    self.backend.describe_budget(account, name)
    with _budget_actions_lock:
        actions = [dict(a) for a in BUDGET_ACTIONS.get((account, name), [])]
    return json.dumps({"Actions": actions})


def delete_budget_action(self: BudgetsResponse) -> str:
    account, name, action_id = (self._get_param("AccountId"), self._get_param("BudgetName"),
                                self._get_param("ActionId"))
    with _budget_actions_lock:
        actions = BUDGET_ACTIONS.get((account, name), [])
        found = next((a for a in actions if a["ActionId"] == action_id), None)
        if found is None:
            raise JsonRESTError("NotFoundException", f"action {action_id} of budget {name} does not exist")
        actions.remove(found)
    return json.dumps({"AccountId": account, "BudgetName": name, "Action": found})


BUDGETS_EXTENSIONS: dict[str, Callable[[BudgetsResponse], Any]] = {
    "create_budget_action": create_budget_action,
    "describe_budget_actions_for_budget": describe_budget_actions_for_budget,
    "delete_budget_action": delete_budget_action,
}


BUDGETS_OVERRIDES: dict[str, Callable[[BudgetsResponse], Any]] = {
    "describe_budget": describe_budget,
    "describe_budgets": describe_budgets,
}


def install_budgets_extensions() -> None:
    for name, method in BUDGETS_EXTENSIONS.items():
        if hasattr(BudgetsResponse, name):
            raise RuntimeError(f"moto's BudgetsResponse already has {name}; review the extension")
        setattr(BudgetsResponse, name, method)
    for name, method in BUDGETS_OVERRIDES.items():
        original = BudgetsResponse.__dict__.get(name)
        if original is None:
            raise RuntimeError(f"moto's BudgetsResponse has no {name} of its own; review the override")
        _BUDGETS_ORIGINALS[name] = original
        setattr(BudgetsResponse, name, method)


# ---------------------------------------------------------------------------------------------
# AWS Price List (service AWSPriceListService): GetProducts and friends, served by the emulator
# ---------------------------------------------------------------------------------------------

# moto 5.2.5 has no Pricing backend at all: its dispatcher finds no app for the "pricing" signing
# name and answers HTTP 500. EmulatorMiddleware therefore answers every request whose X-Amz-Target
# starts with "AWSPriceListService." itself, before moto, from PRICING below.

PRICE_LIST_TARGET_PREFIX = "AWSPriceListService"
PRICE_LIST_FORMAT = "aws_v1"
# GetProducts, DescribeServices and GetAttributeValues page at 100 at most (API model: BoxedInteger
# 1..100); 100 is also what the SDKs get without MaxResults.
MAX_PRICE_LIST_PAGE = 100
PRICE_FILTER_TYPES = ("TERM_MATCH", "EQUALS", "CONTAINS", "ANY_OF", "NONE_OF")

# Fixed metadata of the default catalog: one publication, AWS's On-Demand offer term and rate codes.
PRICE_LIST_VERSION = "20261101000000"
PRICE_LIST_PUBLICATION_DATE = "2026-11-01T00:00:00Z"
PRICE_LIST_EFFECTIVE_DATE = "2026-11-01T00:00:00Z"
ON_DEMAND_OFFER_TERM_CODE = "JRTCKXETXF"
ON_DEMAND_RATE_CODE = "6YS6EN2CT7"
# regionCode -> (billing prefix of usage types, location)
PRICE_LIST_REGIONS = {
    "us-east-1": ("USE1", "US East (N. Virginia)"),
    "us-west-2": ("USW2", "US West (Oregon)"),
}

# AmazonBedrock (first-party and open models): USD per 1K tokens, unit "1K tokens".
# (model attribute, provider attribute, usage-type slug, input price, output price or None)
BEDROCK_FIRST_PARTY_PRICES = [
    ("Nova Micro", "Amazon", "NovaMicro", "0.000035", "0.00014"),
    ("Nova Lite", "Amazon", "NovaLite", "0.00006", "0.00024"),
    ("Nova Pro", "Amazon", "NovaPro", "0.0008", "0.0032"),
    ("Llama 3.3 70B", "Meta", "Llama3-3-70B", "0.00072", "0.00072"),
    ("Titan Text Embeddings V2", "Amazon", "TitanEmbeddingV2-Text", "0.00002", None),  # input only
]

# Inference tiers of first-party models: (usage-type suffix, serviceTier attribute, factor of the
# standard price). Batch and flex at half the on-demand price, priority at +75% (Amazon Bedrock
# pricing page); only the models listed in TIERED_MODELS have them.
BEDROCK_TIERS = [("-batch", "Batch", "0.5"), ("-flex", "Flex", "0.5"), ("-priority", "Priority", "1.75")]
TIERED_MODELS = {"Nova Lite", "Nova Pro"}

# AmazonBedrockFoundationModels (Anthropic through AWS Marketplace): USD per 1M tokens of the
# global cross-region profile; the in-region/geo usage types cost 10% more, as in AWS's price files.
# (model attribute, input, output, cache read, cache write (5 min), cache write (1 h))
BEDROCK_MARKETPLACE_PRICES = [
    ("Claude Sonnet 4.6", "3", "15", "0.30", "3.75", "6"),
    ("Claude Haiku 4.5", "1", "5", "0.10", "1.25", "2"),
    ("Claude Opus 4.6", "5", "25", "0.50", "6.25", "10"),
]
# Marketplace rows that carry no `model` attribute (only the service name says which model), as
# some of AWS's AmazonBedrockFoundationModels rows do.
MARKETPLACE_WITHOUT_MODEL = {"Claude Opus 4.6"}
MARKETPLACE_REGIONAL_PREMIUM = Decimal("1.1")
MARKETPLACE_UNIT = "1M tokens"
# usage-type metric -> the dimension name in the price description, per token kind
MARKETPLACE_METRICS = [
    ("InputTokenCount", "Input Tokens"),
    ("OutputTokenCount", "Response Tokens"),
    ("CacheReadInputTokenCount", "Cache Read Input Tokens"),
    ("CacheWriteInputTokenCount", "Cache Write Input Tokens"),
    ("CacheWrite1hInputTokenCount", "Cache Write 1h Input Tokens"),
]


def usd(price: Decimal) -> str:
    """A Price List price: ten decimals, as in "0.0080000000"."""
    return f"{price:.10f}"


def price_sku(service_code: str, attributes: dict[str, str]) -> str:
    # A stable 16-character SKU like AWS's ("3G679R3Y8YSQSJTA"), derived from the product's
    # attributes (Marketplace usage types repeat across models, so the usage type alone is not enough).
    digest = hashlib.sha256(json.dumps([service_code, attributes], sort_keys=True).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def price_document(
    service_code: str, product_family: str, attributes: dict[str, str], unit: str, price: Decimal, description: str
) -> dict[str, Any]:
    """One GetProducts item (before it is serialised to a string) in AWS's aws_v1 shape."""
    sku = price_sku(service_code, attributes)
    offer = f"{sku}.{ON_DEMAND_OFFER_TERM_CODE}"
    rate = f"{offer}.{ON_DEMAND_RATE_CODE}"
    return {
        "product": {"productFamily": product_family, "attributes": attributes, "sku": sku},
        "serviceCode": service_code,
        "terms": {
            "OnDemand": {
                offer: {
                    "priceDimensions": {
                        rate: {
                            "unit": unit,
                            "endRange": "Inf",
                            "description": description,
                            "appliesTo": [],
                            "rateCode": rate,
                            "beginRange": "0",
                            "pricePerUnit": {"USD": usd(price)},
                        }
                    },
                    "sku": sku,
                    "effectiveDate": PRICE_LIST_EFFECTIVE_DATE,
                    "offerTermCode": ON_DEMAND_OFFER_TERM_CODE,
                    "termAttributes": {},
                }
            }
        },
        "version": PRICE_LIST_VERSION,
        "publicationDate": PRICE_LIST_PUBLICATION_DATE,
    }


def default_price_catalog() -> dict[str, list[dict[str, Any]]]:
    """The catalog GetProducts serves until POST /_emulator/pricing/products replaces it."""
    first_party, marketplace = [], []
    for region, (prefix, location) in PRICE_LIST_REGIONS.items():
        for model, provider, slug, input_price, output_price in BEDROCK_FIRST_PARTY_PRICES:
            for direction, price in (("input", input_price), ("output", output_price)):
                if price is None:
                    continue
                usage_type = f"{prefix}-{slug}-{direction}-tokens"
                attributes = {
                    # Attribute set and spelling of a real AmazonBedrock item (aws/aws-cli#9567).
                    "regionCode": region,
                    "inferenceType": f"{direction.capitalize()} tokens",
                    "servicecode": "AmazonBedrock",
                    "feature": "On-demand Inference",
                    "provider": provider,
                    "usagetype": usage_type,
                    "locationType": "AWS Region",
                    "location": location,
                    "model": model,
                    "servicename": "Amazon Bedrock",
                    "operation": "",
                }
                amount = Decimal(price)
                shown = f"{amount:.5f}" if amount == round(amount, 5) else f"{amount.normalize():f}"
                description = f"${shown} per 1K tokens for {slug}-{direction}-tokens in {location}"
                first_party.append(
                    price_document("AmazonBedrock", "Amazon Bedrock", attributes, "1K tokens", amount, description)
                )
                if model not in TIERED_MODELS:
                    continue
                for suffix, tier, factor in BEDROCK_TIERS:
                    tiered = dict(attributes, usagetype=f"{usage_type}{suffix}", serviceTier=tier)
                    tier_amount = amount * Decimal(factor)
                    first_party.append(
                        price_document(
                            "AmazonBedrock", "Amazon Bedrock", tiered, "1K tokens", tier_amount,
                            f"${tier_amount.normalize():f} per 1K tokens for {slug}-{direction}-tokens{suffix} in {location}",
                        )
                    )
        for model, *prices in BEDROCK_MARKETPLACE_PRICES:
            for (metric, dimension), global_price in zip(MARKETPLACE_METRICS, prices):
                for scope, suffix, factor in (
                    ("Regional", "", MARKETPLACE_REGIONAL_PREMIUM),
                    ("Global", "_Global", Decimal(1)),
                ):
                    usage_type = f"{prefix}-MP:{prefix}_{metric}{suffix}-Units"
                    attributes = {
                        "regionCode": region,
                        "servicecode": "AmazonBedrockFoundationModels",
                        "usagetype": usage_type,
                        "locationType": "AWS Region",
                        "location": location,
                        "model": model,
                        "servicename": f"{model} (Amazon Bedrock Edition)",
                        "operation": "Usage",
                    }
                    if model in MARKETPLACE_WITHOUT_MODEL:
                        del attributes["model"]
                    # Marketplace price descriptions name the dimension after the last "|".
                    description = f"AWS Marketplace software usage|{region}|Million {dimension} {scope}"
                    marketplace.append(
                        price_document(
                            "AmazonBedrockFoundationModels", "Machine Learning", attributes, MARKETPLACE_UNIT,
                            Decimal(global_price) * factor, description,
                        )
                    )
    return {"AmazonBedrock": first_party, "AmazonBedrockFoundationModels": marketplace}


class PricingCatalog:
    """Products per service code; the default catalog until seeded, restored by any reset."""

    def __init__(self) -> None:
        # werkzeug serves each request on its own thread; hold the lock to touch `products`.
        self.lock = threading.Lock()
        self.products = default_price_catalog()

    def restore_defaults(self) -> None:
        with self.lock:
            self.products = default_price_catalog()


PRICING = PricingCatalog()


def seed_price_products(body: dict[str, Any]) -> None:
    catalog: dict[str, list[dict[str, Any]]] = {}
    for service_code, docs in body.items():
        if not isinstance(docs, list):
            raise BadRequest(f"{service_code}: expected a list of product documents")
        parsed = []
        for doc in docs:
            if isinstance(doc, str):  # a PriceList entry as GetProducts sends it
                try:
                    doc = json.loads(doc)
                except ValueError as err:
                    raise BadRequest(f"{service_code}: a product string is not JSON: {err}") from err
            if not isinstance(doc, dict) or not isinstance((doc.get("product") or {}).get("attributes"), dict):
                raise BadRequest(f'{service_code}: each product document needs "product": {{"attributes": {{...}}}}')
            doc = dict(doc)
            doc.setdefault("serviceCode", service_code)
            parsed.append(doc)
        catalog[service_code] = parsed
    with PRICING.lock:
        PRICING.products = catalog


class PriceListError(Exception):
    """An AWS error answer of the Price List service (JSON 1.1, HTTP 400)."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


def invalid_parameter(message: str) -> PriceListError:
    return PriceListError("InvalidParameterException", f"Input Parameters are invalid. {message}")


def price_field(doc: dict[str, Any], name: str) -> str | None:
    """A product's value for a filter Field: ServiceCode, productFamily, sku or an attribute.

    Attribute names match case-insensitively (a documented choice: the API reference does not say).
    """
    product = doc.get("product") or {}
    lowered = name.lower()
    if lowered == "servicecode":
        return doc.get("serviceCode")
    if lowered in ("productfamily", "sku") and name not in product.get("attributes", {}):
        return product.get("productFamily" if lowered == "productfamily" else "sku")
    for key, value in product.get("attributes", {}).items():
        if key.lower() == lowered:
            return value
    return None


def price_filter_matches(doc: dict[str, Any], spec: dict[str, str]) -> bool:
    kind, value = spec["Type"], spec["Value"]
    actual = price_field(doc, spec["Field"])
    if kind == "NONE_OF":
        return actual is None or actual.lower() not in {v.strip().lower() for v in value.split(",")}
    if actual is None:
        return False
    if kind == "EQUALS":
        return actual == value
    if kind == "TERM_MATCH":
        return actual.lower() == value.lower()
    if kind == "CONTAINS":
        return value.lower() in actual.lower()
    return actual.lower() in {v.strip().lower() for v in value.split(",")}  # ANY_OF


def price_max_results(params: dict[str, Any]) -> int:
    max_results = params.get("MaxResults", MAX_PRICE_LIST_PAGE)
    if not is_int(max_results) or not 1 <= max_results <= MAX_PRICE_LIST_PAGE:
        raise invalid_parameter(f"MaxResults must be between 1 and {MAX_PRICE_LIST_PAGE}")
    return max_results


def price_page(items: list[Any], params: dict[str, Any], scope: str) -> tuple[list[Any], str | None]:
    """One page; tokens are opaque, minted here, and only valid for the same `scope`."""
    max_results = price_max_results(params)
    token, start = params.get("NextToken"), 0
    if token is not None:
        try:
            kind, token_scope, value = base64.urlsafe_b64decode(str(token).encode()).decode().split("\x00")
            start = int(value)
        except ValueError as err:
            raise PriceListError("InvalidNextTokenException", "The NextToken is not valid") from err
        if kind != "pricing" or token_scope != scope or not 0 < start < len(items):
            raise PriceListError("InvalidNextTokenException", "The NextToken is not valid")
    end = start + max_results
    next_token = None
    if end < len(items):
        next_token = base64.urlsafe_b64encode(f"pricing\x00{scope}\x00{end}".encode()).decode()
    return items[start:end], next_token


def service_products(service_code: Any) -> list[dict[str, Any]]:
    if not isinstance(service_code, str) or not service_code:
        raise invalid_parameter("serviceCode cannot be null or empty")
    with PRICING.lock:
        docs = PRICING.products.get(service_code)
    if docs is None:
        raise PriceListError("NotFoundException", f"Requested service {service_code} not found")
    return docs


def check_format_version(params: dict[str, Any]) -> None:
    if params.get("FormatVersion", PRICE_LIST_FORMAT) != PRICE_LIST_FORMAT:
        raise invalid_parameter(f"FormatVersion must be {PRICE_LIST_FORMAT}")


def get_products(params: dict[str, Any]) -> dict[str, Any]:
    check_format_version(params)
    filters = params.get("Filters") or []
    if not isinstance(filters, list):
        raise invalid_parameter("Filters must be a list")
    for spec in filters:
        if not isinstance(spec, dict) or spec.get("Type") not in PRICE_FILTER_TYPES:
            raise invalid_parameter(f"Filter Type must be one of {', '.join(PRICE_FILTER_TYPES)}")
        if not isinstance(spec.get("Field"), str) or not spec["Field"] or not isinstance(spec.get("Value"), str):
            raise invalid_parameter("each filter needs a Field and a Value")
    docs = service_products(params.get("ServiceCode"))
    matched = [doc for doc in docs if all(price_filter_matches(doc, spec) for spec in filters)]
    # The token is bound to the service code and the filters it was minted for.
    scope = hashlib.sha256(json.dumps([params["ServiceCode"], filters], sort_keys=True).encode()).hexdigest()[:16]
    items, next_token = price_page(matched, params, scope)
    answer: dict[str, Any] = {
        "FormatVersion": PRICE_LIST_FORMAT,
        # Each entry is a JSON document serialised to a string, as AWS sends it.
        "PriceList": [json.dumps(doc, separators=(",", ":")) for doc in items],
    }
    if next_token:
        answer["NextToken"] = next_token
    return answer


def describe_price_services(params: dict[str, Any]) -> dict[str, Any]:
    check_format_version(params)
    code = params.get("ServiceCode")
    with PRICING.lock:
        catalog = {c: list(docs) for c, docs in PRICING.products.items()}
    if code:
        catalog = {code: service_products(code)}
    services = [
        {
            "ServiceCode": service_code,
            "AttributeNames": sorted({k for d in docs for k in (d.get("product") or {}).get("attributes", {})}),
        }
        for service_code, docs in catalog.items()
    ]
    items, next_token = price_page(services, params, "services")
    answer: dict[str, Any] = {"Services": items, "FormatVersion": PRICE_LIST_FORMAT}
    if next_token:
        answer["NextToken"] = next_token
    return answer


def get_price_attribute_values(params: dict[str, Any]) -> dict[str, Any]:
    docs = service_products(params.get("ServiceCode"))
    name = params.get("AttributeName")
    if not isinstance(name, str) or not name:
        raise invalid_parameter("attributeName cannot be null or empty")
    values = sorted({v for d in docs if (v := price_field(d, name)) is not None})
    if not values:
        raise PriceListError("NotFoundException", f"Attribute {name} not found for service {params['ServiceCode']}")
    items, next_token = price_page([{"Value": v} for v in values], params, f"{params['ServiceCode']}/{name}")
    answer: dict[str, Any] = {"AttributeValues": items}
    if next_token:
        answer["NextToken"] = next_token
    return answer


PRICE_LIST_OPERATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "GetProducts": get_products,
    "DescribeServices": describe_price_services,
    "GetAttributeValues": get_price_attribute_values,
}


def aws_json_response(value: Any, status: int = 200, error_type: str | None = None) -> Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return Response(json.dumps(value), status, headers, content_type=AWS_JSON_1_1)


# ---------------------------------------------------------------------------------------------
# Data Exports (bcm-data-exports): CreateExport, GetExport, ListExports, UpdateExport, DeleteExport
# ---------------------------------------------------------------------------------------------

# moto has no Data Exports service. Shapes from aws-sdk-bcmdataexports 1.120 (awsJson1_1,
# X-Amz-Target AWSBillingAndCostManagementDataExports.<Operation>): an Export is {Name,
# Description, DataQuery: {QueryStatement, TableConfigurations}, DestinationConfigurations:
# {S3Destination: {S3Bucket, S3Prefix, S3Region, S3OutputConfigurations: {OutputType, Format,
# Compression, Overwrite}}}, RefreshCadence: {Frequency}}; ARNs
# arn:aws:bcm-data-exports:us-east-1:<account>:export/<name>-<id>. CreateExport checks, like AWS,
# that the bucket exists and its policy lets bcm-data-exports.amazonaws.com put objects, and that
# the table properties are the CUR 2.0 table's. GET /_emulator/data-exports lists the exports.
DATA_EXPORTS_TARGET_PREFIX = "AWSBillingAndCostManagementDataExports"
CUR2_TABLE_PROPERTIES = {
    "BILLING_VIEW_ARN", "INCLUDE_CAPACITY_RESERVATION_DATA", "INCLUDE_IAM_PRINCIPAL_DATA",
    "INCLUDE_MANUAL_DISCOUNT_COMPATIBILITY", "INCLUDE_RESOURCES", "INCLUDE_SPLIT_COST_ALLOCATION_DATA",
    "TIME_GRANULARITY",
}


class DataExports:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.exports: dict[str, dict[str, Any]] = {}

    def clear(self) -> None:
        with self.lock:
            self.exports.clear()


DATA_EXPORTS = DataExports()


def data_exports_error(error_type: str, message: str) -> Response:
    return aws_json_response({"__type": error_type, "Message": message}, 400, error_type)


def check_export(export: Any) -> str | None:
    """Why AWS would refuse this export, or None."""
    if not isinstance(export, dict) or not export.get("Name"):
        return "Export.Name is required"
    query = (export.get("DataQuery") or {})
    tables = query.get("TableConfigurations") or {}
    for table, props in tables.items():
        if table != "COST_AND_USAGE_REPORT":
            return f"Table {table} is not emulated"
        for key in props:
            if key not in CUR2_TABLE_PROPERTIES:
                return f"Table property {key} provided but table has no such property"
    s3 = ((export.get("DestinationConfigurations") or {}).get("S3Destination") or {})
    bucket = s3.get("S3Bucket", "")
    try:
        stored = s3_backends[DEFAULT_ACCOUNT_ID]["global"].get_bucket(bucket)
    except Exception:  # moto raises MissingBucket
        return f"S3 bucket {bucket} does not exist"
    policy = stored.policy.decode() if isinstance(stored.policy, bytes) else (stored.policy or "")
    if "bcm-data-exports.amazonaws.com" not in policy:
        return f"the bucket policy of {bucket} does not let bcm-data-exports.amazonaws.com write (s3:PutObject)"
    return None


def serve_data_exports(operation: str, body: bytes) -> Response:
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return data_exports_error("ValidationException", "body is not JSON")
    with DATA_EXPORTS.lock:
        if operation == "CreateExport":
            export = params.get("Export")
            why = check_export(export)
            if why:
                return data_exports_error("ValidationException", why)
            if any(e["Export"]["Name"] == export["Name"] for e in DATA_EXPORTS.exports.values()):
                return data_exports_error("ValidationException", f"an export named {export['Name']} exists")
            arn = f"arn:aws:bcm-data-exports:us-east-1:{DEFAULT_ACCOUNT_ID}:export/{export['Name']}-{uuid.uuid4()}"
            DATA_EXPORTS.exports[arn] = {"Export": dict(export, ExportArn=arn), "CreatedAt": time.time(),
                                         "Tags": params.get("ResourceTags", [])}
            return aws_json_response({"ExportArn": arn})
        if operation == "ListExports":
            refs = [{"ExportArn": a, "ExportName": e["Export"]["Name"],
                     "ExportStatus": {"StatusCode": "HEALTHY"}} for a, e in DATA_EXPORTS.exports.items()]
            return aws_json_response({"Exports": refs})
        arn = params.get("ExportArn", "")
        found = DATA_EXPORTS.exports.get(arn)
        if found is None:
            return data_exports_error("ResourceNotFoundException", f"export {arn} not found")
        if operation == "GetExport":
            return aws_json_response({"Export": found["Export"], "ExportStatus": {"StatusCode": "HEALTHY"}})
        if operation == "UpdateExport":
            export = params.get("Export")
            why = check_export(export)
            if why:
                return data_exports_error("ValidationException", why)
            found["Export"] = dict(export, ExportArn=arn)
            return aws_json_response({"ExportArn": arn})
        if operation == "DeleteExport":
            del DATA_EXPORTS.exports[arn]
            return aws_json_response({"ExportArn": arn})
    return data_exports_error("UnknownOperationException", f"{DATA_EXPORTS_TARGET_PREFIX}.{operation} is not emulated")


def serve_price_list(operation: str, body: bytes) -> Response:
    handler = PRICE_LIST_OPERATIONS.get(operation)
    if handler is None:
        # ListPriceLists and GetPriceListFileUrl (bulk files) are not emulated.
        message = f"{PRICE_LIST_TARGET_PREFIX}.{operation} is not emulated"
        return aws_json_response({"__type": "UnknownOperationException", "Message": message}, 400,
                                 "UnknownOperationException")
    try:
        params = json.loads(body or b"{}")
        if not isinstance(params, dict):
            raise ValueError("not an object")
    except ValueError:
        return aws_json_response({"__type": "SerializationException", "Message": "body is not a JSON object"}, 400,
                                 "SerializationException")
    try:
        return aws_json_response(handler(params))
    except PriceListError as err:
        return aws_json_response({"__type": err.error_type, "Message": str(err)}, 400, err.error_type)


# ---------------------------------------------------------------------------------------------
# CloudWatch Logs Insights: stats queries (insights_engine) over moto's log events
# ---------------------------------------------------------------------------------------------

# moto 5.2.5's own query engine has no `stats`; StartQuery with a stats query, and the
# GetQueryResults/StopQuery of such a query, are answered here. Other queries go to moto.
LOGS_TARGET_PREFIX = "Logs_20140328"
# Polls that see "Running" before "Complete", so a client's polling is exercised.
INSIGHTS_RUNNING_POLLS = 1


class InsightsQueries:
    """Queries started here, by id; GET /_emulator/logs/queries lists them (any reset clears)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queries: dict[str, dict[str, Any]] = {}

    def clear(self) -> None:
        with self.lock:
            self.queries.clear()

    def log(self) -> list[dict[str, Any]]:
        with self.lock:
            return [{k: v for k, v in q.items() if k != "results"} | {"id": i} for i, q in self.queries.items()]


INSIGHTS = InsightsQueries()


def logs_error(error_type: str, message: str) -> Response:
    return aws_json_response({"__type": error_type, "message": message}, 400, error_type)


def serve_insights(operation: str, body: bytes, region: str) -> Response | None:
    """Our answer to a Logs Insights call, or None to let moto answer."""
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return None
    if operation == "StartQuery":
        text = params.get("queryString", "")
        if "stats " not in text:
            return None
        names = params.get("logGroupNames") or ([params["logGroupName"]] if params.get("logGroupName") else [])
        backend = logs_backends[DEFAULT_ACCOUNT_ID][region or "us-east-1"]
        events: list[tuple[int, str]] = []
        for name in names:
            group = backend.groups.get(name)
            if group is None:
                return logs_error("ResourceNotFoundException", "The specified log group does not exist.")
            for stream in group.streams.values():
                events.extend((e.timestamp, e.message) for e in stream.events)
        try:
            query = insights_engine.parse(text)
        except insights_engine.InsightsError as err:
            return logs_error("MalformedQueryException", str(err))
        rows, statistics = insights_engine.run(
            query, events, int(params.get("startTime", 0)), int(params.get("endTime", 0)),
            int(params.get("limit") or 10_000))
        query_id = str(uuid.uuid4())
        with INSIGHTS.lock:
            INSIGHTS.queries[query_id] = {
                "groups": names, "query": text, "start": params.get("startTime"), "end": params.get("endTime"),
                "status": "Running", "polls": 0, "results": rows, "statistics": statistics, "rows": len(rows),
            }
        return aws_json_response({"queryId": query_id})
    query_id = params.get("queryId", "")
    with INSIGHTS.lock:
        q = INSIGHTS.queries.get(query_id)
        if q is None:
            return None
        if operation == "StopQuery":
            stopped = q["status"] == "Running"
            if stopped:
                q["status"] = "Cancelled"
            return aws_json_response({"success": stopped})
        if operation != "GetQueryResults":
            return None
        q["polls"] += 1
        if q["status"] == "Running" and q["polls"] > INSIGHTS_RUNNING_POLLS:
            q["status"] = "Complete"
        done = q["status"] == "Complete"
        return aws_json_response({
            "status": q["status"],
            "results": q["results"] if done else [],
            "statistics": q["statistics"] if done else {"recordsMatched": 0.0, "recordsScanned": 0.0,
                                                         "bytesScanned": 0.0},
        })


# ---------------------------------------------------------------------------------------------
# Bedrock: GetInferenceProfile for application inference profiles (moto 5.2.5 has none)
# ---------------------------------------------------------------------------------------------


class InferenceProfiles:
    """Profiles seeded with POST /_emulator/bedrock/inference-profiles ({"profiles": [{"arn",
    "name", "models": [model ARNs], "tags": {key: value}}]}); GET /inference-profiles/{id or ARN} answers them like Bedrock's
    GetInferenceProfile (API reference: inferenceProfileName, inferenceProfileArn,
    inferenceProfileId, models[].modelArn, status, type). Any reset clears them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.profiles: dict[str, dict[str, Any]] = {}

    def clear(self) -> None:
        with self.lock:
            self.profiles.clear()


INFERENCE_PROFILES = InferenceProfiles()
INFERENCE_PROFILE_PATH = "/inference-profiles/"
# bedrock ListTagsForResource (aws-sdk-bedrock 1.166: POST /listTagsForResource, body
# {"resourceARN": ...}, answer {"tags": [{"key", "value"}]}): seeded profiles' "tags" answer here.
LIST_TAGS_PATH = "/listTagsForResource"


def seed_inference_profiles(body: Any) -> None:
    if not isinstance(body, list):
        raise BadRequest('expected a list of {"arn", "name", "models": [...]}')
    with INFERENCE_PROFILES.lock:
        for p in body:
            if not isinstance(p, dict) or not isinstance(p.get("arn"), str) or not isinstance(p.get("models"), list):
                raise BadRequest('each profile needs "arn" and "models"')
            INFERENCE_PROFILES.profiles[p["arn"]] = p


def serve_profile_tags(body: bytes) -> Response | None:
    """A seeded profile's tags, or None to let moto answer (its own resources)."""
    try:
        arn = json.loads(body or b"{}").get("resourceARN", "")
    except (ValueError, AttributeError):
        return None
    with INFERENCE_PROFILES.lock:
        found = INFERENCE_PROFILES.profiles.get(arn)
    if found is None:
        return None
    tags = [{"key": k, "value": v} for k, v in sorted((found.get("tags") or {}).items())]
    return Response(json.dumps({"tags": tags}), 200, {"x-amzn-RequestId": str(uuid.uuid4())},
                    content_type="application/json")


def serve_inference_profile(path: str) -> Response:
    from urllib.parse import unquote

    ident = unquote(path[len(INFERENCE_PROFILE_PATH):])
    with INFERENCE_PROFILES.lock:
        found = INFERENCE_PROFILES.profiles.get(ident) or next(
            (p for p in INFERENCE_PROFILES.profiles.values() if p["arn"].rsplit("/", 1)[-1] == ident), None)
    if found is None:
        return Response(json.dumps({"message": f"inference profile {ident} not found"}), 404,
                        {"x-amzn-ErrorType": "ResourceNotFoundException"}, content_type="application/json")
    answer = {
        "inferenceProfileName": found.get("name", found["arn"].rsplit("/", 1)[-1]),
        "inferenceProfileArn": found["arn"],
        "inferenceProfileId": found["arn"].rsplit("/", 1)[-1],
        "models": [{"modelArn": m} for m in found["models"]],
        "status": "ACTIVE",
        "type": "APPLICATION",
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
    }
    return Response(json.dumps(answer), 200, {"x-amzn-RequestId": str(uuid.uuid4())},
                    content_type="application/json")


# ---------------------------------------------------------------------------------------------
# IAM: GetAccountAuthorizationDetails pages
# ---------------------------------------------------------------------------------------------

# IAM's default and largest page (API reference: MaxItems 1-1000, default 100).
IAM_DEFAULT_MAX_ITEMS = 100
IAM_MAX_ITEMS = 1000


class IamPaging:
    """A cap on GetAccountAuthorizationDetails pages (``/_emulator/iam/page-cap``), so tests can
    make a client that asks for 1000 items page through a handful; any reset clears it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cap: int | None = None


IAM_PAGING = IamPaging()


def get_account_authorization_details(self: IamResponse) -> ActionResult:
    """moto 5.2.5 answers every entity in one page and ignores MaxItems and Marker; this pages
    like IAM: users, groups, roles, then policies, ``MaxItems`` per page (capped by the page cap),
    ``IsTruncated`` and an opaque ``Marker`` while more remain."""
    filter_param = self._get_param("Filter", [])
    max_items = self._get_int_param("MaxItems", IAM_DEFAULT_MAX_ITEMS)
    if not 1 <= max_items <= IAM_MAX_ITEMS:
        raise IamInvalidInput(f"MaxItems must be between 1 and {IAM_MAX_ITEMS}")
    with IAM_PAGING.lock:
        if IAM_PAGING.cap is not None:
            max_items = min(max_items, IAM_PAGING.cap)
    offset = decode_offset(
        self._get_param("Marker"), lambda: IamInvalidInput("Invalid Marker")
    )
    details = self.backend.get_account_authorization_details(filter_param)
    lists = [
        ("UserDetailList", "users"),
        ("GroupDetailList", "groups"),
        ("RoleDetailList", "roles"),
        ("Policies", "managed_policies"),
    ]
    items = [(name, item) for name, key in lists for item in details[key]]
    if offset > len(items):
        raise IamInvalidInput("Invalid Marker")
    chunk = items[offset : offset + max_items]
    result: dict[str, Any] = {name: [item for n, item in chunk if n == name] for name, _ in lists}
    end = offset + len(chunk)
    result["IsTruncated"] = end < len(items)
    if end < len(items):
        result["Marker"] = encode_offset(end)
    return ActionResult(result)


def install_iam_extensions() -> None:
    if "get_account_authorization_details" not in IamResponse.__dict__:
        raise RuntimeError("moto's IamResponse has no get_account_authorization_details; review the override")
    IamResponse.get_account_authorization_details = get_account_authorization_details


# ---------------------------------------------------------------------------------------------
# Middleware: counters, faults, latency
# ---------------------------------------------------------------------------------------------


@dataclass
class Fault:
    status: int  # 0: no error, only the delay, then moto answers
    error_type: str | None
    message: str
    body: str | None  # a raw answer body, sent as is
    content_type: str | None
    delay_ms: int
    times: int
    after: int = 0  # let this many matching calls pass before the fault applies

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Fault:
        body, error_type = spec.get("body"), spec.get("error_type")
        status = spec.get("status", 200 if body is not None else 400 if error_type else 0)
        fault = cls(
            status=status,
            error_type=error_type,
            message=spec.get("message", ""),
            body=body,
            content_type=spec.get("content_type"),
            delay_ms=spec.get("delay_ms", 0),
            times=spec.get("times", 1),
            after=spec.get("after", 0),
        )
        if not all(isinstance(n, int) for n in (fault.status, fault.times, fault.delay_ms, fault.after)):
            raise BadRequest("status, times, delay_ms and after must be integers")
        if fault.times < 1 or fault.delay_ms < 0 or fault.after < 0:
            raise BadRequest("times must be >= 1, delay_ms and after >= 0")
        if fault.status == 0 and (body is not None or error_type):
            raise BadRequest("status 0 (delay only) cannot carry a body or an error_type")
        if fault.status != 0 and body is None and not error_type:
            raise BadRequest("a fault needs an error_type or a body (or status 0 with delay_ms)")
        if body is not None and error_type:
            raise BadRequest("give either error_type or body, not both")
        return fault


@dataclass
class AwsCall:
    operation: str
    protocol: str  # "json" (X-Amz-Target), "query" (Action parameter) or "rest"
    request_content_type: str
    target_prefix: str | None = None  # JSON protocol: the part of X-Amz-Target before the dot


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back so that moto can read it again."""
    body = Request(environ).get_data()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    # The body is now whole and sized: chunked framing no longer applies.
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["wsgi.input_terminated"] = False
    return body


def classify(environ: dict[str, Any]) -> AwsCall:
    """Name the AWS operation of a request, the way the SDKs encode it."""
    content_type = environ.get("CONTENT_TYPE", "")
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        prefix, _, operation = target.rpartition(".")
        return AwsCall(operation, "json", content_type, prefix)
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if not action and content_type.startswith("application/x-www-form-urlencoded"):
        action = parse_qs(read_body(environ).decode("utf-8", "replace")).get("Action")
    if action:
        return AwsCall(action[0], "query", content_type)
    return AwsCall(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '/')}", "rest", content_type)


# The signing log keeps the first calls after a reset; a test needs a handful.
MAX_SIGNED_LOG = 10_000
# The request log keeps the last bodies of each JSON-protocol operation.
MAX_REQUEST_LOG = 1_000


def signing_scope(authorization: str) -> dict[str, str]:
    """Access key, region and service of a SigV4 ``Authorization`` header (empty strings when the
    request is unsigned or signed otherwise): ``AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/
    <service>/aws4_request, SignedHeaders=..., Signature=...``."""
    _, _, rest = authorization.partition("Credential=")
    parts = rest.split(",")[0].strip().split("/")
    if len(parts) != 5:
        return {"access_key_id": "", "region": "", "service": ""}
    return {"access_key_id": parts[0], "region": parts[2], "service": parts[3]}


def fault_response(call: AwsCall, fault: Fault) -> Response:
    request_id = str(uuid.uuid4())
    if call.protocol == "query":
        content_type = "text/xml"
    elif call.protocol == "json":
        # Echo the request's AWS JSON version (1.0 or 1.1); Cost Explorer uses 1.1.
        json_type = call.request_content_type.split(";")[0]
        content_type = json_type if json_type.startswith("application/x-amz-json-") else AWS_JSON_1_1
    else:
        content_type = "application/json"
    headers = {"x-amzn-RequestId": request_id}
    if fault.body is not None:
        return Response(fault.body, fault.status, headers, content_type=fault.content_type or content_type)
    if call.protocol == "query":
        kind = "Sender" if fault.status < 500 else "Receiver"
        body = (
            "<ErrorResponse><Error>"
            f"<Type>{kind}</Type><Code>{escape(fault.error_type)}</Code><Message>{escape(fault.message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    else:
        headers["x-amzn-ErrorType"] = fault.error_type
        body = json.dumps({"__type": fault.error_type, "message": fault.message})
    return Response(body, fault.status, headers, content_type=content_type)


class EmulatorMiddleware:
    """WSGI app in front of moto: serves /_emulator/*, counts, faults and delays AWS calls."""

    def __init__(self, moto_app: Callable[..., Iterable[bytes]]):
        self.moto_app = moto_app
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.latency_ms = 0
        self.signed: list[dict[str, str]] = []
        # JSON-protocol request bodies per operation (the last MAX_REQUEST_LOG of each), so a
        # test can see exactly what was asked: e.g. the Filter of a GetCostAndUsage.
        self.requests: dict[str, list[Any]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_emulator/"):
            return self.control(Request(environ))(environ, start_response)
        if path.startswith("/moto-api/"):
            if path == "/moto-api/reset" and environ["REQUEST_METHOD"] == "POST":
                # moto's own reset, seen from the emulator: clear our state as well.
                self.clear()
            return self.moto_app(environ, start_response)

        call = classify(environ)
        signer = signing_scope(environ.get("HTTP_AUTHORIZATION", ""))
        body = None
        if call.protocol == "json":
            try:
                body = json.loads(read_body(environ) or b"{}")
            except ValueError:
                body = None
        with self.lock:
            self.calls[call.operation] = self.calls.get(call.operation, 0) + 1
            if len(self.signed) < MAX_SIGNED_LOG:
                self.signed.append({"operation": call.operation, **signer})
            if body is not None:
                log = self.requests.setdefault(call.operation, [])
                log.append(body)
                del log[:-MAX_REQUEST_LOG]
            latency_ms = self.latency_ms
            fault = self._take_fault(call.operation)
        delay_ms = latency_ms + (fault.delay_ms if fault else 0)
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if fault and fault.status != 0:
            return fault_response(call, fault)(environ, start_response)
        if call.target_prefix == DATA_EXPORTS_TARGET_PREFIX:
            return serve_data_exports(call.operation, read_body(environ))(environ, start_response)
        if call.target_prefix == PRICE_LIST_TARGET_PREFIX:
            # moto has no Price List service; we answer it (see serve_price_list).
            return serve_price_list(call.operation, read_body(environ))(environ, start_response)
        if (environ.get("REQUEST_METHOD") == "GET" and path.startswith(INFERENCE_PROFILE_PATH)
                and signer.get("service") == "bedrock"):
            return serve_inference_profile(path)(environ, start_response)
        if (environ.get("REQUEST_METHOD") == "POST" and path == LIST_TAGS_PATH
                and signer.get("service") == "bedrock"):
            answer = serve_profile_tags(read_body(environ))
            if answer is not None:
                return answer(environ, start_response)
        if call.target_prefix == LOGS_TARGET_PREFIX and call.operation in ("StartQuery", "GetQueryResults", "StopQuery"):
            answer = serve_insights(call.operation, read_body(environ), signer.get("region", ""))
            if answer is not None:
                return answer(environ, start_response)
        return self.moto_app(environ, start_response)

    def _take_fault(self, operation: str) -> Fault | None:
        queue = self.faults.get(operation)
        if not queue:
            return None
        fault = queue[0]
        if fault.after > 0:
            fault.after -= 1
            return None
        fault.times -= 1
        if fault.times == 0:
            queue.pop(0)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            self.signed.clear()
            self.requests.clear()
            self.latency_ms = 0
        ATHENA.clear()
        ATHENA_ENGINE.clear()
        CE_ENGINE.clear()
        PRICING.restore_defaults()
        INSIGHTS.clear()
        INFERENCE_PROFILES.clear()
        DATA_EXPORTS.clear()
        ATHENA_CATALOG.clear()
        with _budget_actions_lock:
            BUDGET_ACTIONS.clear()
        with IAM_PAGING.lock:
            IAM_PAGING.cap = None

    def control(self, request: Request) -> Response:
        try:
            return self._control(request)
        except BadRequest as err:
            return json_response({"error": str(err)}, 400)

    def _control(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("GET", "/_emulator/calls"):
            with self.lock:
                return json_response(dict(self.calls))
        if route == ("GET", "/_emulator/signed"):
            with self.lock:
                return json_response(list(self.signed))
        if route == ("GET", "/_emulator/requests"):
            with self.lock:
                return json_response({op: list(bodies) for op, bodies in self.requests.items()})
        if route == ("POST", "/_emulator/reset"):
            self.clear()
            moto_api_backend.reset()
            return json_response({"status": "ok"})
        if route == ("POST", "/_emulator/faults"):
            spec = json_body(request)
            operation = spec.get("operation")
            if not operation:
                raise BadRequest("operation is required")
            fault = Fault.from_json(spec)
            with self.lock:
                self.faults.setdefault(operation, []).append(fault)
            return json_response({"status": "ok"}, 201)
        if route == ("GET", "/_emulator/faults"):
            with self.lock:
                pending = {op: [vars(f) for f in queue] for op, queue in self.faults.items() if queue}
            return json_response(pending)
        if route == ("DELETE", "/_emulator/faults"):
            with self.lock:
                self.faults.clear()
            return json_response({"status": "ok"})
        if route == ("POST", "/_emulator/latency"):
            ms = json_body(request).get("ms")
            if not isinstance(ms, int) or ms < 0:
                raise BadRequest('expected {"ms": <non-negative integer>}')
            with self.lock:
                self.latency_ms = ms
            return json_response({"ms": ms})
        if route == ("POST", "/_emulator/athena/outcomes"):
            outcomes = json_body(request).get("outcomes")
            if not isinstance(outcomes, list):
                raise BadRequest('expected {"outcomes": [{"state": ...}, ...]}')
            parsed = [AthenaOutcome.from_json(spec) for spec in outcomes]
            with ATHENA.lock:
                ATHENA.outcomes.extend(parsed)
            return json_response({"status": "ok"}, 201)
        if route == ("GET", "/_emulator/athena/outcomes"):
            with ATHENA.lock:
                return json_response([outcome.spec for outcome in ATHENA.outcomes])
        if route == ("DELETE", "/_emulator/athena/outcomes"):
            with ATHENA.lock:
                ATHENA.outcomes.clear()
            return json_response({"status": "ok"})
        if route == ("GET", "/_emulator/athena/queries"):
            with ATHENA.lock:
                return json_response([dict(query.log) for query in ATHENA.queries.values()])
        if route == ("POST", "/_emulator/ce/line-items"):
            try:
                loaded = CE_ENGINE.load(json_body(request))
            except ce_engine.LoadError as err:
                raise BadRequest(str(err)) from err
            return json_response(loaded, 201)
        if route == ("GET", "/_emulator/ce/line-items"):
            return json_response(CE_ENGINE.status())
        if route == ("DELETE", "/_emulator/ce/line-items"):
            CE_ENGINE.clear_items()
            return json_response({"status": "ok"})
        if route == ("POST", "/_emulator/ce/page-size"):
            try:
                CE_ENGINE.set_page_groups(json_body(request).get("groups"))
            except ce_engine.LoadError as err:
                raise BadRequest(str(err)) from err
            return json_response({"groups": CE_ENGINE.status()["page_groups"]})
        if route == ("POST", "/_emulator/athena/tables"):
            try:
                table = ATHENA_ENGINE.register(json_body(request))
            except athena_engine.AthenaEngineError as err:
                raise BadRequest(str(err)) from err
            return json_response(table, 201)
        if route == ("GET", "/_emulator/athena/tables"):
            return json_response(ATHENA_ENGINE.list())
        if route == ("DELETE", "/_emulator/athena/tables"):
            ATHENA_ENGINE.clear()
            return json_response({"status": "ok"})
        if route == ("POST", "/_emulator/iam/page-cap"):
            cap = json_body(request).get("max_items")
            if cap is not None and (not isinstance(cap, int) or cap < 1):
                raise BadRequest('expected {"max_items": <integer >= 1>} or {"max_items": null}')
            with IAM_PAGING.lock:
                IAM_PAGING.cap = cap
            return json_response({"max_items": cap})
        if route == ("POST", "/_emulator/bedrock/inference-profiles"):
            seed_inference_profiles(json_body(request).get("profiles"))
            return json_response({"status": "ok"}, 201)
        if route == ("GET", "/_emulator/athena/catalog"):
            return json_response(ATHENA_CATALOG.listing())
        if route == ("GET", "/_emulator/data-exports"):
            with DATA_EXPORTS.lock:
                return json_response([e["Export"] for e in DATA_EXPORTS.exports.values()])
        if route == ("GET", "/_emulator/logs/queries"):
            return json_response(INSIGHTS.log())
        if route == ("POST", "/_emulator/pricing/products"):
            seed_price_products(json_body(request))
            return json_response({"status": "ok"}, 201)
        if route == ("GET", "/_emulator/pricing/products"):
            with PRICING.lock:
                return json_response(PRICING.products)
        if request.method == "POST" and request.path in CE_SEEDERS:
            body = json_body(request)
            account_id = request.args.get("account_id", DEFAULT_ACCOUNT_ID)
            with _seeds_lock:
                CE_SEEDERS[request.path](ce_seeds(account_id), body)
            return json_response({"status": "ok"}, 201)
        return json_response({"error": f"no such emulator endpoint: {request.method} {request.path}"}, 404)


def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError as err:
        raise BadRequest(f"body is not JSON: {err}") from err
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def json_response(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status, content_type="application/json")


# ---------------------------------------------------------------------------------------------
# Process
# ---------------------------------------------------------------------------------------------


def stdin_is_watchable() -> bool:
    """True when stdin's EOF means the parent is gone: a pipe, a socket or a terminal."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)


def watch_stdin(stop: threading.Event) -> None:
    while os.read(0, 65536):
        pass
    stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--no-stdin-watch", action="store_true", help="do not exit on stdin EOF")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    if moto.__version__ != PINNED_MOTO_VERSION:
        print(f"aws_emulator: needs moto {PINNED_MOTO_VERSION}, found {moto.__version__}", file=sys.stderr)
        return 2
    install_ce_extensions()
    install_athena_extensions()
    install_budgets_extensions()
    install_iam_extensions()
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

    app = EmulatorMiddleware(DomainDispatcherApplication(create_backend_app))
    # MotoRequestHandler keeps header spellings moto relies on (see moto.moto_server.werkzeug_app).
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if not args.no_stdin_watch and stdin_is_watchable():
        threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    threading.Thread(target=server.serve_forever, daemon=True).start()

    print(f"READY {server.server_port}", flush=True)
    # Keep stdout to the READY line: moto prints some diagnostics, and a parent that stops
    # reading its stdout pipe must not stall us once the pipe is full.
    sys.stdout = sys.stderr

    stop.wait()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
