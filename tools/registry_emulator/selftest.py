"""Self-check of the Agent Registry emulator: starts it as a subprocess and drives it over raw HTTP.

    tools/.venv/bin/python tools/registry_emulator/selftest.py

Requests are the JSON the Rust SDK (aws-sdk-agentregistry / -control 1.17.0) sends. When the crate
sources are in the cargo registry (~/.cargo/registry/src/*/aws-sdk-agentregistry*-1.17.0), the
self-check also reads them:
- request paths come from the crate's URI templates (operation/<op>.rs), with labels
  percent-encoded as aws-smithy-http's label::fmt_string does;
- request body keys are checked against the crate's serializers (shape_<op>_input.rs);
- every answer is checked against the crate's deserializers: each key must be one the Rust SDK
  reads (protocol_serde/shape_*.rs), every member the SDK would otherwise fill with a default must
  be present (serde_util.rs *_correct_errors), enum values must be known variants (types/_*.rs),
  timestamps must be RFC 3339 strings (Format::DateTimeWithOffset), and error codes must be ones
  the operation's error parser maps to a typed error.
Without the crates those checks are skipped (said once) and the rest still runs.
botocore's agent-registry models in the venv drive a few cross-checks through real boto3 clients.

Prints one line per check and ends with "N passed, M failed"; exits non-zero on any failure.
Each check starts from POST /_emulator/reset.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

EMULATOR = Path(__file__).with_name("registry_emulator.py")
ACCOUNT = "123456789012"
REGION = "us-east-1"
PLATFORM, FINANCE, PARTNER, CREATING = "k3Xp9QmTz7Lw2RaB", "f7Nc2VbHq8Ds4JeM", "p4Tg6WyKc1Zr9HuS", "c9Lm3QaVx5Br"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/"
SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/agent-registry/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, Signature=0000"
)
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")

OPS_DATA = {
    "SearchDiscoverableRegistryRecords": "search_discoverable_registry_records",
    "ListDiscoverableRegistryRecords": "list_discoverable_registry_records",
    "BatchGetDiscoverableRegistryRecord": "batch_get_discoverable_registry_record",
}
OPS_CONTROL = {
    "ListRegistries": "list_registries",
    "GetRegistry": "get_registry",
    "ListRegistryRecords": "list_registry_records",
    "GetRegistryRecord": "get_registry_record",
}
# Used when the crate sources are not on this machine (same values as the crates' templates).
FALLBACK_ROUTES = {
    "SearchDiscoverableRegistryRecords": ("POST", "/discoverable-records-search"),
    "ListDiscoverableRegistryRecords": ("POST", "/registries/{registryId}/discoverable-records-list"),
    "BatchGetDiscoverableRegistryRecord": ("POST", "/discoverable-records-batch"),
    "ListRegistries": ("POST", "/registries-list"),
    "GetRegistry": ("GET", "/registries/{registryId}"),
    "ListRegistryRecords": ("POST", "/registries/{registryId}/records-list"),
    "GetRegistryRecord": ("GET", "/registries/{registryId}/records/{recordId}"),
}


# ---------------------------------------------------------------------------------------------
# The crates, read as a schema
# ---------------------------------------------------------------------------------------------


def find_crate(name: str) -> Path | None:
    cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    hits = sorted(glob.glob(os.path.join(cargo_home, "registry", "src", "*", f"{name}-1.17.0", "src")))
    return Path(hits[0]) if hits else None


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


class CrateModel:
    """Reads the generated serializers/deserializers of one SDK crate."""

    def __init__(self, src: Path):
        self.src = src
        self.serde_util = (src / "serde_util.rs").read_text()
        self._cache: dict[str, Any] = {}

    def text(self, rel: str) -> str:
        return (self.src / rel).read_text()

    def route(self, op_snake: str) -> tuple[str, str]:
        text = self.text(f"operation/{op_snake}.rs")
        template = re.search(r'::std::write!\(\s*output,\s*"([^"]+)"', text).group(1)
        method = re.search(r'builder\.method\("([A-Z]+)"\)', text).group(1)
        return method, template

    def input_keys(self, op_snake: str) -> set[str]:
        path = self.src / "protocol_serde" / f"shape_{op_snake}_input.rs"
        return set(re.findall(r'object\.key\("([A-Za-z0-9]+)"\)', path.read_text())) if path.exists() else set()

    def error_codes(self, op_snake: str) -> set[str]:
        return set(re.findall(r'^\s*"([A-Za-z]+Exception)" =>', self.text(f"protocol_serde/shape_{op_snake}.rs"), re.M))

    def _de_region(self, shape: str) -> str:
        text = self.text(f"protocol_serde/shape_{shape}.rs")
        m = re.search(rf"fn de_{shape}(_json_err)?(\(|<)", text)
        if m is None:
            raise AssertionError(f"crate: no deserializer for {shape}")
        return text[m.start():]

    def fields(self, shape: str) -> dict[str, tuple[str, str | None]]:
        """JSON key -> (kind, detail) for a structure/union deserializer."""
        key = ("fields", shape)
        if key in self._cache:
            return self._cache[key]
        region = self._de_region(shape)
        marks = list(re.finditer(r'^\s*"([A-Za-z0-9_]+)" =>', region, re.M))
        out: dict[str, tuple[str, str | None]] = {}
        for i, m in enumerate(marks):
            block = region[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(region)]
            if m.group(1).endswith("Exception"):
                continue
            if "DateTimeWithOffset" in block or "expect_timestamp_or_null" in block:
                out[m.group(1)] = ("timestamp", None)
            elif (c := re.search(r"crate::protocol_serde::shape_(\w+)::de_", block)) is not None:
                out[m.group(1)] = ("shape", c.group(1))
            elif "expect_document" in block:
                out[m.group(1)] = ("document", None)
            elif (e := re.search(r"crate::types::(\w+)::from", block)) is not None:
                out[m.group(1)] = ("enum", e.group(1))
            elif "expect_bool_or_null" in block:
                out[m.group(1)] = ("bool", None)
            elif "expect_number_or_null" in block:
                out[m.group(1)] = ("number", None)
            elif "expect_string_or_null" in block:
                out[m.group(1)] = ("string", None)
            else:
                raise AssertionError(f"crate: cannot classify {shape}.{m.group(1)}")
        self._cache[key] = out
        return out

    def is_list(self, shape: str) -> bool:
        return "StartArray" in self._de_region(shape)

    def list_member(self, shape: str) -> tuple[str, str | None]:
        region = self._de_region(shape)
        if (c := re.search(r"crate::protocol_serde::shape_(\w+)::de_", region)) is not None:
            return ("shape", c.group(1))
        if (e := re.search(r"crate::types::(\w+)::from", region)) is not None:
            return ("enum", e.group(1))
        return ("string", None)

    def required(self, shape: str, op_output: bool = False) -> set[str]:
        fn = f"{shape}_output_output_correct_errors" if op_output else f"{shape}_correct_errors"
        m = re.search(rf"fn {fn}\((.*?)\n}}", self.serde_util, re.S)
        return {camel(n) for n in re.findall(r"builder\.(\w+)\.is_none\(\)", m.group(1))} if m else set()

    def enum_values(self, type_name: str) -> set[str]:
        key = ("enum", type_name)
        if key not in self._cache:
            text = self.text(f"types/_{snake(type_name)}.rs")
            self._cache[key] = set(re.findall(rf'"([^"]+)" => {type_name}::', text))
        return self._cache[key]

    def validate(self, value: Any, shape: str, path: str, problems: list[str], op_output: bool = False) -> None:
        if self.is_list(shape):
            if not isinstance(value, list):
                problems.append(f"{path}: expected a JSON array")
                return
            kind, detail = self.list_member(shape)
            for i, item in enumerate(value):
                self.check_value(item, kind, detail, f"{path}[{i}]", problems)
            return
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a JSON object")
            return
        fields = self.fields(shape)
        for req in sorted(self.required(shape, op_output)):
            if req not in value:
                problems.append(f"{path}.{req}: required member missing (the SDK would fill a default)")
        for k, v in value.items():
            if k not in fields:
                problems.append(f"{path}.{k}: key not read by the Rust SDK deserializer of {shape}")
                continue
            kind, detail = fields[k]
            self.check_value(v, kind, detail, f"{path}.{k}", problems)

    def check_value(self, v: Any, kind: str, detail: str | None, path: str, problems: list[str]) -> None:
        if v is None:
            problems.append(f"{path}: null")
        elif kind == "timestamp":
            if not isinstance(v, str) or not RFC3339.fullmatch(v):
                problems.append(f"{path}: {v!r} is not an RFC 3339 date-time string")
        elif kind == "shape":
            self.validate(v, detail, path, problems)
        elif kind == "enum":
            if v not in self.enum_values(detail):
                problems.append(f"{path}: {v!r} is not a {detail} variant")
        elif kind == "bool":
            if not isinstance(v, bool):
                problems.append(f"{path}: expected a boolean")
        elif kind == "number":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                problems.append(f"{path}: expected a number")
        elif kind == "string":
            if not isinstance(v, str):
                problems.append(f"{path}: expected a string")


DATA_CRATE = find_crate("aws-sdk-agentregistry")
CONTROL_CRATE = find_crate("aws-sdk-agentregistrycontrol")
MODELS: dict[str, CrateModel] = {}
if DATA_CRATE and CONTROL_CRATE:
    data_model, control_model = CrateModel(DATA_CRATE), CrateModel(CONTROL_CRATE)
    MODELS = {**{op: data_model for op in OPS_DATA}, **{op: control_model for op in OPS_CONTROL}}
OP_SNAKE = {**OPS_DATA, **OPS_CONTROL}


# ---------------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------------

CHECKS: list[Callable[[Emulator], None]] = []


def check(fn: Callable[[Emulator], None]) -> Callable[[Emulator], None]:
    CHECKS.append(fn)
    return fn


class HttpAnswer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = body
        self.json = json.loads(body) if body else None


class Emulator:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(EMULATOR), "--port", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline()
        if not re.fullmatch(r"READY \d+\n", line):
            self.proc.kill()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.ready_line = line
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def http(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> HttpAnswer:
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return HttpAnswer(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as err:
            return HttpAnswer(err.code, dict(err.headers), err.read())

    def control(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http(method, "/_emulator/" + path, body)
        assert answer.status in (200, 201), (path, answer.status, answer.raw)
        return answer.json

    def aws(self, op: str, body: Any = None, headers: dict[str, str] | None = None, **labels: str) -> HttpAnswer:
        """One SDK-shaped call: the crate's method and URI template, labels encoded like the SDK."""
        model = MODELS.get(op)
        method, template = model.route(OP_SNAKE[op]) if model else FALLBACK_ROUTES[op]
        path = template
        for name, value in labels.items():
            path = path.replace("{" + name + "}", quote(value, safe=""))
        assert "{" not in path, f"unfilled label in {path}"
        if model and isinstance(body, dict):
            unknown = set(body) - model.input_keys(OP_SNAKE[op])
            assert not unknown, f"{op}: body keys {unknown} are not written by the SDK serializer"
        if method == "GET":
            body = None
        elif body is None:
            body = {}
        return self.http(method, path, body, headers)

    def ok(self, op: str, body: Any = None, headers: dict[str, str] | None = None, **labels: str) -> Any:
        answer = self.aws(op, body, headers, **labels)
        assert answer.status == 200, (op, answer.status, answer.headers.get("x-amzn-errortype"), answer.raw[:400])
        assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
        assert answer.headers.get("x-amzn-requestid"), "no x-amzn-RequestId"
        model = MODELS.get(op)
        if model:
            problems: list[str] = []
            model.validate(answer.json, OP_SNAKE[op], op, problems, op_output=True)
            assert not problems, "shape problems:\n  " + "\n  ".join(problems[:20])
        return answer.json

    def err(self, op: str, code: str, status: int, body: Any = None, headers: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
        answer = self.aws(op, body, headers, **labels)
        assert answer.status == status, (op, answer.status, answer.raw[:400])
        assert answer.headers.get("x-amzn-errortype") == code, (answer.headers.get("x-amzn-errortype"), code)
        assert isinstance(answer.json, dict) and isinstance(answer.json.get("message"), str) and answer.json["message"]
        model = MODELS.get(op)
        if model:
            assert code in model.error_codes(OP_SNAKE[op]), f"{code} is not modeled for {op}"
            problems: list[str] = []
            model.validate(answer.json, snake(code), code, problems)
            assert not problems, "error shape problems:\n  " + "\n  ".join(problems)
        if code == "ValidationException":
            assert answer.json.get("reason") in ("CannotParse", "FieldValidationFailed"), answer.json
        return answer.json

    def close(self) -> str:
        """SIGTERM; returns whatever stdout still carried after the READY line."""
        self.proc.send_signal(signal.SIGTERM)
        rest = self.proc.stdout.read()
        self.proc.wait(timeout=5)
        return rest


def search(query: str, registry: str = PLATFORM, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"searchQuery": query, "registryIds": [registry]}
    body.update(extra)
    return body


def names(records: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in records]


def registry_arn(rid: str) -> str:
    return f"arn:aws:agent-registry:{REGION}:{ACCOUNT}:registry/{rid}"


# ---------------------------------------------------------------------------------------------
# Checks: default catalog
# ---------------------------------------------------------------------------------------------


@check
def default_catalog_ids(emu: Emulator) -> None:
    cat = emu.control("GET", "catalog")
    regs = {r["name"]: r for r in cat["registries"]}
    assert {n: r["registryId"] for n, r in regs.items()} == {
        "platform-tools": PLATFORM, "finance-agents": FINANCE, "partner-catalog": PARTNER, "ml-experiments": CREATING,
    }
    assert [regs[n]["authorizerType"] for n in ("platform-tools", "finance-agents", "partner-catalog")] == ["AWS_IAM", "AWS_IAM", "CUSTOM_JWT"]
    assert regs["ml-experiments"]["status"] == "CREATING"
    statuses = {r["status"] for reg in cat["registries"] for r in reg["records"]}
    assert {"APPROVED", "DRAFT", "DEPRECATED"} <= statuses
    types = {r["recordType"] for reg in cat["registries"] for r in reg["records"]}
    assert types == {"MCP", "AGENT", "SKILL", "CUSTOM"}
    for reg in cat["registries"]:
        assert re.fullmatch(r"[a-zA-Z0-9]{12,16}", reg["registryId"])
        for r in reg["records"]:
            assert re.fullmatch(r"[a-zA-Z0-9]{12}", r["recordId"]), r["recordId"]
    roles = json.dumps(cat)
    for role in ("InvoiceAgentRole", "SupportBotRole", "DataScienceRole"):
        assert ROLE + role in roles, role


# ---------------------------------------------------------------------------------------------
# Checks: SearchDiscoverableRegistryRecords
# ---------------------------------------------------------------------------------------------


@check
def search_basic_and_shape(emu: Emulator) -> None:
    out = emu.ok("SearchDiscoverableRegistryRecords", search("invoice processing", FINANCE, maxResults=5))
    recs = out["registryRecords"]
    assert recs and recs[0]["name"] == "invoice-processing-agent", names(recs)
    top = recs[0]
    assert top["registryArn"] == registry_arn(FINANCE)
    assert top["recordArn"] == registry_arn(FINANCE) + "/record/FinvPr0cAg1a"
    assert top["recordType"] == "AGENT" and top["status"] == "APPROVED" and top["recordVersion"] == "2.3.1"
    assert top["createdAt"] == "2026-08-18T08:12:55.410Z"
    assert top["customMetadata"] == {"iamRoleArn": ROLE + "InvoiceAgentRole", "team": "finance-apps", "environment": "production"}
    card = json.loads(top["descriptors"]["a2aAgentCard"]["data"])
    assert card["name"] == "Invoice Processing Agent" and card["url"].startswith("https://")
    assert [s["id"] for s in card["skills"]] == ["extract-invoice", "match-purchase-order", "post-to-ledger"]
    assert all(r["status"] == "APPROVED" for r in recs)
    assert set(out) == {"registryRecords"}


@check
def search_mcp_descriptor_content(emu: Emulator) -> None:
    recs = emu.ok("SearchDiscoverableRegistryRecords", search("cost explorer"))["registryRecords"]
    assert recs[0]["name"] == "cost-explorer-mcp", names(recs)
    mcp = recs[0]["descriptors"]["mcpServer"]
    server = json.loads(mcp["data"])
    assert server["remotes"] == [{"type": "streamable-http", "url": "https://mcp.platform.acme.example/cost-explorer/mcp"}]
    tools = json.loads(mcp["additionalData"]["tools"]["data"])["tools"]
    assert [t["name"] for t in tools] == ["get_cost_and_usage", "get_cost_forecast", "list_cost_allocation_tags"]
    assert all(t["description"] for t in tools)


@check
def search_only_approved(emu: Emulator) -> None:
    assert emu.ok("SearchDiscoverableRegistryRecords", search("runbooks"))["registryRecords"] == []  # DRAFT record
    got = names(emu.ok("SearchDiscoverableRegistryRecords", search("price sheet pricing"))["registryRecords"])
    assert "legacy-pricing-mcp" not in got, got  # DEPRECATED
    got = names(emu.ok("SearchDiscoverableRegistryRecords", search("budget forecast departmental", FINANCE))["registryRecords"])
    assert "budget-forecaster" not in got, got  # DRAFT


@check
def search_relevance_name_outranks_description(emu: Emulator) -> None:
    recs = emu.ok("SearchDiscoverableRegistryRecords", search("ledger", FINANCE))["registryRecords"]
    got = names(recs)
    assert got[0] == "erp-ledger-mcp" and "invoice-processing-agent" in got, got
    assert emu.ok("SearchDiscoverableRegistryRecords", search("zzzunmatched"))["registryRecords"] == []


@check
def search_by_registry_arn_and_max_results(emu: Emulator) -> None:
    recs = emu.ok("SearchDiscoverableRegistryRecords", search("production agent mcp", registry_arn(PLATFORM)))["registryRecords"]
    assert len(recs) >= 3
    one = emu.ok("SearchDiscoverableRegistryRecords", search("production agent mcp", PLATFORM, maxResults=1))["registryRecords"]
    assert len(one) == 1 and one[0]["name"] == recs[0]["name"]
    emu.ok("SearchDiscoverableRegistryRecords", search("agent", PLATFORM, maxResults=20))


@check
def search_validation_errors(emu: Emulator) -> None:
    op = "SearchDiscoverableRegistryRecords"
    for bad in (0, 21, -1, "5", True):
        emu.err(op, "ValidationException", 400, search("invoice", FINANCE, maxResults=bad))
    for q in ("", "   ", "x" * 257):
        emu.err(op, "ValidationException", 400, search(q, FINANCE))
    emu.ok(op, search("x" * 256, FINANCE))
    emu.err(op, "ValidationException", 400, {"registryIds": [FINANCE]})
    emu.err(op, "ValidationException", 400, {"searchQuery": "invoice"})
    emu.err(op, "ValidationException", 400, {"searchQuery": "invoice", "registryIds": []})
    emu.err(op, "ValidationException", 400, {"searchQuery": "invoice", "registryIds": [FINANCE, PLATFORM]})
    body = emu.err(op, "ValidationException", 400, search("invoice", "not-a-registry!"))
    assert body["reason"] == "FieldValidationFailed" and body["fieldList"][0]["name"].startswith("registryIds"), body
    body = emu.err(op, "ValidationException", 400, b"{not json")
    assert body["reason"] == "CannotParse"


@check
def search_unknown_registry_404(emu: Emulator) -> None:
    op = "SearchDiscoverableRegistryRecords"
    body = emu.err(op, "ResourceNotFoundException", 404, search("invoice", "Zz9Zz9Zz9Zz9"))
    assert "Zz9Zz9Zz9Zz9" in body["message"]
    emu.err(op, "ResourceNotFoundException", 404, search("invoice", f"arn:aws:agent-registry:{REGION}:999999999999:registry/{FINANCE}"))


@check
def search_filters(emu: Emulator) -> None:
    op = "SearchDiscoverableRegistryRecords"
    q = "production staging finance invoice ledger ocr agent mcp skill"

    def run(filters: Any, registry: str = FINANCE) -> list[str]:
        return sorted(names(emu.ok(op, search(q, registry, maxResults=20, filters=filters))["registryRecords"]))

    everything = sorted(names(emu.ok(op, search(q, FINANCE, maxResults=20))["registryRecords"]))
    assert everything == ["erp-ledger-mcp", "invoice-matching", "invoice-ocr-mcp", "invoice-processing-agent"], everything
    assert run({"recordType": {"$eq": "MCP"}}) == ["erp-ledger-mcp", "invoice-ocr-mcp"]
    assert run({"recordType": {"$ne": "MCP"}}) == ["invoice-matching", "invoice-processing-agent"]
    assert run({"recordType": {"$in": ["AGENT", "SKILL"]}}) == ["invoice-matching", "invoice-processing-agent"]
    assert run({"$and": [{"recordType": {"$eq": "MCP"}}, {"name": {"$eq": "erp-ledger-mcp"}}]}) == ["erp-ledger-mcp"]
    assert run({"$or": [{"name": {"$eq": "invoice-matching"}}, {"recordVersion": {"$eq": "0.8.2"}}]}) == ["invoice-matching", "invoice-ocr-mcp"]
    assert run({"customMetadata.environment": {"$eq": "staging"}}) == ["invoice-ocr-mcp"]
    assert run({"customMetadata.environment": {"$ne": "staging"}}) == ["erp-ledger-mcp", "invoice-matching", "invoice-processing-agent"]
    assert run({"customMetadata.requiresApproval": {"$eq": True}}) == ["erp-ledger-mcp"]
    assert run({"customMetadata.iamRoleArn": {"$eq": ROLE + "InvoiceAgentRole"}}) == ["erp-ledger-mcp", "invoice-ocr-mcp", "invoice-processing-agent"]
    got = sorted(names(emu.ok(op, search("support data science jira", PLATFORM, filters={"customMetadata.iamRoleArn": {"$in": [ROLE + "SupportBotRole", ROLE + "DataScienceRole"]}}))["registryRecords"]))
    assert got == ["data-science-assistant", "jira-issues-mcp"], got
    for bad in (
        {"recordType": {"$gt": "MCP"}},
        {"descriptorType": {"$eq": "MCP"}},
        {"name": {"$eq": True}},
        {"$nor": [{"name": {"$eq": "x"}}]},
        {"$and": []},
        {"recordType": "MCP"},
        {"recordType": {"$in": []}},
        [],
        "recordType=MCP",
    ):
        emu.err(op, "ValidationException", 400, search(q, FINANCE, filters=bad))


@check
def search_malformed_descriptor_is_returned_as_is(emu: Emulator) -> None:
    recs = emu.ok("SearchDiscoverableRegistryRecords", search("geocoding"))["registryRecords"]
    assert names(recs) == ["geo-lookup-mcp"], names(recs)
    data = recs[0]["descriptors"]["mcpServer"]["data"]
    try:
        json.loads(data)
    except ValueError:
        return
    raise AssertionError("geo-lookup-mcp descriptor data should be invalid JSON")


@check
def search_creating_registry_is_empty(emu: Emulator) -> None:
    assert emu.ok("SearchDiscoverableRegistryRecords", search("experiment", CREATING))["registryRecords"] == []


@check
def custom_jwt_registry_auth(emu: Emulator) -> None:
    op = "SearchDiscoverableRegistryRecords"
    body = emu.err(op, "UnauthorizedException", 401, search("shipping", PARTNER), {"Authorization": SIGV4})
    assert "JWT bearer token" in body["message"] and "SigV4" in body["message"], body
    body = emu.err(op, "UnauthorizedException", 401, search("shipping", PARTNER))
    assert "bearer token is missing" in body["message"], body
    recs = emu.ok(op, search("shipping", PARTNER), {"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig"})["registryRecords"]
    assert names(recs) == ["partner-shipping-mcp"] and "customMetadata" not in recs[0]
    emu.err("ListDiscoverableRegistryRecords", "UnauthorizedException", 401, {}, {"Authorization": SIGV4}, registryId=PARTNER)
    emu.err(
        "BatchGetDiscoverableRegistryRecord", "UnauthorizedException", 401,
        {"entries": [{"registryId": PARTNER, "recordIds": ["XshipMcp1Prt"]}]}, {"Authorization": SIGV4},
    )
    # SigV4 on an AWS_IAM registry is fine; a bearer token there is not.
    emu.ok(op, search("invoice", FINANCE), {"Authorization": SIGV4})
    emu.err(op, "UnauthorizedException", 401, search("invoice", FINANCE), {"Authorization": "Bearer abc"})
    # The control plane is SigV4 for every registry.
    assert emu.ok("GetRegistry", None, {"Authorization": SIGV4}, registryId=PARTNER)["name"] == "partner-catalog"


# ---------------------------------------------------------------------------------------------
# Checks: ListDiscoverableRegistryRecords
# ---------------------------------------------------------------------------------------------


@check
def list_discoverable_paging(emu: Emulator) -> None:
    op = "ListDiscoverableRegistryRecords"
    seen: list[str] = []
    token = None
    pages = []
    while True:
        body: dict[str, Any] = {"maxResults": 3}
        if token:
            body["nextToken"] = token
        out = emu.ok(op, body, registryId=PLATFORM)
        pages.append(len(out["registryRecords"]))
        for r in out["registryRecords"]:
            assert "descriptors" not in r and "customMetadata" not in r
            assert r["status"] == "APPROVED" and r["descriptorTypes"], r
            seen.append(r["name"])
        token = out.get("nextToken")
        if not token:
            break
    assert pages == [3, 3, 1], pages
    assert seen == [
        "cost-explorer-mcp", "jira-issues-mcp", "support-triage-agent", "internal-api-catalog",
        "geo-lookup-mcp", "data-science-assistant", "bedrock-cost-review",
    ], seen
    whole = emu.ok(op, {}, registryId=PLATFORM)
    assert names(whole["registryRecords"]) == seen and "nextToken" not in whole
    assert names(emu.aws(op, b"", registryId=PLATFORM).json["registryRecords"]) == seen  # empty body


@check
def list_discoverable_by_arn_label(emu: Emulator) -> None:
    out = emu.ok("ListDiscoverableRegistryRecords", {}, registryId=registry_arn(FINANCE))
    assert names(out["registryRecords"]) == ["invoice-processing-agent", "erp-ledger-mcp", "invoice-matching", "invoice-ocr-mcp"]
    first = out["registryRecords"][0]
    assert first["descriptorTypes"] == ["a2aAgentCard"] and first["displayName"] == "Invoice Processing Agent"
    assert emu.control("GET", "requests")[-1]["path"] == "/registries/" + quote(registry_arn(FINANCE), safe="") + "/discoverable-records-list"


@check
def list_discoverable_filters(emu: Emulator) -> None:
    op = "ListDiscoverableRegistryRecords"

    def run(filters: list[dict[str, Any]], registry: str = PLATFORM) -> list[str]:
        return names(emu.ok(op, {"filters": filters}, registryId=registry)["registryRecords"])

    assert run([{"name": "recordType", "values": ["MCP"]}]) == ["cost-explorer-mcp", "jira-issues-mcp", "geo-lookup-mcp"]
    assert run([{"name": "recordType", "values": ["SKILL", "CUSTOM"]}]) == ["internal-api-catalog", "bedrock-cost-review"]
    assert run([{"name": "descriptorType", "values": ["a2aAgentCard"]}]) == ["support-triage-agent", "data-science-assistant"]
    assert run([{"name": "recordType", "values": ["AGENT"]}, {"name": "descriptorType", "values": ["mcpServer"]}]) == []
    assert run([{"name": "recordType", "values": ["AGENT", "MCP"]}, {"name": "descriptorType", "values": ["mcpServer"]}]) == [
        "cost-explorer-mcp", "jira-issues-mcp", "geo-lookup-mcp",
    ]
    for bad in (
        [{"name": "status", "values": ["APPROVED"]}],
        [{"name": "recordType", "values": []}],
        [{"name": "recordType", "values": ["MCP_SERVER"]}],
        [{"name": "recordType"}],
        [{"name": "recordType", "values": ["MCP"]}] * 11,
    ):
        emu.err(op, "ValidationException", 400, {"filters": bad}, registryId=PLATFORM)


@check
def list_discoverable_errors(emu: Emulator) -> None:
    op = "ListDiscoverableRegistryRecords"
    for bad in (0, 101):
        emu.err(op, "ValidationException", 400, {"maxResults": bad}, registryId=PLATFORM)
    emu.ok(op, {"maxResults": 100}, registryId=PLATFORM)
    emu.err(op, "ValidationException", 400, {"nextToken": "garbage!"}, registryId=PLATFORM)
    token = emu.ok(op, {"maxResults": 1}, registryId=FINANCE)["nextToken"]
    emu.err(op, "ValidationException", 400, {"nextToken": token}, registryId=PLATFORM)  # other registry's token
    emu.err(op, "ResourceNotFoundException", 404, {}, registryId="Zz9Zz9Zz9Zz9")
    emu.err(op, "ValidationException", 400, {}, registryId="bad_id")


# ---------------------------------------------------------------------------------------------
# Checks: BatchGetDiscoverableRegistryRecord
# ---------------------------------------------------------------------------------------------


@check
def batch_get_partial_failure(emu: Emulator) -> None:
    ids = ["FinvPr0cAg1a", registry_arn(FINANCE) + "/record/FerpLdg2Mcpb", "Zz9Zz9Zz9Zz9", "FbdgtFc4Drfd", "FinvPr0cAg1a"]
    out = emu.ok("BatchGetDiscoverableRegistryRecord", {"entries": [{"registryId": FINANCE, "recordIds": ids}]})
    assert names(out["registryRecords"]) == ["invoice-processing-agent", "erp-ledger-mcp"], names(out["registryRecords"])
    assert out["registryRecords"][1]["customMetadata"]["requiresApproval"] is True
    assert "a2aAgentCard" in out["registryRecords"][0]["descriptors"]
    assert [(e["registryId"], e["recordId"], e["errorCode"]) for e in out["errors"]] == [
        (FINANCE, "Zz9Zz9Zz9Zz9", "RESOURCE_NOT_FOUND"),
        (FINANCE, "FbdgtFc4Drfd", "RESOURCE_NOT_FOUND"),
    ], out["errors"]
    assert all(e["message"] for e in out["errors"])
    clean = emu.ok("BatchGetDiscoverableRegistryRecord", {"entries": [{"registryId": registry_arn(PLATFORM), "recordIds": ["RskCstRv8ijk"]}]})
    assert clean["errors"] == [] and clean["registryRecords"][0]["descriptors"]["agentSkillsDefinition"]["additionalData"]["skillMd"]["data"].startswith("---\nname: bedrock-cost-review")


@check
def batch_get_errors(emu: Emulator) -> None:
    op = "BatchGetDiscoverableRegistryRecord"
    emu.err(op, "ValidationException", 400, {"entries": []})
    emu.err(op, "ValidationException", 400, {})
    two = [{"registryId": FINANCE, "recordIds": ["FinvPr0cAg1a"]}, {"registryId": PLATFORM, "recordIds": ["Rc0stEx9Mp1a"]}]
    emu.err(op, "ValidationException", 400, {"entries": two})
    emu.err(op, "ValidationException", 400, {"entries": [{"registryId": FINANCE, "recordIds": []}]})
    emu.err(op, "ValidationException", 400, {"entries": [{"registryId": FINANCE, "recordIds": ["FinvPr0cAg1a"] * 101}]})
    emu.err(op, "ValidationException", 400, {"entries": [{"registryId": FINANCE, "recordIds": ["short"]}]})
    emu.err(op, "ResourceNotFoundException", 404, {"entries": [{"registryId": "Zz9Zz9Zz9Zz9", "recordIds": ["FinvPr0cAg1a"]}]})


# ---------------------------------------------------------------------------------------------
# Checks: control plane
# ---------------------------------------------------------------------------------------------


@check
def list_registries(emu: Emulator) -> None:
    out = emu.ok("ListRegistries", {})
    regs = out["registries"]
    assert [r["name"] for r in regs] == ["platform-tools", "finance-agents", "partner-catalog", "ml-experiments"]
    assert "nextToken" not in out
    partner = regs[2]
    assert partner["discoveryConfiguration"]["authorizerType"] == "CUSTOM_JWT"
    assert partner["discoveryConfiguration"]["authorizerConfiguration"]["customJWTAuthorizer"]["discoveryUrl"].endswith("/.well-known/openid-configuration")
    assert regs[0]["registryArn"] == registry_arn(PLATFORM) and regs[3]["status"] == "CREATING"
    first = emu.ok("ListRegistries", {"maxResults": 3})
    assert len(first["registries"]) == 3 and first["nextToken"]
    second = emu.ok("ListRegistries", {"maxResults": 3, "nextToken": first["nextToken"]})
    assert [r["name"] for r in second["registries"]] == ["ml-experiments"] and "nextToken" not in second
    ready = emu.ok("ListRegistries", {"filters": [{"name": "status", "values": ["READY"]}]})["registries"]
    assert len(ready) == 3
    jwt = emu.ok("ListRegistries", {"filters": [{"name": "discoveryConfiguration.authorizerType", "values": ["CUSTOM_JWT"]}]})["registries"]
    assert [r["registryId"] for r in jwt] == [PARTNER]
    both = emu.ok("ListRegistries", {"filters": [
        {"name": "status", "values": ["READY"]}, {"name": "discoveryConfiguration.authorizerType", "values": ["AWS_IAM"]},
    ]})["registries"]
    assert [r["name"] for r in both] == ["platform-tools", "finance-agents"]
    for bad in (
        {"filters": [{"name": "status", "values": ["READY", "CREATING"]}]},
        {"filters": [{"name": "authorizerType", "values": ["AWS_IAM"]}]},
        {"filters": [{"name": "status", "values": ["ACTIVE"]}]},
        {"maxResults": 0},
        {"maxResults": 101},
        {"nextToken": "nope"},
    ):
        emu.err("ListRegistries", "ValidationException", 400, bad)


@check
def get_registry(emu: Emulator) -> None:
    reg = emu.ok("GetRegistry", registryId=FINANCE)
    assert reg["name"] == "finance-agents" and reg["registryId"] == FINANCE and reg["status"] == "READY"
    assert reg["approvalConfiguration"] == {"autoApprovalRules": ["APPROVE_ALL"]}
    assert json.loads(reg["customMetadataSchemaConfiguration"]["defaultSchema"])["properties"]["iamRoleArn"]
    assert reg["discoveryConfiguration"] == {"authorizerType": "AWS_IAM"}
    assert emu.ok("GetRegistry", registryId=registry_arn(PARTNER))["discoveryConfiguration"]["authorizerType"] == "CUSTOM_JWT"
    assert emu.ok("GetRegistry", registryId=CREATING)["status"] == "CREATING"
    emu.err("GetRegistry", "ResourceNotFoundException", 404, registryId="Zz9Zz9Zz9Zz9")
    emu.err("GetRegistry", "ValidationException", 400, registryId="x")


@check
def list_registry_records(emu: Emulator) -> None:
    op = "ListRegistryRecords"
    out = emu.ok(op, {}, registryId=PLATFORM)
    recs = out["registryRecords"]
    assert len(recs) == 9 and {r["status"] for r in recs} == {"APPROVED", "DRAFT", "DEPRECATED"}
    assert all("descriptors" not in r for r in recs)
    triage = next(r for r in recs if r["name"] == "support-triage-agent")
    assert triage["createdByAutoDetection"] is True and triage["provenanceSummaryList"][0]["sourceType"] == "AWS::BedrockAgentCore::Runtime"

    def run(filters: list[dict[str, Any]], registry: str = PLATFORM) -> list[str]:
        return names(emu.ok(op, {"filters": filters}, registryId=registry)["registryRecords"])

    assert run([{"name": "status", "values": ["DRAFT"]}]) == ["s3-docs-search-mcp"]
    assert run([{"name": "status", "values": ["DEPRECATED"]}], FINANCE) == ["expense-report-agent"]
    assert run([{"name": "recordType", "values": ["SKILL"]}]) == ["bedrock-cost-review"]
    assert run([{"name": "name", "values": ["jira-issues-mcp"]}]) == ["jira-issues-mcp"]
    assert run([{"name": "recordType", "values": ["MCP"]}, {"name": "status", "values": ["APPROVED"]}]) == [
        "cost-explorer-mcp", "jira-issues-mcp", "geo-lookup-mcp",
    ]
    p1 = emu.ok(op, {"maxResults": 5}, registryId=PLATFORM)
    p2 = emu.ok(op, {"maxResults": 5, "nextToken": p1["nextToken"]}, registryId=PLATFORM)
    assert names(p1["registryRecords"]) + names(p2["registryRecords"]) == names(recs) and "nextToken" not in p2
    assert emu.ok(op, {}, registryId=CREATING)["registryRecords"] == []
    emu.err(op, "ValidationException", 400, {"filters": [{"name": "descriptorType", "values": ["mcpServer"]}]}, registryId=PLATFORM)
    emu.err(op, "ValidationException", 400, {"filters": [{"name": "status", "values": ["GONE"]}]}, registryId=PLATFORM)
    emu.err(op, "ResourceNotFoundException", 404, {}, registryId="Zz9Zz9Zz9Zz9")


@check
def get_registry_record(emu: Emulator) -> None:
    op = "GetRegistryRecord"
    rec = emu.ok(op, registryId=PLATFORM, recordId="RsupTri4ge6f")
    assert rec["name"] == "support-triage-agent" and rec["recordArn"] == registry_arn(PLATFORM) + "/record/RsupTri4ge6f"
    card = json.loads(rec["descriptors"]["a2aAgentCard"]["data"])
    params = card["capabilities"]["extensions"][0]["params"]
    assert params["executionRoleArn"] == ROLE + "SupportBotRole" and ":runtime/" in params["agentRuntimeArn"]
    assert rec["provenance"][0]["sourceId"] == params["agentRuntimeArn"]
    dep = emu.ok(op, registryId=registry_arn(PLATFORM), recordId=registry_arn(PLATFORM) + "/record/RlegPr1Dep5e")
    assert dep["status"] == "DEPRECATED" and dep["statusReason"]
    meta = emu.ok(op, registryId=FINANCE, recordId="FinvPr0cAg1a")["customMetadata"]
    assert meta["iamRoleArn"] == ROLE + "InvoiceAgentRole"
    emu.err(op, "ResourceNotFoundException", 404, registryId=PLATFORM, recordId="Zz9Zz9Zz9Zz9")
    emu.err(op, "ResourceNotFoundException", 404, registryId=FINANCE, recordId="Rc0stEx9Mp1a")  # other registry's record
    emu.err(op, "ResourceNotFoundException", 404, registryId=PLATFORM, recordId=registry_arn(FINANCE) + "/record/Rc0stEx9Mp1a")
    emu.err(op, "ValidationException", 400, registryId=PLATFORM, recordId="short")


@check
def paths_do_not_collide(emu: Emulator) -> None:
    routes = {op: (MODELS[op].route(OP_SNAKE[op]) if op in MODELS else FALLBACK_ROUTES[op]) for op in OP_SNAKE}
    assert routes == FALLBACK_ROUTES, routes
    emu.ok("GetRegistry", registryId=PLATFORM)
    emu.ok("ListRegistryRecords", {}, registryId=PLATFORM)
    emu.ok("ListDiscoverableRegistryRecords", {}, registryId=PLATFORM)
    calls = emu.control("GET", "calls")
    assert calls["GetRegistry"] == calls["ListRegistryRecords"] == calls["ListDiscoverableRegistryRecords"] == 1, calls
    answer = emu.http("POST", "/registries", {})  # CreateRegistry: not emulated
    assert answer.status == 404 and answer.headers["x-amzn-errortype"] == "UnknownOperationException"


# ---------------------------------------------------------------------------------------------
# Checks: test controls
# ---------------------------------------------------------------------------------------------


@check
def faults(emu: Emulator) -> None:
    op = "SearchDiscoverableRegistryRecords"
    emu.control("POST", "faults", {"operation": op, "registry": PLATFORM, "status": 403, "error_type": "AccessDeniedException",
                                   "message": "User is not authorized to perform: agent-registry:SearchDiscoverableRegistryRecords", "times": 1})
    emu.ok(op, search("invoice", FINANCE))  # other registry: untouched
    body = emu.err(op, "AccessDeniedException", 403, search("cost"))
    assert "agent-registry:SearchDiscoverableRegistryRecords" in body["message"]
    emu.ok(op, search("cost"))  # used up
    emu.control("POST", "faults", {"operation": op, "registry": "finance-agents", "error_type": "ThrottlingException", "times": 2})
    emu.err(op, "ThrottlingException", 429, search("invoice", registry_arn(FINANCE)))
    emu.err(op, "ThrottlingException", 429, search("invoice", FINANCE))
    emu.ok(op, search("invoice", FINANCE))
    emu.control("POST", "faults", {"operation": "GetRegistry", "error_type": "ValidationException", "message": "bad"})
    assert emu.err("GetRegistry", "ValidationException", 400, registryId=PLATFORM)["reason"] == "FieldValidationFailed"
    emu.control("POST", "faults", {"operation": "ListRegistries", "status": 500, "error_type": "InternalServerException"})
    emu.err("ListRegistries", "InternalServerException", 500, {})
    emu.control("POST", "faults", {"operation": "ListRegistryRecords", "status": 200, "body": "{\"registryRecords\": []}"})
    assert emu.aws("ListRegistryRecords", {}, registryId=PLATFORM).json == {"registryRecords": []}
    emu.control("POST", "faults", {"operation": "BatchGetDiscoverableRegistryRecord", "status": 0, "delay_ms": 120})
    start = time.monotonic()
    emu.ok("BatchGetDiscoverableRegistryRecord", {"entries": [{"registryId": FINANCE, "recordIds": ["FinvPr0cAg1a"]}]})
    assert time.monotonic() - start >= 0.12
    assert emu.control("GET", "faults") == []
    for bad in ({"operation": "Nope", "error_type": "X"}, {"operation": op}, {"operation": op, "error_type": "X", "times": 0}):
        assert emu.http("POST", "/_emulator/faults", bad).status == 400


@check
def latency_does_not_serialise(emu: Emulator) -> None:
    emu.control("POST", "latency", {"ms": 50})
    start = time.monotonic()
    emu.ok("SearchDiscoverableRegistryRecords", search("invoice", FINANCE))
    single = time.monotonic() - start
    assert single >= 0.05, single
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait()
            emu.ok("SearchDiscoverableRegistryRecords", search("invoice", FINANCE))
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(5)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert not errors, errors
    assert elapsed < 0.2, f"5 concurrent searches with 50 ms latency took {elapsed * 1000:.0f} ms"
    print(f"      (5 concurrent searches at 50 ms latency: {elapsed * 1000:.0f} ms)")


@check
def call_counters(emu: Emulator) -> None:
    emu.ok("SearchDiscoverableRegistryRecords", search("invoice", FINANCE))
    emu.ok("SearchDiscoverableRegistryRecords", search("invoice", registry_arn(FINANCE)))
    emu.ok("SearchDiscoverableRegistryRecords", search("cost", PLATFORM))
    emu.err("SearchDiscoverableRegistryRecords", "ValidationException", 400, search("", PLATFORM))
    emu.ok("ListRegistries", {})
    emu.ok("GetRegistryRecord", registryId=FINANCE, recordId="FinvPr0cAg1a")
    calls = emu.control("GET", "calls")
    assert calls == {
        "SearchDiscoverableRegistryRecords": 4,
        f"SearchDiscoverableRegistryRecords:{FINANCE}": 2,
        f"SearchDiscoverableRegistryRecords:{PLATFORM}": 2,
        "ListRegistries": 1,
        "GetRegistryRecord": 1,
        f"GetRegistryRecord:{FINANCE}": 1,
    }, calls
    log = emu.control("GET", "requests")
    assert [e["operation"] for e in log][:3] == ["SearchDiscoverableRegistryRecords"] * 3
    assert json.loads(log[0]["body"]) == search("invoice", FINANCE) and log[0]["authorization"] == "none"


@check
def seed_and_reset(emu: Emulator) -> None:
    seed = {
        "registries": [
            {
                "registryId": "SeedReg00001",
                "name": "seeded",
                "records": [
                    {"recordId": "SeedRec00001", "name": "weather-mcp", "recordType": "MCP", "description": "Weather forecasts",
                     "descriptors": {"mcpServer": {"data": {"name": "io.example/weather", "remotes": [{"type": "streamable-http", "url": "https://w.example/mcp"}]}}},
                     "customMetadata": {"iamRoleArn": ROLE + "WeatherRole"}},
                    {"recordId": "SeedRec00002", "name": "weather-draft", "recordType": "MCP", "status": "DRAFT"},
                ],
            }
        ]
    }
    assert emu.control("POST", "seed", seed) == {"status": "ok", "registries": 1, "records": 2}
    recs = emu.ok("SearchDiscoverableRegistryRecords", search("weather", "SeedReg00001"))["registryRecords"]
    assert names(recs) == ["weather-mcp"] and json.loads(recs[0]["descriptors"]["mcpServer"]["data"])["name"] == "io.example/weather"
    assert recs[0]["recordArn"] == f"arn:aws:agent-registry:{REGION}:{ACCOUNT}:registry/SeedReg00001/record/SeedRec00001"
    assert RFC3339.fullmatch(recs[0]["createdAt"])
    emu.err("GetRegistry", "ResourceNotFoundException", 404, registryId=PLATFORM)
    cat = emu.control("GET", "catalog")
    assert [r["registryId"] for r in cat["registries"]] == ["SeedReg00001"]
    assert emu.control("POST", "seed", cat)["records"] == 2  # GET output round-trips
    for bad in (
        {"registries": [{"registryId": "short", "name": "x"}]},
        {"registries": [{"registryId": "SeedReg00001", "name": "x", "records": [{"recordId": "SeedRec00001", "name": "y", "recordType": "WEB"}]}]},
        {"registries": [{"registryId": "SeedReg00001", "name": "x", "authorizerType": "CUSTOM_JWT"}]},
        {"registries": [{"registryId": "SeedReg00001", "name": "x", "createdAt": 1767225600}]},
        {"registries": "nope"},
    ):
        answer = emu.http("POST", "/_emulator/seed", bad)
        assert answer.status == 400 and answer.json["error"], (bad, answer.raw)
    emu.control("POST", "latency", {"ms": 30})
    emu.control("POST", "faults", {"operation": "GetRegistry", "error_type": "ThrottlingException", "times": 5})
    emu.control("POST", "reset")
    assert emu.control("GET", "calls") == {} and emu.control("GET", "faults") == []
    start = time.monotonic()
    assert emu.ok("GetRegistry", registryId=PLATFORM)["name"] == "platform-tools"
    assert time.monotonic() - start < 0.03


# ---------------------------------------------------------------------------------------------
# Checks: through botocore's own agent-registry clients (SigV4-signed, model-driven parsing)
# ---------------------------------------------------------------------------------------------


@check
def boto3_clients(emu: Emulator) -> None:
    try:
        import boto3
        import botocore.exceptions
        from botocore.config import Config
    except ImportError:
        print("      (boto3 not installed: skipped)")
        return
    kw = dict(endpoint_url=emu.url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing",
              config=Config(retries={"max_attempts": 1}))
    data = boto3.client("agent-registry", **kw)
    control = boto3.client("agent-registry-control", **kw)
    out = data.search_discoverable_registry_records(searchQuery="invoice", registryIds=[FINANCE], maxResults=3,
                                                    filters={"recordType": {"$eq": "AGENT"}})
    assert [r["name"] for r in out["registryRecords"]] == ["invoice-processing-agent"]
    assert out["registryRecords"][0]["createdAt"].year == 2026  # parsed as a timestamp
    listed = data.list_discoverable_registry_records(registryId=PLATFORM, maxResults=2)
    assert len(listed["registryRecords"]) == 2 and listed["nextToken"]
    batch = data.batch_get_discoverable_registry_record(entries=[{"registryId": FINANCE, "recordIds": ["FinvPr0cAg1a", "Zz9Zz9Zz9Zz9"]}])
    assert len(batch["registryRecords"]) == 1 and batch["errors"][0]["errorCode"] == "RESOURCE_NOT_FOUND"
    try:
        data.search_discoverable_registry_records(searchQuery="shipping", registryIds=[PARTNER])
        raise AssertionError("SigV4 against a CUSTOM_JWT registry must fail")
    except botocore.exceptions.ClientError as err:
        assert err.response["Error"]["Code"] == "UnauthorizedException" and err.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    try:
        data.search_discoverable_registry_records(searchQuery="x", registryIds=["Zz9Zz9Zz9Zz9"])
        raise AssertionError("unknown registry must fail")
    except data.exceptions.ResourceNotFoundException:
        pass
    regs = control.list_registries()["registries"]
    assert len(regs) == 4 and regs[0]["createdAt"].tzinfo is not None
    assert control.get_registry(registryId=registry_arn(PARTNER))["discoveryConfiguration"]["authorizerType"] == "CUSTOM_JWT"
    recs = control.list_registry_records(registryId=FINANCE, filters=[{"name": "status", "values": ["APPROVED"]}])["registryRecords"]
    assert len(recs) == 4
    rec = control.get_registry_record(registryId=PLATFORM, recordId="RsupTri4ge6f")
    assert rec["provenance"][0]["relation"] == "DETECTED_FROM"
    log = emu.control("GET", "requests")
    assert {e["authorization"] for e in log} == {"sigv4"}, {e["authorization"] for e in log}


# ---------------------------------------------------------------------------------------------
# Checks: process conventions (run on their own emulators)
# ---------------------------------------------------------------------------------------------


def process_checks() -> list[tuple[str, Callable[[], None]]]:
    def stdin_eof_exits() -> None:
        emu = Emulator()
        emu.proc.stdin.close()
        assert emu.proc.wait(timeout=5) == 0
        assert emu.proc.stdout.read() == ""

    def sigterm_exits_and_stdout_is_ready_only() -> None:
        emu = Emulator()
        emu.ok("ListRegistries", {})
        emu.http("GET", "/_emulator/calls")
        assert emu.ready_line == f"READY {emu.port}\n"
        rest = emu.close()
        assert rest == "", rest
        assert emu.proc.returncode == 0

    def devnull_stdin_is_not_watched() -> None:
        proc = subprocess.Popen([sys.executable, str(EMULATOR)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert line.startswith("READY "), line
            time.sleep(0.3)
            assert proc.poll() is None, "exited although stdin is /dev/null"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()

    return [
        ("stdin_eof_exits", stdin_eof_exits),
        ("sigterm_exits_and_stdout_is_ready_only", sigterm_exits_and_stdout_is_ready_only),
        ("devnull_stdin_is_not_watched", devnull_stdin_is_not_watched),
    ]


def main() -> int:
    if MODELS:
        print(f"crate checks on: {DATA_CRATE.parent.name}, {CONTROL_CRATE.parent.name}")
    else:
        print("crate checks skipped: aws-sdk-agentregistry(-control)-1.17.0 sources not found under $CARGO_HOME/registry/src")
    passed = failed = 0
    emu = Emulator()
    try:
        for fn in CHECKS:
            try:
                emu.control("POST", "reset")
                fn(emu)
                print(f"ok    {fn.__name__}")
                passed += 1
            except Exception:  # noqa: BLE001
                print(f"FAIL  {fn.__name__}")
                traceback.print_exc(file=sys.stdout)
                failed += 1
    finally:
        emu.close()
    for name, fn in process_checks():
        try:
            fn()
            print(f"ok    {name}")
            passed += 1
        except Exception:  # noqa: BLE001
            print(f"FAIL  {name}")
            traceback.print_exc(file=sys.stdout)
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
