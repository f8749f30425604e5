"""Loopback emulator of AWS Agent Registry (the ``agent-registry`` namespace) for bedrock-cost-mcp tests.

Usage:
    tools/.venv/bin/python tools/registry_emulator/registry_emulator.py [--port 0] [--host 127.0.0.1]
        [--no-stdin-watch] [--verbose]

It prints exactly one line, ``READY <port>``, on stdout once it serves; everything else goes to
stderr. It runs until SIGTERM/SIGINT, or until its stdin reaches EOF when stdin is a pipe, socket
or terminal (a test process that dies takes the emulator with it). When stdin is /dev/null or a
file it is not watched; ``--no-stdin-watch`` turns the watch off explicitly.

One process, one port, both planes (their REST paths do not collide):

  data plane (aws-sdk-agentregistry 1.17.0, service id "Agent Registry")
    POST /discoverable-records-search                      SearchDiscoverableRegistryRecords
    POST /registries/{registryId}/discoverable-records-list ListDiscoverableRegistryRecords
    POST /discoverable-records-batch                       BatchGetDiscoverableRegistryRecord
  control plane (aws-sdk-agentregistrycontrol 1.17.0, service id "Agent Registry Control")
    POST /registries-list                                  ListRegistries
    GET  /registries/{registryId}                          GetRegistry
    POST /registries/{registryId}/records-list             ListRegistryRecords
    GET  /registries/{registryId}/records/{recordId}       GetRegistryRecord

Point the Rust SDK at it with AWS_ENDPOINT_URL_AGENT_REGISTRY and
AWS_ENDPOINT_URL_AGENT_REGISTRY_CONTROL (both http://127.0.0.1:<port>).

Wire format (see README.md for the crate file behind each decision): REST-JSON, bodies
``application/json``; timestamps are RFC 3339 strings (``2026-08-12T09:14:03.512Z``), never epoch
numbers; errors are an HTTP status, an ``x-amzn-ErrorType: <Code>`` header and a JSON body
``{"message": ...}`` (ValidationException adds the required ``reason`` and a ``fieldList``).
Only the stdlib and werkzeug are used; no moto.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import logging
import os
import re
import signal
import stat
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable
from urllib.parse import unquote

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

# ---------------------------------------------------------------------------------------------
# Model constants (aws-sdk-agentregistry / -control 1.17.0; constraints from the API model that
# the crates were generated from, as shipped in botocore's agent-registry(-control)/2025-12-01)
# ---------------------------------------------------------------------------------------------

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"

# types/_record_type.rs (both crates)
RECORD_TYPES = ("AGENT", "CUSTOM", "GATEWAY", "MCP", "SKILL")
# types/_registry_record_status.rs (both crates)
RECORD_STATUSES = (
    "APPROVED", "CREATE_FAILED", "CREATING", "DEPRECATED", "DRAFT",
    "PENDING_APPROVAL", "REJECTED", "UPDATE_FAILED", "UPDATING",
)
# control types/_registry_status.rs
REGISTRY_STATUSES = ("CREATE_FAILED", "CREATING", "DELETE_FAILED", "DELETING", "READY", "UPDATE_FAILED", "UPDATING")
# control types/_registry_authorizer_type.rs
AUTHORIZER_TYPES = ("AWS_IAM", "CUSTOM_JWT")
# data types/_descriptors.rs / protocol_serde/shape_descriptors.rs: the keys of Descriptors
DESCRIPTOR_KEYS = ("mcpServer", "a2aAgentCard", "agentSkillsDefinition", "custom", "http", "agui")

# API model patterns (RegistryIdentifier, RegistryId, RegistryRecordId, RecordIdentifier, ...)
RE_REGISTRY_ID = re.compile(r"[a-zA-Z0-9]{12,16}")
RE_RECORD_ID = re.compile(r"[a-zA-Z0-9]{12}")
RE_REGISTRY_ARN = re.compile(r"arn:aws(-[^:]+)?:agent-registry:([a-z0-9-]+):([0-9]{12}):registry/([a-zA-Z0-9]{12,16})")
RE_RECORD_ARN = re.compile(
    r"arn:aws(-[^:]+)?:agent-registry:([a-z0-9-]+):([0-9]{12}):registry/([a-zA-Z0-9]{12,16})/record/([a-zA-Z0-9]{12})"
)
RE_RECORD_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_\-./]*")
RE_REGISTRY_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_\-./]*")
RE_RECORD_VERSION = re.compile(r"[a-zA-Z0-9.-]+")
RE_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")

# SearchDiscoverableRegistryRecords: maxResults 1-20, default 10 (operation input docs, 1.17.0);
# searchQuery 1-256 characters (AWS docs; the model says max 256).
SEARCH_MAX_RESULTS = 20
SEARCH_DEFAULT_RESULTS = 10
SEARCH_QUERY_MAX = 256
# ListDiscoverableRegistryRecords / ListRegistries / ListRegistryRecords: maxResults 1-100.
LIST_MAX_RESULTS = 100
LIST_DEFAULT_RESULTS = 20  # not documented; emulator choice
LIST_FILTERS_MAX = 10  # RegistryRecordFilterList / RegistryFilterList max 10
DISCOVERABLE_FILTER_VALUES_MAX = 10  # DiscoverableFilterValues 1-10
CONTROL_FILTER_VALUES_MAX = 1  # control FilterValues 1-1
BATCH_RECORD_IDS_MAX = 100

# Modeled HTTP status of each error code (the "error.httpStatusCode" traits of the API model).
ERROR_STATUS = {
    "AccessDeniedException": 403,
    "ConflictException": 409,
    "InternalServerException": 500,
    "ResourceNotFoundException": 404,
    "ServiceQuotaExceededException": 402,
    "ThrottlingException": 429,
    "UnauthorizedException": 401,
    "ValidationException": 400,
}

DATA_OPERATIONS = (
    "SearchDiscoverableRegistryRecords",
    "ListDiscoverableRegistryRecords",
    "BatchGetDiscoverableRegistryRecord",
)
CONTROL_OPERATIONS = ("ListRegistries", "GetRegistry", "ListRegistryRecords", "GetRegistryRecord")

# Words ignored by the search scorer.
STOPWORDS = frozenset(
    "a an and are as at be by can do does find for from get how i in is it me my of on or show "
    "that the this to what which with".split()
)


# The calendar follows the server's: BEDROCK_COST_MCP_NOW pins "now" (RFC 3339, or a date read as
# noon UTC) and the clock runs on from there, as in the server (core/src/domain/clock.rs).
_STARTED = time.monotonic()
_PIN = os.environ.get("BEDROCK_COST_MCP_NOW", "").strip()
_PINNED = (
    datetime.fromisoformat((_PIN + "T12:00:00Z" if len(_PIN) == 10 else _PIN).replace("Z", "+00:00"))
    .astimezone(timezone.utc)
    if _PIN
    else None
)


def calendar_now() -> datetime:
    if _PINNED is None:
        return datetime.now(timezone.utc)
    return _PINNED + timedelta(seconds=time.monotonic() - _STARTED)


def utc_now_iso() -> str:
    now = calendar_now()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An AWS error answer: status + x-amzn-ErrorType + {"message", ...}."""

    def __init__(self, code: str, message: str, status: int | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else ERROR_STATUS.get(code, 400)
        self.extra = extra or {}


def validation(message: str, field: str | None = None, reason: str = "FieldValidationFailed") -> ApiError:
    # ValidationException: `message` and `reason` are required (serde_util.rs
    # validation_exception_correct_errors fills "no value was set" otherwise); `fieldList` optional.
    extra: dict[str, Any] = {"reason": reason}
    if field is not None:
        extra["fieldList"] = [{"name": field, "message": message}]
    return ApiError("ValidationException", message, 400, extra)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", message, 404)


class BadRequest(Exception):
    """A malformed request to an /_emulator/* endpoint."""


def error_response(err: ApiError, request_id: str) -> Response:
    body = {"message": err.message}
    body.update(err.extra)
    headers = {"x-amzn-ErrorType": err.code, "x-amzn-RequestId": request_id}
    return Response(json.dumps(body), err.status, headers, content_type="application/json")


def ok_response(value: Any, request_id: str) -> Response:
    return Response(json.dumps(value), 200, {"x-amzn-RequestId": request_id}, content_type="application/json")


# ---------------------------------------------------------------------------------------------
# Default catalog
# ---------------------------------------------------------------------------------------------

REG_PLATFORM = "k3Xp9QmTz7Lw2RaB"
REG_FINANCE = "f7Nc2VbHq8Ds4JeM"
REG_PARTNER = "p4Tg6WyKc1Zr9HuS"
REG_CREATING = "c9Lm3QaVx5Br"

ROLE = "arn:aws:iam::123456789012:role/"
MCP_SERVER_SCHEMA = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
MCP_SERVER_SCHEMA_VERSION = "2025-12-11"
MCP_TOOLS_SCHEMA_VERSION = "2025-11-25"
A2A_SCHEMA_VERSION = "0.3.0"
SKILL_SCHEMA_VERSION = "0.1.0"

CUSTOM_METADATA_SCHEMA = json.dumps(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "team": {"type": "string", "maxLength": 128},
            "environment": {"type": "string", "enum": ["production", "staging", "development"]},
            "iamRoleArn": {"type": "string", "maxLength": 128},
            "requiresApproval": {"type": "boolean"},
        },
        "additionalProperties": False,
    }
)


def mcp_descriptor(name: str, description: str, version: str, url: str, tools: list[tuple[str, str]]) -> dict[str, Any]:
    server = {
        "$schema": MCP_SERVER_SCHEMA,
        "name": name,
        "description": description,
        "version": version,
        "remotes": [{"type": "streamable-http", "url": url}],
    }
    tool_list = {
        "tools": [
            {"name": t, "description": d, "inputSchema": {"type": "object", "properties": {}, "additionalProperties": True}}
            for t, d in tools
        ]
    }
    return {
        "mcpServer": {
            "data": json.dumps(server),
            "dataSchemaVersion": MCP_SERVER_SCHEMA_VERSION,
            "additionalData": {"tools": {"data": json.dumps(tool_list), "dataSchemaVersion": MCP_TOOLS_SCHEMA_VERSION}},
        }
    }


def a2a_descriptor(
    name: str, description: str, version: str, url: str, skills: list[tuple[str, str, str]], extensions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "protocolVersion": "0.3.0",
        "name": name,
        "description": description,
        "url": url,
        "version": version,
        "preferredTransport": "JSONRPC",
        "capabilities": {"streaming": True, "pushNotifications": False},
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain", "application/json"],
        "skills": [{"id": i, "name": n, "description": d, "tags": []} for i, n, d in skills],
    }
    if extensions:
        card["capabilities"]["extensions"] = extensions
    return {"a2aAgentCard": {"data": json.dumps(card), "dataSchemaVersion": A2A_SCHEMA_VERSION}}


def skill_descriptor(name: str, description: str, version: str, markdown: str) -> dict[str, Any]:
    definition = {"name": name, "description": description, "version": version, "license": "Apache-2.0"}
    return {
        "agentSkillsDefinition": {
            "data": json.dumps(definition),
            "dataSchemaVersion": SKILL_SCHEMA_VERSION,
            "additionalData": {"skillMd": {"data": markdown, "dataSchemaVersion": SKILL_SCHEMA_VERSION}},
        }
    }


def record(
    rid: str, name: str, display: str | None, description: str | None, rtype: str, version: str, status: str,
    created: str, updated: str, descriptors: dict[str, Any], **extra: Any,
) -> dict[str, Any]:
    rec: dict[str, Any] = {"recordId": rid, "name": name}
    if display is not None:
        rec["displayName"] = display
    if description is not None:
        rec["description"] = description
    rec.update(
        {
            "recordType": rtype,
            "recordVersion": version,
            "status": status,
            "createdAt": created,
            "updatedAt": updated,
            "descriptors": descriptors,
            "createdBy": DEFAULT_ACCOUNT,
        }
    )
    rec.update(extra)
    return rec


SUPPORT_RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/support_triage-Qk7RmT2xPa"


def default_catalog() -> dict[str, Any]:
    """The catalog loaded at start and restored by POST /_emulator/reset."""
    platform_records = [
        record(
            "Rc0stEx9Mp1a", "cost-explorer-mcp", "Cost Explorer MCP Server",
            "Queries AWS Cost Explorer: Bedrock spend by service, usage type and cost allocation tag, plus forecasts.",
            "MCP", "1.4.2", "APPROVED", "2026-08-14T10:02:11.204Z", "2026-10-21T16:40:52.918Z",
            mcp_descriptor(
                "io.acme.platform/cost-explorer-mcp",
                "Read-only access to AWS Cost Explorer spend and forecasts for FinOps agents.",
                "1.4.2", "https://mcp.platform.acme.example/cost-explorer/mcp",
                [
                    ("get_cost_and_usage", "Return cost and usage grouped by a dimension or cost allocation tag."),
                    ("get_cost_forecast", "Forecast spend for the rest of the month."),
                    ("list_cost_allocation_tags", "List active and inactive cost allocation tags."),
                ],
            ),
            customMetadata={"team": "platform", "environment": "production"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
        record(
            "Rj1raIs5Ue2b", "jira-issues-mcp", "Jira Issues",
            "Create, search and comment on Jira issues for the support organisation.",
            "MCP", "2.0.1", "APPROVED", "2026-08-19T13:27:45.031Z", "2026-09-30T08:11:06.377Z",
            mcp_descriptor(
                "io.acme.support/jira-issues-mcp",
                "Jira Cloud issue tracking tools.",
                "2.0.1", "https://mcp.support.acme.example/jira/mcp",
                [
                    ("search_issues", "Search issues with JQL."),
                    ("create_issue", "Create an issue in a project."),
                    ("add_comment", "Add a comment to an issue."),
                ],
            ),
            customMetadata={"team": "support", "environment": "production", "iamRoleArn": ROLE + "SupportBotRole"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
        record(
            # Deliberately malformed: descriptors.mcpServer.data is not valid JSON.
            "Rge0Lk7Bad3c", "geo-lookup-mcp", "Geo Lookup",
            "Geocoding and reverse geocoding of shipping addresses.",
            "MCP", "0.9.0", "APPROVED", "2026-09-02T07:45:18.660Z", "2026-09-02T07:45:18.660Z",
            {
                "mcpServer": {
                    "data": '{"name": "io.acme.platform/geo-lookup-mcp", "description": "Geocoding", "remotes": [{"type": "streamable-http", "url": "https://mcp.platform.acme.example/geo/mcp"',
                    "dataSchemaVersion": MCP_SERVER_SCHEMA_VERSION,
                }
            },
            customMetadata={"team": "platform", "environment": "production"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
        record(
            "Rs3DocDr4ft4", "s3-docs-search-mcp", "S3 Docs Search",
            "Full-text search over internal runbooks stored in S3.",
            "MCP", "0.1.0", "DRAFT", "2026-11-03T15:12:09.842Z", "2026-11-03T15:12:09.842Z",
            mcp_descriptor(
                "io.acme.platform/s3-docs-search-mcp", "Search runbooks in S3.", "0.1.0",
                "https://mcp.platform.acme.example/s3-docs/mcp",
                [("search_runbooks", "Full-text search over runbooks.")],
            ),
        ),
        record(
            "RlegPr1Dep5e", "legacy-pricing-mcp", "Legacy Pricing",
            "Bedrock model price lookup from the old price sheet; replaced by the Price List API.",
            "MCP", "1.0.0", "DEPRECATED", "2026-08-12T11:30:00.000Z", "2026-10-01T09:00:00.000Z",
            mcp_descriptor(
                "io.acme.platform/legacy-pricing-mcp", "Old price sheet lookup.", "1.0.0",
                "https://mcp.platform.acme.example/legacy-pricing/mcp",
                [("get_model_price", "Price per 1K tokens for a Bedrock model.")],
            ),
            statusReason="Superseded by the AWS Price List API.",
        ),
        record(
            "RsupTri4ge6f", "support-triage-agent", "Support Triage Agent",
            "Triages incoming support tickets, drafts replies and escalates outages.",
            "AGENT", "3.2.0", "APPROVED", "2026-08-21T09:58:40.115Z", "2026-11-10T12:03:27.560Z",
            a2a_descriptor(
                "Support Triage Agent",
                "Classifies support tickets by product and severity and drafts first replies.",
                "3.2.0",
                "https://bedrock-agentcore.us-east-1.amazonaws.com/runtimes/"
                "arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A123456789012%3Aruntime%2Fsupport_triage-Qk7RmT2xPa/invocations/",
                [
                    ("triage-ticket", "Triage ticket", "Classify a ticket by product, severity and sentiment."),
                    ("draft-reply", "Draft reply", "Draft a first reply using the knowledge base."),
                ],
                extensions=[
                    {
                        "uri": "https://aws.amazon.com/bedrock-agentcore/a2a/extensions/runtime/v1",
                        "description": "Amazon Bedrock AgentCore Runtime hosting this agent",
                        "required": False,
                        "params": {
                            "agentRuntimeArn": SUPPORT_RUNTIME_ARN,
                            "executionRoleArn": ROLE + "SupportBotRole",
                        },
                    }
                ],
            ),
            createdByAutoDetection=True,
            provenance=[
                {
                    "relation": "DETECTED_FROM",
                    "sourceId": SUPPORT_RUNTIME_ARN,
                    "sourceType": "AWS::BedrockAgentCore::Runtime",
                    "sourceDetails": {"agentcoreRuntime": {"protocolConfiguration": {"serverProtocol": "A2A"}}},
                }
            ],
            customMetadata={"team": "support", "environment": "production"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
        record(
            "RdsAss1st7gh", "data-science-assistant", "Data Science Assistant",
            "Answers analytics questions with SQL over the data lake and builds notebooks.",
            "AGENT", "1.1.0", "APPROVED", "2026-09-08T14:20:03.480Z", "2026-10-29T10:15:44.002Z",
            a2a_descriptor(
                "Data Science Assistant",
                "Runs Athena SQL over the data lake and summarises the results.",
                "1.1.0", "https://agents.platform.acme.example/data-science/a2a",
                [
                    ("run-sql", "Run SQL", "Run an Athena query and summarise the result."),
                    ("build-notebook", "Build notebook", "Create a notebook from an analysis."),
                ],
            ),
            customMetadata={"team": "ml-platform", "environment": "production", "iamRoleArn": ROLE + "DataScienceRole"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
        record(
            "RskCstRv8ijk", "bedrock-cost-review", "Bedrock Cost Review",
            "Skill that reviews Bedrock spend per IAM principal and flags untagged callers.",
            "SKILL", "1.0.0", "APPROVED", "2026-10-05T08:00:12.345Z", "2026-10-05T08:00:12.345Z",
            skill_descriptor(
                "bedrock-cost-review",
                "Review Bedrock spend per IAM principal and flag untagged callers.",
                "1.0.0",
                "---\nname: bedrock-cost-review\ndescription: Review Bedrock spend per IAM principal and flag untagged callers.\n---\n\n"
                "# Bedrock cost review\n\n1. Pull last month's Bedrock spend grouped by `iamPrincipal/team`.\n"
                "2. List principals without a `team` tag.\n3. Compare against the monthly budget.\n",
            ),
            customMetadata={"team": "platform", "environment": "production"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
        record(
            "RcusApiCt9lm", "internal-api-catalog", "Internal API Catalog",
            "Catalog of internal REST APIs with owners and on-call rotations.",
            "CUSTOM", "2026.10.1", "APPROVED", "2026-08-30T17:44:29.999Z", "2026-10-12T06:30:00.000Z",
            {
                "custom": {
                    "data": json.dumps(
                        {
                            "kind": "api-catalog",
                            "apis": [
                                {"name": "billing-api", "owner": "finance-apps", "url": "https://billing.internal.acme.example"},
                                {"name": "tickets-api", "owner": "support", "url": "https://tickets.internal.acme.example"},
                            ],
                        }
                    )
                }
            },
            customMetadata={"team": "platform", "environment": "production"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
    ]
    finance_records = [
        record(
            "FinvPr0cAg1a", "invoice-processing-agent", "Invoice Processing Agent",
            "Extracts invoice fields, matches purchase orders and posts approved invoices to the ledger.",
            "AGENT", "2.3.1", "APPROVED", "2026-08-18T08:12:55.410Z", "2026-11-12T14:48:09.733Z",
            a2a_descriptor(
                "Invoice Processing Agent",
                "Reads supplier invoices, matches them to purchase orders and books them.",
                "2.3.1", "https://agents.finance.acme.example/invoice-processing/a2a",
                [
                    ("extract-invoice", "Extract invoice", "Extract supplier, amounts and line items from an invoice PDF."),
                    ("match-purchase-order", "Match purchase order", "Three-way match against purchase orders and receipts."),
                    ("post-to-ledger", "Post to ledger", "Post an approved invoice to the ERP ledger."),
                ],
            ),
            customMetadata={"iamRoleArn": ROLE + "InvoiceAgentRole", "team": "finance-apps", "environment": "production"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
        record(
            "FerpLdg2Mcpb", "erp-ledger-mcp", "ERP Ledger",
            "General ledger, vendor and purchase order tools for the ERP system.",
            "MCP", "4.0.0", "APPROVED", "2026-08-18T09:01:30.000Z", "2026-10-02T11:22:33.444Z",
            mcp_descriptor(
                "io.acme.finance/erp-ledger-mcp", "ERP general ledger tools.", "4.0.0",
                "https://mcp.finance.acme.example/erp-ledger/mcp",
                [
                    ("get_purchase_order", "Fetch a purchase order by number."),
                    ("post_journal_entry", "Post a journal entry to the general ledger."),
                    ("list_vendors", "List vendors with payment terms."),
                ],
            ),
            customMetadata={
                "iamRoleArn": ROLE + "InvoiceAgentRole",
                "team": "finance-apps",
                "environment": "production",
                "requiresApproval": True,
            },
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
        record(
            "FinvMtch3Skc", "invoice-matching", "Invoice Matching",
            "Skill: three-way matching of invoices, purchase orders and goods receipts.",
            "SKILL", "1.2.0", "APPROVED", "2026-09-15T10:10:10.100Z", "2026-09-15T10:10:10.100Z",
            skill_descriptor(
                "invoice-matching",
                "Three-way matching of invoices, purchase orders and goods receipts.",
                "1.2.0",
                "---\nname: invoice-matching\ndescription: Three-way matching of invoices, purchase orders and goods receipts.\n---\n\n"
                "# Invoice matching\n\nMatch quantity and price within 2% tolerance; route mismatches to AP review.\n",
            ),
            customMetadata={"team": "finance-apps", "environment": "production"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
        record(
            "FbdgtFc4Drfd", "budget-forecaster", "Budget Forecaster",
            "Forecasts departmental budgets from ledger history.",
            "AGENT", "0.3.0", "DRAFT", "2026-11-18T16:05:00.000Z", "2026-11-18T16:05:00.000Z",
            a2a_descriptor(
                "Budget Forecaster", "Forecasts departmental budgets.", "0.3.0",
                "https://agents.finance.acme.example/budget-forecaster/a2a",
                [("forecast-budget", "Forecast budget", "Forecast a department's quarterly budget.")],
            ),
            customMetadata={"team": "finance-apps", "environment": "development"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
        record(
            "FexpRpt5Depe", "expense-report-agent", "Expense Report Agent",
            "Builds expense reports from receipts; retired in favour of the travel tool.",
            "AGENT", "1.0.4", "DEPRECATED", "2026-08-13T12:00:00.000Z", "2026-10-20T09:30:00.000Z",
            a2a_descriptor(
                "Expense Report Agent", "Builds expense reports from receipts.", "1.0.4",
                "https://agents.finance.acme.example/expense-report/a2a",
                [("build-expense-report", "Build expense report", "Assemble receipts into a report.")],
            ),
            statusReason="Retired; use the corporate travel tool.",
            customMetadata={"team": "finance-apps", "environment": "production"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
        record(
            "FinvOcr6Mcpf", "invoice-ocr-mcp", "Invoice OCR",
            "OCR for scanned supplier invoices (staging).",
            "MCP", "0.8.2", "APPROVED", "2026-10-27T13:37:00.000Z", "2026-11-04T08:08:08.808Z",
            mcp_descriptor(
                "io.acme.finance/invoice-ocr-mcp", "OCR for invoices.", "0.8.2",
                "https://mcp-staging.finance.acme.example/invoice-ocr/mcp",
                [("ocr_invoice", "Extract text and tables from a scanned invoice.")],
            ),
            customMetadata={"team": "finance-apps", "environment": "staging", "iamRoleArn": ROLE + "InvoiceAgentRole"},
            customMetadataSchemaComplianceStatus="COMPLIANT",
        ),
    ]
    partner_records = [
        record(
            "XshipMcp1Prt", "partner-shipping-mcp", "Partner Shipping",
            "Shipping quotes and tracking from the logistics partner.",
            "MCP", "1.0.0", "APPROVED", "2026-09-20T09:00:00.000Z", "2026-09-25T10:00:00.000Z",
            mcp_descriptor(
                "com.logistics-partner/shipping-mcp", "Shipping quotes and tracking.", "1.0.0",
                "https://mcp.logistics-partner.example/shipping/mcp",
                [("quote_shipment", "Quote a shipment."), ("track_shipment", "Track a shipment by number.")],
            ),
        ),
        record(
            "XtrvlAg2Prtn", "partner-travel-agent", "Partner Travel Agent",
            "Books business travel within policy through the travel partner.",
            "AGENT", "2.1.0", "APPROVED", "2026-09-21T11:11:11.111Z", "2026-10-30T15:00:00.000Z",
            a2a_descriptor(
                "Partner Travel Agent", "Books flights and hotels within travel policy.", "2.1.0",
                "https://a2a.travel-partner.example/agent",
                [("book-trip", "Book trip", "Book flights and hotel for a business trip.")],
            ),
        ),
    ]
    return {
        "accountId": DEFAULT_ACCOUNT,
        "region": DEFAULT_REGION,
        "registries": [
            {
                "registryId": REG_PLATFORM,
                "name": "platform-tools",
                "description": "Shared MCP servers, agents and skills run by the platform team.",
                "status": "READY",
                "authorizerType": "AWS_IAM",
                "approvalConfiguration": {"autoApprovalRules": []},
                "customMetadataSchemaConfiguration": {"defaultSchema": CUSTOM_METADATA_SCHEMA},
                "createdAt": "2026-08-12T09:14:03.512Z",
                "updatedAt": "2026-10-21T16:40:52.918Z",
                "records": platform_records,
            },
            {
                "registryId": REG_FINANCE,
                "name": "finance-agents",
                "description": "Agents and tools of the finance applications team.",
                "status": "READY",
                "authorizerType": "AWS_IAM",
                "approvalConfiguration": {"autoApprovalRules": ["APPROVE_ALL"]},
                "customMetadataSchemaConfiguration": {"defaultSchema": CUSTOM_METADATA_SCHEMA},
                "createdAt": "2026-08-13T11:47:26.004Z",
                "updatedAt": "2026-11-12T14:48:09.733Z",
                "records": finance_records,
            },
            {
                "registryId": REG_PARTNER,
                "name": "partner-catalog",
                "description": "Agents published by external partners; discovery with partner-issued JWTs.",
                "status": "READY",
                "authorizerType": "CUSTOM_JWT",
                "authorizerConfiguration": {
                    "customJWTAuthorizer": {
                        "discoveryUrl": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Pa7RtN3xQ/.well-known/openid-configuration",
                        "allowedClients": ["6k2q8vbn1m3c5x7z9a0s4d6f8g"],
                        "allowedScopes": ["registry/discover"],
                    }
                },
                "approvalConfiguration": {"autoApprovalRules": []},
                "createdAt": "2026-09-19T15:30:00.250Z",
                "updatedAt": "2026-10-30T15:00:00.000Z",
                "records": partner_records,
            },
            {
                "registryId": REG_CREATING,
                "name": "ml-experiments",
                "description": "Registry for ML experiment agents (being created).",
                "status": "CREATING",
                "authorizerType": "AWS_IAM",
                "createdAt": "2026-11-25T18:02:44.907Z",
                "updatedAt": "2026-11-25T18:02:44.907Z",
                "records": [],
            },
        ],
    }


# ---------------------------------------------------------------------------------------------
# Catalog (validated, immutable once loaded; a seed swaps in a new one)
# ---------------------------------------------------------------------------------------------


def _req_str(obj: dict[str, Any], key: str, where: str, pattern: re.Pattern[str] | None = None, max_len: int | None = None) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{where}: {key} must be a non-empty string")
    if pattern is not None and not pattern.fullmatch(value):
        raise BadRequest(f"{where}: {key} {value!r} does not match {pattern.pattern}")
    if max_len is not None and len(value) > max_len:
        raise BadRequest(f"{where}: {key} longer than {max_len}")
    return value


def _opt_str(obj: dict[str, Any], key: str, where: str, max_len: int) -> None:
    if key in obj and (not isinstance(obj[key], str) or not obj[key] or len(obj[key]) > max_len):
        raise BadRequest(f"{where}: {key} must be a string of 1-{max_len} characters")


def _timestamp(obj: dict[str, Any], key: str, where: str, default: str) -> None:
    value = obj.setdefault(key, default)
    if not isinstance(value, str) or not RE_TIMESTAMP.fullmatch(value):
        raise BadRequest(f"{where}: {key} must be an RFC 3339 timestamp like 2026-08-12T09:14:03.512Z, got {value!r}")


def _normalise_descriptors(descriptors: Any, where: str) -> dict[str, Any]:
    """Check the descriptor keys; JSON values given for a `data` string are serialised."""
    if not isinstance(descriptors, dict):
        raise BadRequest(f"{where}: descriptors must be an object")
    for key in descriptors:
        if key not in DESCRIPTOR_KEYS:
            raise BadRequest(f"{where}: unknown descriptor {key!r}; known: {', '.join(DESCRIPTOR_KEYS)}")

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k == "data" and not isinstance(v, str):
                    out[k] = json.dumps(v)
                else:
                    out[k] = walk(v)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(descriptors)


@dataclass(frozen=True)
class Catalog:
    account_id: str
    region: str
    registries: list[dict[str, Any]]  # in catalog order, each with "records"
    by_id: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, spec: Any) -> Catalog:
        if not isinstance(spec, dict):
            raise BadRequest("catalog must be a JSON object")
        spec = copy.deepcopy(spec)
        account_id = spec.get("accountId", DEFAULT_ACCOUNT)
        region = spec.get("region", DEFAULT_REGION)
        if not isinstance(account_id, str) or not re.fullmatch(r"[0-9]{12}", account_id):
            raise BadRequest("accountId must be 12 digits")
        if not isinstance(region, str) or not re.fullmatch(r"[a-z0-9-]+", region):
            raise BadRequest("region must match [a-z0-9-]+")
        registries = spec.get("registries")
        if not isinstance(registries, list):
            raise BadRequest("registries must be a list")
        now = utc_now_iso()
        by_id: dict[str, dict[str, Any]] = {}
        names: set[str] = set()
        for i, reg in enumerate(registries):
            where = f"registries[{i}]"
            if not isinstance(reg, dict):
                raise BadRequest(f"{where} must be an object")
            rid = _req_str(reg, "registryId", where, RE_REGISTRY_ID)
            name = _req_str(reg, "name", where, RE_REGISTRY_NAME, 64)
            if rid in by_id:
                raise BadRequest(f"{where}: duplicate registryId {rid}")
            if name in names:
                raise BadRequest(f"{where}: duplicate registry name {name}")
            names.add(name)
            reg.setdefault("status", "READY")
            reg.setdefault("authorizerType", "AWS_IAM")
            if reg["status"] not in REGISTRY_STATUSES:
                raise BadRequest(f"{where}: status must be one of {REGISTRY_STATUSES}")
            if reg["authorizerType"] not in AUTHORIZER_TYPES:
                raise BadRequest(f"{where}: authorizerType must be one of {AUTHORIZER_TYPES}")
            _opt_str(reg, "description", where, 4096)
            _opt_str(reg, "statusReason", where, 4096)
            if reg["authorizerType"] == "CUSTOM_JWT":
                auth = reg.get("authorizerConfiguration")
                if not isinstance(auth, dict) or not isinstance(auth.get("customJWTAuthorizer"), dict) or not isinstance(
                    auth["customJWTAuthorizer"].get("discoveryUrl"), str
                ):
                    raise BadRequest(f"{where}: a CUSTOM_JWT registry needs authorizerConfiguration.customJWTAuthorizer.discoveryUrl")
            tokens = reg.get("bearerTokens")
            if tokens is not None and (not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens)):
                raise BadRequest(f"{where}: bearerTokens must be a list of non-empty strings")
            _timestamp(reg, "createdAt", where, now)
            _timestamp(reg, "updatedAt", where, reg["createdAt"])
            records = reg.setdefault("records", [])
            if not isinstance(records, list):
                raise BadRequest(f"{where}: records must be a list")
            rec_ids: set[str] = set()
            rec_names: set[str] = set()
            for j, rec in enumerate(records):
                rwhere = f"{where}.records[{j}]"
                if not isinstance(rec, dict):
                    raise BadRequest(f"{rwhere} must be an object")
                rec_id = _req_str(rec, "recordId", rwhere, RE_RECORD_ID)
                rec_name = _req_str(rec, "name", rwhere, RE_RECORD_NAME, 255)
                if rec_id in rec_ids or rec_name in rec_names:
                    raise BadRequest(f"{rwhere}: duplicate recordId or name in registry {rid}")
                rec_ids.add(rec_id)
                rec_names.add(rec_name)
                if rec.get("recordType") not in RECORD_TYPES:
                    raise BadRequest(f"{rwhere}: recordType must be one of {RECORD_TYPES}")
                rec.setdefault("status", "APPROVED")
                if rec["status"] not in RECORD_STATUSES:
                    raise BadRequest(f"{rwhere}: status must be one of {RECORD_STATUSES}")
                rec.setdefault("recordVersion", "1.0.0")
                _req_str(rec, "recordVersion", rwhere, RE_RECORD_VERSION, 255)
                _opt_str(rec, "displayName", rwhere, 255)
                _opt_str(rec, "description", rwhere, 4096)
                _opt_str(rec, "statusReason", rwhere, 4096)
                _timestamp(rec, "createdAt", rwhere, reg["createdAt"])
                _timestamp(rec, "updatedAt", rwhere, rec["createdAt"])
                rec["descriptors"] = _normalise_descriptors(rec.get("descriptors", {}), rwhere)
                meta = rec.get("customMetadata")
                if meta is not None:
                    if not isinstance(meta, dict) or not all(
                        isinstance(k, str) and (isinstance(v, bool) or (isinstance(v, str) and len(v) <= 128))
                        for k, v in meta.items()
                    ):
                        raise BadRequest(f"{rwhere}: customMetadata values must be strings (<= 128 chars) or booleans")
            by_id[rid] = reg
        return cls(account_id, region, registries, by_id)

    def to_json(self) -> dict[str, Any]:
        return {"accountId": self.account_id, "region": self.region, "registries": copy.deepcopy(self.registries)}

    # --- identity -------------------------------------------------------------------------

    def registry_arn(self, reg: dict[str, Any]) -> str:
        return f"arn:aws:agent-registry:{self.region}:{self.account_id}:registry/{reg['registryId']}"

    def record_arn(self, reg: dict[str, Any], rec: dict[str, Any]) -> str:
        return f"{self.registry_arn(reg)}/record/{rec['recordId']}"

    def lookup_registry(self, identifier: str) -> dict[str, Any] | None:
        """ARN or id -> registry, None when unknown (the caller validated the pattern)."""
        m = RE_REGISTRY_ARN.fullmatch(identifier)
        if m:
            if m.group(2) != self.region or m.group(3) != self.account_id:
                return None
            identifier = m.group(4)
        return self.by_id.get(identifier)

    def registry_key(self, identifier: Any) -> str | None:
        """Best-effort registry id for counters and faults, before validation."""
        if not isinstance(identifier, str):
            return None
        reg = self.lookup_registry(identifier) if (RE_REGISTRY_ID.fullmatch(identifier) or RE_REGISTRY_ARN.fullmatch(identifier)) else None
        return reg["registryId"] if reg else identifier

    # --- shapes ---------------------------------------------------------------------------

    def data_summary(self, reg: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
        """Data-plane RegistryRecordSummary (search, batch get).

        Required (serde_util.rs registry_record_summary_correct_errors): registryArn, recordArn,
        recordId, name, recordType, descriptors, recordVersion, status, createdAt, updatedAt.
        """
        out: dict[str, Any] = {
            "registryArn": self.registry_arn(reg),
            "recordArn": self.record_arn(reg, rec),
            "recordId": rec["recordId"],
            "name": rec["name"],
        }
        for key in ("description", "displayName"):
            if key in rec:
                out[key] = rec[key]
        out["recordType"] = rec["recordType"]
        out["descriptors"] = copy.deepcopy(rec.get("descriptors", {}))
        out["recordVersion"] = rec["recordVersion"]
        out["status"] = rec["status"]
        out["createdAt"] = rec["createdAt"]
        out["updatedAt"] = rec["updatedAt"]
        if "customMetadata" in rec:
            out["customMetadata"] = copy.deepcopy(rec["customMetadata"])
        return out

    def discoverable_summary(self, reg: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
        """Data-plane DiscoverableRegistryRecordSummary (list): no descriptors, adds descriptorTypes.

        Required (serde_util.rs discoverable_registry_record_summary_correct_errors): registryArn,
        recordArn, recordId, name, recordType, recordVersion, status, createdAt, updatedAt.
        """
        out: dict[str, Any] = {
            "registryArn": self.registry_arn(reg),
            "recordArn": self.record_arn(reg, rec),
            "recordId": rec["recordId"],
            "name": rec["name"],
        }
        for key in ("description", "displayName"):
            if key in rec:
                out[key] = rec[key]
        out.update(
            {
                "recordType": rec["recordType"],
                "recordVersion": rec["recordVersion"],
                "status": rec["status"],
                "createdAt": rec["createdAt"],
                "updatedAt": rec["updatedAt"],
                "descriptorTypes": descriptor_types(rec),
            }
        )
        return out

    def control_record_summary(self, reg: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
        """Control-plane RegistryRecordSummary (ListRegistryRecords).

        Required (control serde_util.rs registry_record_summary_correct_errors): registryArn,
        recordArn, recordId, name, recordType, recordVersion, status, createdAt, updatedAt.
        """
        out: dict[str, Any] = {
            "registryArn": self.registry_arn(reg),
            "recordArn": self.record_arn(reg, rec),
            "recordId": rec["recordId"],
            "name": rec["name"],
        }
        for key in ("displayName", "description"):
            if key in rec:
                out[key] = rec[key]
        out.update(
            {
                "recordType": rec["recordType"],
                "recordVersion": rec["recordVersion"],
                "status": rec["status"],
                "createdAt": rec["createdAt"],
                "updatedAt": rec["updatedAt"],
            }
        )
        for key in ("createdByAutoDetection", "createdBy", "customMetadataSchemaComplianceStatus"):
            if key in rec:
                out[key] = rec[key]
        if rec.get("provenance"):
            out["provenanceSummaryList"] = [
                {k: p[k] for k in ("relation", "sourceId", "sourceType") if k in p} for p in rec["provenance"]
            ]
        return out

    def control_record(self, reg: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
        """GetRegistryRecord output.

        Required (control serde_util.rs get_registry_record_output_output_correct_errors):
        registryArn, recordArn, recordId, name, recordType, status, createdAt, updatedAt.
        """
        out = self.control_record_summary(reg, rec)
        out.pop("provenanceSummaryList", None)
        out["descriptors"] = copy.deepcopy(rec.get("descriptors", {}))
        for key in ("statusReason", "provenance", "customMetadata"):
            if key in rec:
                out[key] = copy.deepcopy(rec[key])
        return out

    def registry_summary(self, reg: dict[str, Any]) -> dict[str, Any]:
        """Control-plane RegistrySummary (ListRegistries).

        Required (control serde_util.rs registry_summary_correct_errors): name, registryId,
        registryArn, status, createdAt, updatedAt.
        """
        out: dict[str, Any] = {"name": reg["name"]}
        if "description" in reg:
            out["description"] = reg["description"]
        out["registryId"] = reg["registryId"]
        out["registryArn"] = self.registry_arn(reg)
        out["discoveryConfiguration"] = discovery_configuration(reg)
        out["status"] = reg["status"]
        if "statusReason" in reg:
            out["statusReason"] = reg["statusReason"]
        out["createdAt"] = reg["createdAt"]
        out["updatedAt"] = reg["updatedAt"]
        return out

    def registry_detail(self, reg: dict[str, Any]) -> dict[str, Any]:
        """GetRegistry output (same required members as RegistrySummary, get_registry_output_output_correct_errors)."""
        out = self.registry_summary(reg)
        if "approvalConfiguration" in reg:
            out["approvalConfiguration"] = copy.deepcopy(reg["approvalConfiguration"])
        if "customMetadataSchemaConfiguration" in reg:
            out["customMetadataSchemaConfiguration"] = copy.deepcopy(reg["customMetadataSchemaConfiguration"])
        return out


def discovery_configuration(reg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"authorizerType": reg["authorizerType"]}
    if "authorizerConfiguration" in reg:
        out["authorizerConfiguration"] = copy.deepcopy(reg["authorizerConfiguration"])
    return out


def descriptor_types(rec: dict[str, Any]) -> list[str]:
    return [key for key in DESCRIPTOR_KEYS if key in rec.get("descriptors", {})]


def approved(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["status"] == "APPROVED"]


def creation_order(items: Iterable[dict[str, Any]], id_key: str) -> list[dict[str, Any]]:
    return sorted(items, key=lambda x: (x["createdAt"], x[id_key]))


# ---------------------------------------------------------------------------------------------
# Request helpers
# ---------------------------------------------------------------------------------------------


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as err:
        raise validation(f"Could not parse request body as JSON: {err}", reason="CannotParse") from err
    if not isinstance(body, dict):
        raise validation("Request body must be a JSON object", reason="CannotParse")
    return body


def check_registry_identifier(value: Any, field: str) -> str:
    if not isinstance(value, str) or not (1 <= len(value) <= 2048) or not (
        RE_REGISTRY_ID.fullmatch(value) or RE_REGISTRY_ARN.fullmatch(value)
    ):
        raise validation(
            f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy "
            r"regular expression pattern: (arn:aws(-[^:]+)?:agent-registry:[a-z0-9-]+:[0-9]{12}:registry/)?[a-zA-Z0-9]{12,16}",
            field,
        )
    return value


def check_record_identifier(value: Any, field: str) -> str:
    if not isinstance(value, str) or not (RE_RECORD_ID.fullmatch(value) or RE_RECORD_ARN.fullmatch(value)):
        raise validation(
            f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy "
            r"regular expression pattern: (arn:aws(-[^:]+)?:agent-registry:[a-z0-9-]+:[0-9]{12}:registry/[a-zA-Z0-9]{12,16}/record/)?[a-zA-Z0-9]{12}",
            field,
        )
    return value


def check_max_results(body: dict[str, Any], upper: int, default: int) -> int:
    value = body.get("maxResults")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not (1 <= value <= upper):
        raise validation(
            f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value between 1 and {upper}",
            "maxResults",
        )
    return value


def encode_token(scope: str, offset: int) -> str:
    raw = json.dumps({"scope": scope, "offset": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: Any, scope: str) -> int:
    if token is None:
        return 0
    if not isinstance(token, str) or not token:
        raise validation("Invalid nextToken", "nextToken")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = data["offset"]
        ok = data["scope"] == scope and isinstance(offset, int) and offset >= 0
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise validation("Invalid nextToken: it was not issued for this request", "nextToken")
    return offset


def page(items: list[Any], scope: str, token: Any, max_results: int) -> tuple[list[Any], str | None]:
    offset = decode_token(token, scope)
    if offset > len(items):
        raise validation("Invalid nextToken", "nextToken")
    chunk = items[offset : offset + max_results]
    end = offset + len(chunk)
    return chunk, (encode_token(scope, end) if end < len(items) else None)


# ---------------------------------------------------------------------------------------------
# Search
# ---------------------------------------------------------------------------------------------

SEARCH_FIELDS = ("name", "recordType", "recordVersion")


def compile_search_filter(node: Any, path: str = "filters") -> Callable[[dict[str, Any]], bool]:
    """The metadata filter document: $eq $ne $in on fields, $and $or to combine."""
    if not isinstance(node, dict) or not node:
        raise validation(f"Invalid filter at {path}: expected a non-empty object", "filters")
    preds: list[Callable[[dict[str, Any]], bool]] = []
    for key, value in node.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise validation(f"Invalid filter at {path}.{key}: expected a non-empty array of filters", "filters")
            subs = [compile_search_filter(v, f"{path}.{key}[{i}]") for i, v in enumerate(value)]
            if key == "$and":
                preds.append(lambda rec, subs=subs: all(s(rec) for s in subs))
            else:
                preds.append(lambda rec, subs=subs: any(s(rec) for s in subs))
            continue
        if key.startswith("$"):
            raise validation(f"Invalid filter at {path}: unsupported logical operator {key!r} (use $and or $or)", "filters")
        is_meta = key.startswith("customMetadata.") and len(key) > len("customMetadata.")
        if key not in SEARCH_FIELDS and not is_meta:
            raise validation(
                f"Invalid filter at {path}: unsupported field {key!r}; filterable fields are name, recordType, "
                "recordVersion and customMetadata.<key>",
                "filters",
            )
        if not isinstance(value, dict) or len(value) != 1:
            raise validation(f"Invalid filter at {path}.{key}: expected exactly one of $eq, $ne, $in", "filters")
        (op, operand), = value.items()
        allowed = (str, bool) if is_meta else (str,)

        def scalar_ok(v: Any) -> bool:
            return isinstance(v, allowed) and (not isinstance(v, str) or len(v) > 0)

        if op in ("$eq", "$ne"):
            if not scalar_ok(operand):
                raise validation(f"Invalid filter at {path}.{key}.{op}: expected a {'string or boolean' if is_meta else 'string'}", "filters")
        elif op == "$in":
            if not isinstance(operand, list) or not operand or not all(scalar_ok(v) for v in operand):
                raise validation(f"Invalid filter at {path}.{key}.$in: expected a non-empty array of values", "filters")
        else:
            raise validation(f"Invalid filter at {path}.{key}: unsupported operator {op!r} (use $eq, $ne or $in)", "filters")

        def getter(rec: dict[str, Any], key: str = key, is_meta: bool = is_meta) -> Any:
            if is_meta:
                return rec.get("customMetadata", {}).get(key[len("customMetadata."):])
            return rec.get(key)

        def same(a: Any, b: Any) -> bool:
            return type(a) is type(b) and a == b

        if op == "$eq":
            preds.append(lambda rec, g=getter, o=operand: same(g(rec), o))
        elif op == "$ne":
            preds.append(lambda rec, g=getter, o=operand: not same(g(rec), o))
        else:
            preds.append(lambda rec, g=getter, o=operand: any(same(g(rec), v) for v in o))
    return lambda rec: all(p(rec) for p in preds)


def query_terms(query: str) -> list[str]:
    terms = []
    for term in re.findall(r"[a-z0-9]+", query.lower()):
        if len(term) >= 2 and term not in STOPWORDS and term not in terms:
            terms.append(term)
    return terms


def descriptor_text(node: Any) -> str:
    if isinstance(node, dict):
        return " ".join(descriptor_text(v) for v in node.values())
    if isinstance(node, list):
        return " ".join(descriptor_text(v) for v in node)
    return str(node) if isinstance(node, str) else ""


def score(rec: dict[str, Any], terms: list[str]) -> int:
    """Name hits weigh 3, displayName 2, description and descriptor text 1 each."""
    fields = (
        (rec["name"].lower(), 3),
        (rec.get("displayName", "").lower(), 2),
        (rec.get("description", "").lower(), 1),
        (descriptor_text(rec.get("descriptors", {})).lower(), 1),
    )
    return sum(weight for term in terms for text, weight in fields if term in text)


# ---------------------------------------------------------------------------------------------
# The application
# ---------------------------------------------------------------------------------------------


@dataclass
class Fault:
    operation: str
    registry: str | None
    status: int  # 0: no error, only the delay
    error_type: str | None
    message: str
    body: str | None
    content_type: str | None
    delay_ms: int
    times: int

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Fault:
        operation = spec.get("operation")
        if operation not in DATA_OPERATIONS + CONTROL_OPERATIONS:
            raise BadRequest(f"operation must be one of {', '.join(DATA_OPERATIONS + CONTROL_OPERATIONS)}")
        registry = spec.get("registry")
        if registry is not None and (not isinstance(registry, str) or not registry):
            raise BadRequest("registry must be a registry id, ARN or name")
        body, error_type = spec.get("body"), spec.get("error_type")
        if error_type is not None and not isinstance(error_type, str):
            raise BadRequest("error_type must be a string")
        default_status = 200 if body is not None else ERROR_STATUS.get(error_type, 400) if error_type else 0
        fault = cls(
            operation=operation,
            registry=registry,
            status=spec.get("status", default_status),
            error_type=error_type,
            message=spec.get("message", f"Injected {error_type}" if error_type else ""),
            body=body,
            content_type=spec.get("content_type"),
            delay_ms=spec.get("delay_ms", 0),
            times=spec.get("times", 1),
        )
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (fault.status, fault.times, fault.delay_ms)):
            raise BadRequest("status, times and delay_ms must be integers")
        if fault.times < 1 or fault.delay_ms < 0:
            raise BadRequest("times must be >= 1 and delay_ms >= 0")
        if not isinstance(fault.message, str):
            raise BadRequest("message must be a string")
        if fault.status == 0 and (body is not None or error_type):
            raise BadRequest("status 0 (delay only) cannot carry a body or an error_type")
        if fault.status != 0 and body is None and not error_type:
            raise BadRequest("a fault needs an error_type or a body (or status 0 with delay_ms)")
        if fault.status == 0 and fault.delay_ms == 0:
            raise BadRequest("this fault does nothing: give an error_type, a body, or status 0 with delay_ms > 0")
        if body is not None and error_type:
            raise BadRequest("give either error_type or body, not both")
        if body is not None and not isinstance(body, str):
            raise BadRequest("body must be a string (sent as is)")
        return fault

    def matches(self, operation: str, registry_id: str | None, catalog: Catalog) -> bool:
        if operation != self.operation:
            return False
        if self.registry is None:
            return True
        if registry_id is None:
            return False
        reg = catalog.by_id.get(registry_id)
        names = {registry_id}
        if reg is not None:
            names |= {reg["name"], catalog.registry_arn(reg)}
        return self.registry in names

    def response(self, request_id: str) -> Response:
        headers = {"x-amzn-RequestId": request_id}
        if self.body is not None:
            return Response(self.body, self.status, headers, content_type=self.content_type or "application/json")
        err = ApiError(self.error_type or "", self.message, self.status)
        if self.error_type == "ValidationException":
            err.extra = {"reason": "FieldValidationFailed"}
        return error_response(err, request_id)


@dataclass
class Call:
    operation: str
    handler: Callable[..., dict[str, Any]]
    params: dict[str, str]


class RegistryEmulator:
    """WSGI app: both Agent Registry planes plus /_emulator/* test controls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.catalog = Catalog.load(default_catalog())
        self.calls: dict[str, int] = {}
        self.faults: list[Fault] = []
        self.latency_ms = 0
        self.requests: list[dict[str, Any]] = []

    # --- routing --------------------------------------------------------------------------

    def route(self, method: str, raw_path: str) -> Call | None:
        # Labels are percent-encoded by the SDK (aws-smithy-http label::fmt_string, Default
        # strategy: ':' and '/' too), so split the raw path first and decode each segment.
        segments = [unquote(s) for s in raw_path.split("?", 1)[0].split("/")[1:]]
        if method == "POST":
            if segments == ["discoverable-records-search"]:
                return Call("SearchDiscoverableRegistryRecords", self.search, {})
            if segments == ["discoverable-records-batch"]:
                return Call("BatchGetDiscoverableRegistryRecord", self.batch_get, {})
            if segments == ["registries-list"]:
                return Call("ListRegistries", self.list_registries, {})
            if len(segments) == 3 and segments[0] == "registries" and segments[1]:
                if segments[2] == "discoverable-records-list":
                    return Call("ListDiscoverableRegistryRecords", self.list_discoverable, {"registryId": segments[1]})
                if segments[2] == "records-list":
                    return Call("ListRegistryRecords", self.list_registry_records, {"registryId": segments[1]})
        if method == "GET" and segments and segments[0] == "registries":
            if len(segments) == 2 and segments[1]:
                return Call("GetRegistry", self.get_registry, {"registryId": segments[1]})
            if len(segments) == 4 and segments[1] and segments[2] == "records" and segments[3]:
                return Call("GetRegistryRecord", self.get_registry_record, {"registryId": segments[1], "recordId": segments[3]})
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith("/_emulator/"):
            return self.control(request)(environ, start_response)
        request_id = str(uuid.uuid4())
        raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.path
        call = self.route(request.method, raw_path)
        if call is None:
            err = ApiError("UnknownOperationException", f"No operation matches {request.method} {request.path}", 404)
            return error_response(err, request_id)(environ, start_response)

        raw = request.get_data()
        catalog = self.catalog
        registry_key = self._registry_key(call, raw, catalog)
        with self.lock:
            self.calls[call.operation] = self.calls.get(call.operation, 0) + 1
            if registry_key is not None:
                key = f"{call.operation}:{registry_key}"
                self.calls[key] = self.calls.get(key, 0) + 1
            fault = self._take_fault(call.operation, registry_key, catalog)
            delay_ms = self.latency_ms + (fault.delay_ms if fault else 0)
            self.requests.append(
                {
                    "operation": call.operation,
                    "registry": registry_key,
                    "method": request.method,
                    "path": raw_path,
                    "authorization": auth_scheme(request.headers.get("Authorization")),
                    "body": raw.decode("utf-8", "replace"),
                }
            )
            del self.requests[:-500]
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if fault and fault.status != 0:
            return fault.response(request_id)(environ, start_response)
        try:
            body = parse_body(raw) if request.method == "POST" else {}
            result = call.handler(catalog, request, body, **call.params)
            response = ok_response(result, request_id)
        except ApiError as err:
            response = error_response(err, request_id)
        return response(environ, start_response)

    def _registry_key(self, call: Call, raw: bytes, catalog: Catalog) -> str | None:
        if "registryId" in call.params:
            return catalog.registry_key(call.params["registryId"])
        if call.operation in ("SearchDiscoverableRegistryRecords", "BatchGetDiscoverableRegistryRecord"):
            try:
                body = json.loads(raw or b"{}")
                if call.operation == "SearchDiscoverableRegistryRecords":
                    ids = body.get("registryIds")
                    return catalog.registry_key(ids[0]) if isinstance(ids, list) and ids else None
                entries = body.get("entries")
                return catalog.registry_key(entries[0].get("registryId")) if isinstance(entries, list) and entries else None
            except (ValueError, AttributeError, TypeError):
                return None
        return None

    def _take_fault(self, operation: str, registry_id: str | None, catalog: Catalog) -> Fault | None:
        for i, fault in enumerate(self.faults):
            if fault.matches(operation, registry_id, catalog):
                fault.times -= 1
                if fault.times == 0:
                    self.faults.pop(i)
                return fault
        return None

    # --- shared checks --------------------------------------------------------------------

    @staticmethod
    def registry_or_404(catalog: Catalog, identifier: str) -> dict[str, Any]:
        reg = catalog.lookup_registry(identifier)
        if reg is None:
            raise not_found(f"Registry not found: {identifier}")
        return reg

    @staticmethod
    def check_discovery_auth(reg: dict[str, Any], request: Request) -> None:
        """Data-plane authorization check by the registry's authorizer type.

        CUSTOM_JWT registries take `Authorization: Bearer <jwt>` only; a SigV4-signed request (what
        the Rust SDK sends: its auth resolver offers SigV4 only) or no token at all gets the
        modeled UnauthorizedException (401). AWS_IAM registries reject bearer tokens the same way;
        unsigned requests are let through (signatures are never checked, as in moto).
        """
        header = request.headers.get("Authorization", "")
        scheme = auth_scheme(header)
        rid = reg["registryId"]
        if reg["authorizerType"] == "CUSTOM_JWT":
            if scheme == "sigv4":
                raise ApiError(
                    "UnauthorizedException",
                    f"Registry {rid} uses CUSTOM_JWT authorization and requires a JWT bearer token "
                    "(Authorization: Bearer <token>); AWS SigV4-signed requests are not accepted.",
                    401,
                )
            if scheme != "bearer":
                raise ApiError(
                    "UnauthorizedException",
                    f"Registry {rid} uses CUSTOM_JWT authorization: the JWT bearer token is missing.",
                    401,
                )
            token = header.split(None, 1)[1].strip() if len(header.split(None, 1)) == 2 else ""
            allowed = reg.get("bearerTokens")
            if not token or (allowed is not None and token not in allowed):
                raise ApiError("UnauthorizedException", f"The JWT bearer token is invalid for registry {rid}.", 401)
        elif scheme == "bearer":
            raise ApiError(
                "UnauthorizedException",
                f"Registry {rid} uses AWS_IAM authorization; sign the request with AWS SigV4 instead of a bearer token.",
                401,
            )

    # --- data plane -----------------------------------------------------------------------

    def search(self, catalog: Catalog, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        query = body.get("searchQuery")
        if query is None:
            raise validation("1 validation error detected: Value null at 'searchQuery' failed to satisfy constraint: Member must not be null", "searchQuery")
        if not isinstance(query, str) or not query.strip():
            raise validation(
                "1 validation error detected: Value at 'searchQuery' failed to satisfy constraint: "
                "Member must have length between 1 and 256 and must not be blank",
                "searchQuery",
            )
        if len(query) > SEARCH_QUERY_MAX:
            raise validation(
                "1 validation error detected: Value at 'searchQuery' failed to satisfy constraint: "
                f"Member must have length less than or equal to {SEARCH_QUERY_MAX}",
                "searchQuery",
            )
        ids = body.get("registryIds")
        if ids is None:
            raise validation("1 validation error detected: Value null at 'registryIds' failed to satisfy constraint: Member must not be null", "registryIds")
        if not isinstance(ids, list) or len(ids) != 1:
            raise validation(
                "1 validation error detected: Value at 'registryIds' failed to satisfy constraint: "
                "Member must have length less than or equal to 1 and greater than or equal to 1 "
                "(exactly one registry identifier is supported)",
                "registryIds",
            )
        check_registry_identifier(ids[0], "registryIds.member.1")
        max_results = check_max_results(body, SEARCH_MAX_RESULTS, SEARCH_DEFAULT_RESULTS)
        filt = compile_search_filter(body["filters"]) if body.get("filters") is not None else (lambda rec: True)
        reg = self.registry_or_404(catalog, ids[0])
        self.check_discovery_auth(reg, request)

        terms = query_terms(query)
        scored = []
        for rec in approved(reg["records"]):
            if not filt(rec):
                continue
            s = score(rec, terms)
            if s > 0:
                scored.append((s, rec))
        scored.sort(key=lambda x: (-x[0], x[1]["name"]))
        return {"registryRecords": [catalog.data_summary(reg, rec) for _, rec in scored[:max_results]]}

    def list_discoverable(self, catalog: Catalog, request: Request, body: dict[str, Any], registryId: str) -> dict[str, Any]:
        check_registry_identifier(registryId, "registryId")
        max_results = check_max_results(body, LIST_MAX_RESULTS, LIST_DEFAULT_RESULTS)
        filters = body.get("filters") or []
        if not isinstance(filters, list) or len(filters) > LIST_FILTERS_MAX:
            raise validation(f"filters must be a list of at most {LIST_FILTERS_MAX} filters", "filters")
        checks: list[tuple[str, list[str]]] = []
        for i, f in enumerate(filters):
            name = f.get("name") if isinstance(f, dict) else None
            values = f.get("values") if isinstance(f, dict) else None
            if name not in ("recordType", "descriptorType"):
                raise validation(
                    f"Value '{name}' at 'filters.{i + 1}.member.name' failed to satisfy constraint: "
                    "Member must satisfy enum value set: [recordType, descriptorType]",
                    f"filters.{i + 1}.member.name",
                )
            if (
                not isinstance(values, list) or not (1 <= len(values) <= DISCOVERABLE_FILTER_VALUES_MAX)
                or not all(isinstance(v, str) and 1 <= len(v) <= 255 for v in values)
            ):
                raise validation(
                    f"filters.{i + 1}.member.values must hold 1 to {DISCOVERABLE_FILTER_VALUES_MAX} strings of 1-255 characters",
                    f"filters.{i + 1}.member.values",
                )
            if name == "recordType":
                bad = [v for v in values if v not in RECORD_TYPES]
                if bad:
                    raise validation(f"Invalid recordType filter value(s) {bad}; valid: {', '.join(RECORD_TYPES)}", f"filters.{i + 1}.member.values")
            checks.append((name, values))
        reg = self.registry_or_404(catalog, registryId)
        self.check_discovery_auth(reg, request)

        def keep(rec: dict[str, Any]) -> bool:
            for name, values in checks:
                if name == "recordType" and rec["recordType"] not in values:
                    return False
                if name == "descriptorType" and not set(descriptor_types(rec)) & set(values):
                    return False
            return True

        items = [r for r in creation_order(approved(reg["records"]), "recordId") if keep(r)]
        chunk, token = page(items, f"ListDiscoverableRegistryRecords/{reg['registryId']}", body.get("nextToken"), max_results)
        out: dict[str, Any] = {"registryRecords": [catalog.discoverable_summary(reg, r) for r in chunk]}
        if token:
            out["nextToken"] = token
        return out

    def batch_get(self, catalog: Catalog, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        entries = body.get("entries")
        if entries is None:
            raise validation("1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null", "entries")
        if not isinstance(entries, list) or len(entries) != 1:
            raise validation(
                "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length "
                "less than or equal to 1 and greater than or equal to 1 (exactly one entry is supported)",
                "entries",
            )
        entry = entries[0]
        if not isinstance(entry, dict):
            raise validation("entries.member.1 must be an object", "entries.member.1")
        registry_id = check_registry_identifier(entry.get("registryId"), "entries.member.1.registryId")
        record_ids = entry.get("recordIds")
        if not isinstance(record_ids, list) or not (1 <= len(record_ids) <= BATCH_RECORD_IDS_MAX):
            raise validation(
                f"1 validation error detected: Value at 'entries.1.member.recordIds' failed to satisfy constraint: "
                f"Member must have length less than or equal to {BATCH_RECORD_IDS_MAX} and greater than or equal to 1",
                "entries.member.1.recordIds",
            )
        for i, rid in enumerate(record_ids):
            check_record_identifier(rid, f"entries.member.1.recordIds.member.{i + 1}")
        reg = self.registry_or_404(catalog, registry_id)
        self.check_discovery_auth(reg, request)

        by_id = {r["recordId"]: r for r in reg["records"]}
        found: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        for rid in record_ids:
            m = RE_RECORD_ARN.fullmatch(rid)
            rec = None
            if m is None:
                rec = by_id.get(rid)
            elif record_arn_in(m, reg, catalog):
                rec = by_id.get(m.group(5))
            if rec is None or rec["status"] != "APPROVED":
                errors.append(
                    {
                        "registryId": registry_id,
                        "recordId": rid,
                        "errorCode": "RESOURCE_NOT_FOUND",
                        "message": f"Registry record {rid} was not found or is not discoverable in registry {reg['registryId']}",
                    }
                )
                continue
            if rec["recordId"] in seen:
                continue
            seen.add(rec["recordId"])
            found.append(catalog.data_summary(reg, rec))
        # Both members are required (serde_util.rs batch_get_..._output_output_correct_errors).
        return {"registryRecords": found, "errors": errors}

    # --- control plane --------------------------------------------------------------------

    @staticmethod
    def control_filters(body: dict[str, Any], names: dict[str, tuple[str, ...] | None]) -> list[tuple[str, str]]:
        filters = body.get("filters") or []
        if not isinstance(filters, list) or len(filters) > LIST_FILTERS_MAX:
            raise validation(f"filters must be a list of at most {LIST_FILTERS_MAX} filters", "filters")
        out = []
        for i, f in enumerate(filters):
            name = f.get("name") if isinstance(f, dict) else None
            values = f.get("values") if isinstance(f, dict) else None
            if name not in names:
                raise validation(
                    f"Value '{name}' at 'filters.{i + 1}.member.name' failed to satisfy constraint: "
                    f"Member must satisfy enum value set: [{', '.join(names)}]",
                    f"filters.{i + 1}.member.name",
                )
            if not isinstance(values, list) or len(values) != CONTROL_FILTER_VALUES_MAX or not all(
                isinstance(v, str) and 1 <= len(v) <= 255 for v in values
            ):
                raise validation(
                    f"1 validation error detected: Value at 'filters.{i + 1}.member.values' failed to satisfy constraint: "
                    "Member must have length less than or equal to 1 and greater than or equal to 1",
                    f"filters.{i + 1}.member.values",
                )
            allowed = names[name]
            if allowed is not None and values[0] not in allowed:
                raise validation(
                    f"Value '{values[0]}' at 'filters.{i + 1}.member.values.1' failed to satisfy constraint: "
                    f"Member must satisfy enum value set: [{', '.join(allowed)}]",
                    f"filters.{i + 1}.member.values",
                )
            out.append((name, values[0]))
        return out

    def list_registries(self, catalog: Catalog, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        max_results = check_max_results(body, LIST_MAX_RESULTS, LIST_DEFAULT_RESULTS)
        filters = self.control_filters(body, {"status": REGISTRY_STATUSES, "discoveryConfiguration.authorizerType": AUTHORIZER_TYPES})

        def keep(reg: dict[str, Any]) -> bool:
            for name, value in filters:
                actual = reg["status"] if name == "status" else reg["authorizerType"]
                if actual != value:
                    return False
            return True

        items = [r for r in creation_order(catalog.registries, "registryId") if keep(r)]
        chunk, token = page(items, "ListRegistries", body.get("nextToken"), max_results)
        out: dict[str, Any] = {"registries": [catalog.registry_summary(r) for r in chunk]}
        if token:
            out["nextToken"] = token
        return out

    def get_registry(self, catalog: Catalog, request: Request, body: dict[str, Any], registryId: str) -> dict[str, Any]:
        check_registry_identifier(registryId, "registryId")
        return catalog.registry_detail(self.registry_or_404(catalog, registryId))

    def list_registry_records(self, catalog: Catalog, request: Request, body: dict[str, Any], registryId: str) -> dict[str, Any]:
        check_registry_identifier(registryId, "registryId")
        max_results = check_max_results(body, LIST_MAX_RESULTS, LIST_DEFAULT_RESULTS)
        filters = self.control_filters(body, {"name": None, "status": RECORD_STATUSES, "recordType": RECORD_TYPES})
        reg = self.registry_or_404(catalog, registryId)

        def keep(rec: dict[str, Any]) -> bool:
            return all(rec[name] == value for name, value in filters)

        items = [r for r in creation_order(reg["records"], "recordId") if keep(r)]
        chunk, token = page(items, f"ListRegistryRecords/{reg['registryId']}", body.get("nextToken"), max_results)
        out: dict[str, Any] = {"registryRecords": [catalog.control_record_summary(reg, r) for r in chunk]}
        if token:
            out["nextToken"] = token
        return out

    def get_registry_record(self, catalog: Catalog, request: Request, body: dict[str, Any], registryId: str, recordId: str) -> dict[str, Any]:
        check_registry_identifier(registryId, "registryId")
        check_record_identifier(recordId, "recordId")
        reg = self.registry_or_404(catalog, registryId)
        m = RE_RECORD_ARN.fullmatch(recordId)
        rid = recordId
        if m is not None:
            if not record_arn_in(m, reg, catalog):
                raise not_found(f"Registry record not found: {recordId}")
            rid = m.group(5)
        rec = next((r for r in reg["records"] if r["recordId"] == rid), None)
        if rec is None:
            raise not_found(f"Registry record {rid} not found in registry {reg['registryId']}")
        return catalog.control_record(reg, rec)

    # --- /_emulator/* ---------------------------------------------------------------------

    def reset(self) -> None:
        catalog = Catalog.load(default_catalog())
        with self.lock:
            self.catalog = catalog
            self.calls.clear()
            self.faults.clear()
            self.latency_ms = 0
            self.requests.clear()

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
        if route == ("GET", "/_emulator/requests"):
            with self.lock:
                return json_response(list(self.requests))
        if route == ("POST", "/_emulator/reset"):
            self.reset()
            return json_response({"status": "ok"})
        if route == ("GET", "/_emulator/catalog"):
            return json_response(self.catalog.to_json())
        if route == ("POST", "/_emulator/seed"):
            catalog = Catalog.load(json_body(request))
            with self.lock:
                self.catalog = catalog
            return json_response(
                {"status": "ok", "registries": len(catalog.registries), "records": sum(len(r["records"]) for r in catalog.registries)},
                201,
            )
        if route == ("POST", "/_emulator/faults"):
            fault = Fault.from_json(json_body(request))
            with self.lock:
                self.faults.append(fault)
            return json_response({"status": "ok"}, 201)
        if route == ("GET", "/_emulator/faults"):
            with self.lock:
                return json_response([vars(f) for f in self.faults])
        if route == ("DELETE", "/_emulator/faults"):
            with self.lock:
                self.faults.clear()
            return json_response({"status": "ok"})
        if route == ("POST", "/_emulator/latency"):
            ms = json_body(request).get("ms")
            if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
                raise BadRequest('expected {"ms": <non-negative integer>}')
            with self.lock:
                self.latency_ms = ms
            return json_response({"ms": ms})
        return json_response({"error": f"no such emulator endpoint: {request.method} {request.path}"}, 404)


def record_arn_in(m: re.Match[str], reg: dict[str, Any], catalog: Catalog) -> bool:
    """A matched record ARN names this registry (and the catalog's region and account)."""
    return m.group(4) == reg["registryId"] and m.group(2) == catalog.region and m.group(3) == catalog.account_id


def auth_scheme(header: str | None) -> str:
    if not header:
        return "none"
    if header.startswith("AWS4-HMAC-SHA256"):
        return "sigv4"
    if header[:7].lower() == "bearer ":
        return "bearer"
    return "other"


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
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--no-stdin-watch", action="store_true", help="do not exit on stdin EOF")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

    app = RegistryEmulator()
    server = make_server(args.host, args.port, app, threaded=True)
    server.daemon_threads = True

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if not args.no_stdin_watch and stdin_is_watchable():
        threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    threading.Thread(target=server.serve_forever, daemon=True).start()

    print(f"READY {server.server_port}", flush=True)
    # stdout carries the READY line only; a parent that stops reading stdout must not stall us.
    sys.stdout = sys.stderr

    stop.wait()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
