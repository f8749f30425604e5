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
  are added as methods of moto's ``CostExplorerResponse``, answering from per-account seed stores;
- four Athena operations of moto's ``AthenaResponse`` are wrapped (StartQueryExecution,
  GetQueryExecution, StopQueryExecution, GetQueryResults): the wrappers call moto's method and
  add GetQueryResults paging, the query log and queued outcomes (FAILED, CANCELLED, RUNNING for
  some polls), kept in ``ATHENA``, which any reset clears.

This touches moto internals (``CostExplorerResponse``, ``ce_backends``, ``AthenaResponse``,
``AthenaBackend.executions``/``query_results_queue``, ``Execution.status``, ``moto_api_backend``,
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
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import signal
import stat
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import moto
from moto.athena.models import Execution
from moto.athena.responses import AthenaResponse
from moto.ce.models import ce_backends
from moto.ce.responses import CostExplorerResponse
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import JsonRESTError
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

PINNED_MOTO_VERSION = "5.2.5"

# The SDKs send Cost Explorer requests as AWS JSON 1.1; the same type goes on our error answers.
AWS_JSON_1_1 = "application/x-amz-json-1.1"

# UpdateCostAllocationTagsStatus accepts 1 to 20 entries (API model: CostAllocationTagStatusList).
MAX_TAG_STATUS_UPDATES = 20
# ListCostAllocationTags pages at 100 by default and accepts at most 1000 (API reference).
DEFAULT_TAG_PAGE_SIZE = 100
MAX_TAG_PAGE_SIZE = 1000


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    tags: dict[str, list[str]] = field(default_factory=dict)


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


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        kind, value = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        offset = int(value)
    except ValueError as err:
        raise validation_error("Invalid pagination token") from err
    if kind != "offset" or offset < 0:
        raise validation_error("Invalid pagination token")
    return offset


def page(items: list[Any], token: str | None, max_results: int | None) -> tuple[list[Any], str | None]:
    """Slice one page out of items; the returned token is None on the last page."""
    start = decode_offset(token)
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


def get_anomalies(self: CostExplorerResponse) -> str:
    params = json.loads(self.body)
    if params.get("MaxResults", 1) < 1:
        raise validation_error("MaxResults must be at least 1")
    with _seeds_lock:
        anomalies = list(ce_seeds(self.current_account).anomalies)
    items, next_token = page(anomalies, params.get("NextPageToken"), params.get("MaxResults"))
    answer: dict[str, Any] = {"Anomalies": items}
    if next_token:
        answer["NextPageToken"] = next_token
    return json.dumps(answer)


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


CE_EXTENSIONS: dict[str, Callable[[CostExplorerResponse], str]] = {
    "get_dimension_values": get_dimension_values,
    "list_cost_allocation_tags": list_cost_allocation_tags,
    "update_cost_allocation_tags_status": update_cost_allocation_tags_status,
    "get_cost_forecast": get_cost_forecast,
    "get_anomalies": get_anomalies,
    "get_tags": get_tags,
}


def install_ce_extensions() -> None:
    for name, method in CE_EXTENSIONS.items():
        if hasattr(CostExplorerResponse, name):
            raise RuntimeError(f"moto's CostExplorerResponse already has {name}; review the extension")
        setattr(CostExplorerResponse, name, method)


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


def seed_tags(seeds: CeSeeds, body: dict[str, Any]) -> None:
    if not all(isinstance(v, list) for v in body.values()):
        raise BadRequest('expected {"<tag key>": ["<value>", ...], ...}')
    seeds.tags = {key: list(values) for key, values in body.items()}


CE_SEEDERS: dict[str, Callable[[CeSeeds, dict[str, Any]], None]] = {
    "/_emulator/ce/dimension-values": seed_dimension_values,
    "/_emulator/ce/cost-allocation-tags": seed_cost_allocation_tags,
    "/_emulator/ce/forecast": seed_forecast,
    "/_emulator/ce/anomalies": seed_anomalies,
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
ATHENA_OUTCOME_FIELDS = {"state", "polls", "reason", "error_category", "error_type", "data_scanned_bytes"}


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
        return cls(dict(spec), final, polls, reason, category, error_type, scanned)


@dataclass
class AthenaQuery:
    """One execution that StartQueryExecution created: its query-log entry, its outcome state."""

    log: dict[str, Any]  # the entry GET /_emulator/athena/queries shows
    outcome: AthenaOutcome | None  # None: moto's own behaviour (SUCCEEDED at once)
    polls_seen: int = 0  # GetQueryExecution calls answered so far
    cancelled_by_stop: bool = False
    completed_at: float | None = None  # epoch seconds, once the outcome reached its final state

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


def start_query_execution(self: AthenaResponse) -> Any:
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
        "stopped": False,
    }
    backend = self.athena_backend
    # Held across moto's call so that concurrent starts take outcomes in the order they start.
    with ATHENA.lock:
        outcome = ATHENA.outcomes.pop(0) if ATHENA.outcomes else None
        # moto internals: moto's start_query_execution hands the next result seeded through
        # /moto-api/static/athena/query-results (AthenaBackend.query_results_queue) to the new
        # execution. One that will never succeed must not take it from the query that will, so it
        # gets an empty queue to look at. (A seed posted during this call would be lost.)
        hide_seeds = outcome is not None and outcome.final != "SUCCEEDED"
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
        query = AthenaQuery(log=log, outcome=outcome)
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
    for name, method in ATHENA_OVERRIDES.items():
        original = AthenaResponse.__dict__.get(name)
        if original is None:
            raise RuntimeError(f"moto's AthenaResponse has no {name} of its own; review the override")
        _ATHENA_ORIGINALS[name] = original
        setattr(AthenaResponse, name, method)


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
        )
        if not all(isinstance(n, int) for n in (fault.status, fault.times, fault.delay_ms)):
            raise BadRequest("status, times and delay_ms must be integers")
        if fault.times < 1 or fault.delay_ms < 0:
            raise BadRequest("times must be >= 1 and delay_ms >= 0")
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
        return AwsCall(target.split(".", 1)[-1], "json", content_type)
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if not action and content_type.startswith("application/x-www-form-urlencoded"):
        action = parse_qs(read_body(environ).decode("utf-8", "replace")).get("Action")
    if action:
        return AwsCall(action[0], "query", content_type)
    return AwsCall(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '/')}", "rest", content_type)


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
        with self.lock:
            self.calls[call.operation] = self.calls.get(call.operation, 0) + 1
            latency_ms = self.latency_ms
            fault = self._take_fault(call.operation)
        delay_ms = latency_ms + (fault.delay_ms if fault else 0)
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if fault and fault.status != 0:
            return fault_response(call, fault)(environ, start_response)
        return self.moto_app(environ, start_response)

    def _take_fault(self, operation: str) -> Fault | None:
        queue = self.faults.get(operation)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times == 0:
            queue.pop(0)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            self.latency_ms = 0
        ATHENA.clear()

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
