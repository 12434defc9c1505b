#!/usr/bin/env python3
"""Checks docs/openapi.yaml against the OpenAPI 3.1 schema, the router source and a live gateway.

Run with a python that has `openapi-spec-validator` and `pyyaml` installed (CI uses the
deploy virtualenv):

    python scripts/check-openapi.py --bin target/release/switchboard

It prints one PASS/FAIL line per check and exits 1 if any check failed:

- the spec is OpenAPI 3.1 and passes openapi-spec-validator; every operation has an
  operationId, a declared tag and a success response; every example (parameters,
  request bodies, responses) is valid against its schema;
- every route of src/api/*.rs (the public router, the nested `/api/v1` router with its
  prefix, the admin router) is a path of the spec with the same methods, and the spec
  has no path the source does not route;
- the `ErrorCode` enum and its `x-status-codes` equal the codes of
  src/protocol/error.rs and the statuses of src/api/error.rs;
- live, against the real gateway (`--bin`, loopback only): a dev-mode gateway with an
  API key gets every documented operation once with a valid request built from the
  spec's examples (each request-body example, each value of an enum path parameter),
  and must answer the documented success status, content type, required headers and a
  body valid against the documented schema (JSON: its required properties); each
  operation under security is called with no key and with a wrong key and must answer
  the documented `401` with an `Error` body; invalid ids, bodies and query strings,
  oversized bodies and foreign origins must get documented error statuses. A second,
  production-like gateway (no API key, admin listener, connection cap 1) must answer
  the documented `503` on secured operations, `404` on `/dev/token`, serve exactly the
  documented paths on the admin listener, refuse an upgrade over the cap and, once
  SIGTERM starts a drain, answer `/readyz` and `/ws` with the documented `503`s.
Both gateways are killed in a `finally`.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import http
import http.client
import json
import os
import re
import secrets
import signal
import sys
import tempfile
import time
import traceback
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import yaml

# Helpers shared with the deploy checks: deploy_checks/common.py here (not a package: via sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy_checks"))
from common import CheckError, Gateway, Report, gateway_env, stop_processes  # noqa: E402

try:
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate as validate_spec
except ImportError:  # reported as a FAIL
    OpenAPIV31SpecValidator = None
try:
    from jsonschema import Draft202012Validator  # installed with openapi-spec-validator
except ImportError:  # reported as a FAIL
    Draft202012Validator = None

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "docs" / "openapi.yaml"
API_DIR = REPO / "src" / "api"
ERROR_CODES_RS = REPO / "src" / "protocol" / "error.rs"
API_ERROR_RS = REPO / "src" / "api" / "error.rs"

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise CheckError(message)


# ---------------------------------------------------------------------------------------
# The spec


def load_spec() -> dict:
    with SPEC.open(encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    if not isinstance(spec, dict):
        raise CheckError(f"{SPEC} is not a YAML mapping")
    return spec


def pointer(spec: dict, ref: str) -> Any:
    if not ref.startswith("#/"):
        raise CheckError(f"only local $refs are supported: {ref}")
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(spec: dict, node: Any, seen: tuple[str, ...] = ()) -> Any:
    """`node` with every local `$ref` replaced by a copy of its target (siblings kept)."""
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise CheckError(f"recursive $ref {ref}")
            target = deref(spec, pointer(spec, ref), seen + (ref,))
            rest = {k: deref(spec, v, seen) for k, v in node.items() if k != "$ref"}
            if isinstance(target, dict):
                return {**target, **rest}
            return target
        return {k: deref(spec, v, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [deref(spec, v, seen) for v in node]
    return node


def ref_name(node: Any) -> str | None:
    """The last segment of a `$ref` (e.g. `RoomId`), for a parameter's raw schema."""
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        return node["$ref"].rsplit("/", 1)[-1]
    return None


class Operation:
    def __init__(self, spec: dict, path: str, method: str) -> None:
        raw_item = spec["paths"][path]
        self.path = path
        self.method = method
        self.raw = raw_item[method]
        self.op = deref(spec, self.raw)
        item = deref(spec, raw_item)
        params: dict[tuple[str, str], dict] = {}
        raw_params: dict[tuple[str, str], dict] = {}
        for source, raw_source in ((item, raw_item), (self.op, self.raw)):
            for p, rp in zip(source.get("parameters", []), raw_source.get("parameters", [])):
                params[(p["name"], p["in"])] = p
                rp = pointer(spec, rp["$ref"]) if "$ref" in rp else rp
                raw_params[(p["name"], p["in"])] = rp
        self.params = list(params.values())
        self.raw_params = raw_params
        servers = self.op.get("servers") or item.get("servers") or spec.get("servers") or []
        self.listeners = {s.get("x-switchboard-listener", "public") for s in servers}
        security = self.op.get("security", spec.get("security", []))
        self.secured = any(req for req in security)
        self.responses: dict[str, dict] = {str(k): v for k, v in self.op.get("responses", {}).items()}

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.path}"

    def success_code(self) -> int:
        codes = sorted(int(c) for c in self.responses if c.isdigit() and 100 <= int(c) < 300)
        if not codes:
            raise CheckError(f"{self.name} documents no success response")
        return codes[0]

    def response(self, status: int) -> dict:
        doc = self.responses.get(str(status)) or self.responses.get(f"{status // 100}XX")
        if doc is None:
            doc = self.responses.get("default")
        if doc is None:
            raise CheckError(f"{self.name} answered {status}, which the spec does not document "
                             f"(documented: {', '.join(sorted(self.responses))})")
        return doc

    def json_examples(self) -> list[tuple[str, Any]]:
        body = self.op.get("requestBody")
        if not body:
            return []
        media = body.get("content", {}).get("application/json")
        if media is None:
            raise CheckError(f"{self.name}: request body without application/json")
        return list(examples_of(media)) or [("", None)]


def examples_of(node: dict) -> Iterator[tuple[str, Any]]:
    """(name, value) of a media type's or parameter's `example`/`examples`."""
    if "example" in node:
        yield "example", node["example"]
    for name, ex in (node.get("examples") or {}).items():
        if "value" in ex:
            yield name, ex["value"]


def operations(spec: dict) -> list[Operation]:
    return [Operation(spec, path, method)
            for path, item in spec.get("paths", {}).items()
            for method in METHODS if method in item]


def schema_errors(schema: dict, value: Any) -> list[str]:
    if Draft202012Validator is None:
        raise CheckError("jsonschema is not installed (it comes with openapi-spec-validator)")
    validator = Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(value)]


def check_valid_spec(spec: dict) -> str:
    if OpenAPIV31SpecValidator is None:
        raise CheckError("openapi-spec-validator is not installed")
    version = str(spec.get("openapi", ""))
    expect(re.fullmatch(r"3\.1\.\d+", version) is not None, f"openapi is {version!r}, want 3.1.x")
    try:
        validate_spec(spec, cls=OpenAPIV31SpecValidator)
    except Exception as err:  # OpenAPIValidationError and friends: say where, briefly
        where = " > ".join(str(p) for p in getattr(err, "path", []) or [])
        raise CheckError(f"{getattr(err, 'message', err)}" + (f" at {where}" if where else "")) from None
    import importlib.metadata as md
    return f"OpenAPI {version}, openapi-spec-validator {md.version('openapi-spec-validator')}"


def check_operations_complete(spec: dict, ops: list[Operation]) -> str:
    tags = {t["name"] for t in spec.get("tags", [])}
    problems = []
    ids = set()
    for op in ops:
        oid = op.op.get("operationId")
        if not oid:
            problems.append(f"{op.name}: no operationId")
        elif oid in ids:
            problems.append(f"{op.name}: duplicate operationId {oid}")
        ids.add(oid)
        if not op.op.get("summary"):
            problems.append(f"{op.name}: no summary")
        op_tags = op.op.get("tags") or []
        if not op_tags or not set(op_tags) <= tags:
            problems.append(f"{op.name}: tags {op_tags} not all declared in `tags`")
        try:
            op.success_code()
        except CheckError as err:
            problems.append(str(err))
        if op.secured:
            for status in ("401", "503"):
                if status not in op.responses:
                    problems.append(f"{op.name}: secured but does not document {status}")
    expect(not problems, "; ".join(problems))
    return f"{len(ops)} operations"


def check_examples(spec: dict, ops: list[Operation]) -> str:
    problems = []
    count = 0
    for op in ops:
        for p in op.params:
            for name, value in examples_of(p):
                count += 1
                problems += [f"{op.name} parameter {p['name']} {name}: {e}"
                             for e in schema_errors(p.get("schema", {}), value)]
        body = op.op.get("requestBody") or {}
        for media_type, media in body.get("content", {}).items():
            for name, value in examples_of(media):
                count += 1
                problems += [f"{op.name} request {media_type} {name}: {e}"
                             for e in schema_errors(media.get("schema", {}), value)]
        for status, resp in op.responses.items():
            for media_type, media in resp.get("content", {}).items():
                for name, value in examples_of(media):
                    count += 1
                    problems += [f"{op.name} {status} {media_type} {name}: {e}"
                                 for e in schema_errors(media.get("schema", {}), value)]
            for header, h in resp.get("headers", {}).items():
                for name, value in examples_of(h):
                    count += 1
                    problems += [f"{op.name} {status} header {header} {name}: {e}"
                                 for e in schema_errors(h.get("schema", {}), value)]
    expect(count > 0, "the spec has no examples")
    expect(not problems, "; ".join(problems))
    return f"{count} examples valid against their schemas"


# ---------------------------------------------------------------------------------------
# The router source


def mask_rust(src: str) -> str:
    """`src` with comments blanked and string/char literal contents replaced by spaces,
    so that brackets and keywords can be matched; offsets are preserved."""
    out = list(src)
    i, n = 0, len(src)

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif m := re.compile(r'b?r(#*)"').match(src, i):
            if i > 0 and (src[i - 1].isalnum() or src[i - 1] == "_"):
                i += 1
                continue
            end = src.find('"' + m.group(1), m.end())
            end = n if end < 0 else end
            blank(m.end(), end)
            i = end + 1 + len(m.group(1))
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
        elif m := re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'\n])'").match(src, i):
            blank(i + 1, m.end() - 1)
            i = m.end()
        else:
            i += 1
    return "".join(out)


def closing(masked: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at` (in masked source)."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = []
    for k in range(open_at, len(masked)):
        ch = masked[k]
        if ch in pairs:
            stack.append(pairs[ch])
        elif ch in ")]}":
            if not stack or stack.pop() != ch:
                raise CheckError(f"unbalanced brackets near offset {k}")
            if not stack:
                return k
    raise CheckError(f"unclosed bracket at offset {open_at}")


def string_at(src: str, masked: str, at: int) -> str | None:
    """The string literal starting at `at` (after whitespace), decoded, else None."""
    m = re.compile(r'\s*"').match(masked, at)
    if not m:
        return None
    end = masked.index('"', m.end())
    return json.loads('"' + src[m.end():end] + '"')


def top_level_calls(masked: str, start: int, end: int) -> list[str]:
    """Names of method-router calls like `get(` / `.post(` at bracket depth 0."""
    names = []
    depth = 0
    k = start
    while k < end:
        ch = masked[k]
        if ch in "([{":
            if depth == 0 and ch == "(":
                m = re.search(r"(\w+)\s*$", masked[start:k])
                if m:
                    names.append(m.group(1))
            depth += 1
        elif ch in ")]}":
            depth -= 1
        k += 1
    return names


class RouterSource:
    """Routes of the functions in src/api/*.rs that return a `Router`.

    Within such a function every `let X = EXPR;` defines router X as the routes of EXPR's
    `.route("path", …)` calls plus those of every earlier router variable (or call of a
    router function, e.g. `web::router()`) EXPR mentions; one mentioned inside
    `.nest("/prefix", …)` is added with the prefix. The function's tail expression is the
    router it returns. The served routers are the router functions no other one uses.
    Functions are named `module::name` (`mod` for mod.rs).
    """

    ROUTE = re.compile(r"\.\s*(route|route_service|nest|nest_service|merge)\s*\(")
    FN = re.compile(r"\bfn\s+(\w+)\s*(?:<[^>{}]*>)?\s*\(")

    def __init__(self, files: list[Path]) -> None:
        self.fns: dict[str, dict[str, set[str]]] = {}
        self.uses: dict[str, set[str]] = {}
        bodies = []
        for path in files:
            src = path.read_text(encoding="utf-8")
            masked = mask_rust(src)
            module = path.stem
            for m in self.FN.finditer(masked):
                args_close = closing(masked, m.end() - 1)
                sig = re.compile(r"\s*->\s*Router\b[^{;]*\{").match(masked, args_close + 1)
                if not sig:
                    continue
                body_open = sig.end() - 1
                fn_id = f"{module}::{m.group(1)}"
                bodies.append((fn_id, src, masked, body_open + 1, closing(masked, body_open)))
        self.fn_ids = {fn_id for fn_id, *_ in bodies}
        # Repeat until stable, so a function may use one defined later or in another file.
        for _ in range(len(bodies) + 1):
            before = copy.deepcopy(self.fns)
            for fn_id, src, masked, start, end in bodies:
                self.fns[fn_id] = self.function_routes(fn_id, src, masked, start, end)
            if self.fns == before:
                break

    def statements(self, masked: str, start: int, end: int) -> Iterator[tuple[int, int]]:
        depth, begin = 0, start
        for k in range(start, end):
            ch = masked[k]
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            elif ch == ";" and depth == 0:
                yield begin, k
                begin = k + 1
        if masked[begin:end].strip():
            yield begin, end

    def function_routes(self, fn: str, src: str, masked: str, start: int, end: int) -> dict[str, set[str]]:
        routers: dict[str, dict[str, set[str]]] = {}
        self.uses[fn] = set()
        tail: dict[str, set[str]] = {}
        for a, b in self.statements(masked, start, end):
            let = re.compile(r"\s*let\s+(?:mut\s+)?(\w+)\s*(?::[^=]*)?=").match(masked, a)
            expr_start = let.end() if let else a
            routes = self.expression_routes(fn, src, masked, expr_start, b, routers)
            if let:
                if routes is not None:
                    routers[let.group(1)] = routes
            elif routes is not None:
                tail = routes
        return tail

    def mentions(self, fn: str, masked: str, a: int, b: int,
                 routers: dict[str, dict[str, set[str]]]) -> Iterator[tuple[int, dict[str, set[str]]]]:
        """(offset, routes) of every router variable or router-function call in [a, b)."""
        module = fn.split("::")[0]
        for m in re.finditer(r"(?:(\w+)\s*::\s*)?\b(\w+)\b", masked[a:b]):
            qualifier, name = m.group(1), m.group(2)
            if qualifier is None and name in routers:
                yield a + m.start(), routers[name]
                continue
            if not re.match(r"\s*\(", masked[a + m.end():]):
                continue
            target_module = {None: module, "self": module, "super": "mod"}.get(qualifier, qualifier)
            fn_id = f"{target_module}::{name}"
            if fn_id in self.fn_ids and fn_id != fn:
                self.uses[fn].add(fn_id)
                yield a + m.start(), self.fns.get(fn_id, {})

    def expression_routes(self, fn: str, src: str, masked: str, a: int, b: int,
                          routers: dict[str, dict[str, set[str]]]) -> dict[str, set[str]] | None:
        """Routes built by the expression masked[a:b], or None if it builds no router."""
        routes: dict[str, set[str]] = {}
        is_router = False
        nested_spans = []

        def add(prefix: str, table: dict[str, set[str]]) -> None:
            for path, methods in table.items():
                full = (prefix.rstrip("/") + path) if prefix else path
                if prefix and path == "/":
                    full = prefix
                routes.setdefault(full or "/", set()).update(methods)

        for m in self.ROUTE.finditer(masked, a, b):
            kind = m.group(1)
            open_at = m.end() - 1
            close_at = closing(masked, open_at)
            is_router = True
            if kind == "merge":
                continue  # the merged router is picked up as a mention below
            path = string_at(src, masked, open_at + 1)
            if path is None:
                raise CheckError(f"fn {fn}: .{kind}( without a string literal path")
            comma = masked.index(",", open_at)
            if kind == "route":
                methods = {name.removesuffix("_service") for name in
                           top_level_calls(masked, comma + 1, close_at)}
                methods &= set(METHODS) | {"any"}
                routes.setdefault(path, set()).update(methods or {"any"})
            elif kind == "route_service":
                routes.setdefault(path, set()).add("any")
            elif kind == "nest_service":
                routes.setdefault(path.rstrip("/") + "/{*rest}", set()).add("any")
            elif kind == "nest":
                for _, table in self.mentions(fn, masked, comma + 1, close_at, routers):
                    add(path, table)
                nested_spans.append((comma + 1, close_at))
        for at, table in self.mentions(fn, masked, a, b, routers):
            if not any(s <= at < e for s, e in nested_spans):
                is_router = True
                add("", table)
        if re.search(r"\bRouter\s*::\s*new\s*\(", masked[a:b]):
            is_router = True
        return routes if is_router else None

    def served(self) -> dict[str, dict[str, set[str]]]:
        used = set().union(*self.uses.values()) if self.uses else set()
        return {fn: routes for fn, routes in self.fns.items() if fn not in used}


def normalize_path(path: str) -> str:
    """axum `{*rest}`, `:id`, `*rest` → OpenAPI `{rest}` / `{id}`."""
    path = re.sub(r"\{\*(\w+)\}", r"{\1}", path)
    path = re.sub(r"/:(\w+)", r"/{\1}", path)
    path = re.sub(r"/\*(\w+)", r"/{\1}", path)
    return path


def check_routes(spec: dict) -> str:
    files = sorted(API_DIR.glob("*.rs"))
    expect(bool(files), f"no Rust files in {API_DIR}")
    source = RouterSource(files)
    served = source.served()
    expect(bool(served), "found no function returning a Router in src/api")
    routes: dict[str, set[str]] = {}
    for table in served.values():
        for path, methods in table.items():
            routes.setdefault(normalize_path(path), set()).update(methods)
    expect("/ws" in routes and any(p.startswith("/api/v1/") for p in routes),
           f"route extraction looks broken: {sorted(routes)}")
    spec_paths = {path: {m for m in METHODS if m in item}
                  for path, item in spec.get("paths", {}).items()}
    problems = []
    for path in sorted(set(routes) - set(spec_paths)):
        problems.append(f"routed but not in the spec: {path}")
    for path in sorted(set(spec_paths) - set(routes)):
        problems.append(f"in the spec but not routed: {path}")
    for path in sorted(set(routes) & set(spec_paths)):
        have, want = spec_paths[path], routes[path]
        if "any" in want:
            if not have:
                problems.append(f"{path}: no operation documented")
            continue
        if want - have:
            problems.append(f"{path}: {'/'.join(sorted(want - have)).upper()} not documented")
        # axum answers HEAD for every GET route; documenting it is optional
        extra = have - want - ({"head"} if "get" in want else set())
        if extra:
            problems.append(f"{path}: {'/'.join(sorted(extra)).upper()} documented but not routed")
    expect(not problems, "; ".join(problems))
    listing = ", ".join(f"{fn}: {len(t)}" for fn, t in sorted(served.items()))
    return f"{len(routes)} routed paths all documented, none extra ({listing})"


# `http::StatusCode` names that Python's HTTPStatus spells differently.
STATUS_ALIASES = {"PAYLOAD_TOO_LARGE": 413, "URI_TOO_LONG": 414, "RANGE_NOT_SATISFIABLE": 416,
                  "CONTENT_TOO_LARGE": 413, "UNPROCESSABLE_CONTENT": 422}


def status_number(name: str) -> int:
    if name in STATUS_ALIASES:
        return STATUS_ALIASES[name]
    try:
        return http.HTTPStatus[name].value
    except KeyError:
        raise CheckError(f"unknown StatusCode::{name}") from None


def check_error_codes(spec: dict) -> str:
    schemas = spec.get("components", {}).get("schemas", {})
    code_schema = schemas.get("ErrorCode")
    expect(isinstance(code_schema, dict), "components.schemas.ErrorCode is missing")
    error = deref(spec, schemas.get("Error", {}))
    expect(set(error.get("required", [])) >= {"code", "message"},
           "Error must require code and message")
    expect(error.get("properties", {}).get("code", {}).get("enum") == code_schema.get("enum"),
           "Error.code must be the ErrorCode enum")
    src = mask_rust(ERROR_CODES_RS.read_text(encoding="utf-8"))
    raw = ERROR_CODES_RS.read_text(encoding="utf-8")
    source_codes = {}
    for m in re.finditer(r"ErrorCode::(\w+)\s*=>\s*\"", src):
        source_codes[m.group(1)] = string_at(raw, src, m.end() - 1)
    expect(len(source_codes) >= 5, f"could not read ErrorCode::as_str from {ERROR_CODES_RS}")
    enum = code_schema.get("enum", [])
    expect(sorted(enum) == sorted(source_codes.values()),
           f"ErrorCode enum {sorted(enum)} != source {sorted(source_codes.values())}")
    api_src = mask_rust(API_ERROR_RS.read_text(encoding="utf-8"))
    statuses = {}
    for m in re.finditer(r"((?:ErrorCode::\w+\s*\|?\s*)+)=>\s*StatusCode::(\w+)", api_src):
        number = status_number(m.group(2))
        for variant in re.findall(r"ErrorCode::(\w+)", m.group(1)):
            statuses[source_codes[variant]] = number
    expect(set(statuses) == set(source_codes.values()),
           f"could not map every code to a status in {API_ERROR_RS}: {statuses}")
    documented = code_schema.get("x-status-codes", {})
    expect(documented == statuses, f"x-status-codes {documented} != source {statuses}")
    return f"{len(enum)} codes with their statuses match the source"


# ---------------------------------------------------------------------------------------
# Live gateways


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"{self.status} {self.headers.get('content-type', '')} {self.text()[:200]!r}"


def request(base: str, method: str, target: str, headers: dict[str, str] | None = None,
            body: bytes | None = None, keep: bool = False):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        result = Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    except BaseException:
        conn.close()
        raise
    if keep:
        return result, conn
    conn.close()
    return result


def example_value(param: dict) -> Any:
    for _, value in examples_of(param):
        return value
    schema = param.get("schema", {})
    if schema.get("examples"):
        return schema["examples"][0]
    raise CheckError(f"parameter {param['name']} has no example")


def to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Call:
    """One request built from an operation's examples."""

    def __init__(self, op: Operation, key: str | None, *, path_values: dict[str, Any] | None = None,
                 optional: bool = False, body: Any = None, has_body: bool = False) -> None:
        self.op = op
        self.path_values = dict(path_values or {})
        self.query: dict[str, str] = {}
        self.headers: dict[str, str] = {}
        for p in op.params:
            where, name = p["in"], p["name"]
            if where == "path":
                self.path_values.setdefault(name, example_value(p))
            elif where == "query" and (p.get("required") or (optional and "example" in p)):
                self.query[name] = to_text(example_value(p))
            elif where == "header" and p.get("required"):
                self.headers[name] = to_text(example_value(p))
        self.body: bytes | None = None
        if has_body:
            self.body = json.dumps(body).encode()
            self.headers["Content-Type"] = "application/json"
        if op.secured and key is not None:
            self.headers["Authorization"] = f"Bearer {key}"

    def target(self) -> str:
        path = self.op.path
        for name, value in self.path_values.items():
            path = path.replace("{" + name + "}", urllib.parse.quote(to_text(value), safe=""))
        if self.query:
            path += "?" + urllib.parse.urlencode(self.query)
        return path

    def send(self, base: str) -> Response:
        return request(base, self.op.method.upper(), self.target(), self.headers, self.body)

    def describe(self) -> str:
        return f"{self.op.method.upper()} {self.target()}"


def valid_calls(op: Operation, key: str | None) -> list[tuple[str, Call]]:
    """Every valid request the spec's examples describe for `op`."""
    enum_params = [p for p in op.params if p["in"] == "path" and p.get("schema", {}).get("enum")]
    path_variants: list[dict[str, Any]] = [{}]
    for p in enum_params:
        path_variants = [{**v, p["name"]: value} for v in path_variants for value in p["schema"]["enum"]]
    bodies = op.json_examples()
    has_optional = any(p["in"] == "query" and not p.get("required") and "example" in p for p in op.params)
    calls = []
    for values in path_variants:
        for body_name, body in bodies or [("", None)]:
            label = " ".join(x for x in (body_name and f"body={body_name}",) if x)
            calls.append((label, Call(op, key, path_values=values, body=body, has_body=bool(bodies))))
        if has_optional:
            body_name, body = (bodies or [("", None)])[0]
            calls.append(("optional params", Call(op, key, path_values=values, optional=True,
                                                  body=body, has_body=bool(bodies))))
    return calls


def media_matches(actual: str, documented: str) -> bool:
    def norm(s: str) -> str:
        return ";".join(part.strip().lower() for part in s.split(";") if part.strip())
    a, d = norm(actual), norm(documented)
    return a == d or (";" not in d and a.split(";")[0] == d) or (
        ";" in d and a.split(";")[0] == d.split(";")[0] and set(d.split(";")) <= set(a.split(";")))


def check_against_doc(op: Operation, resp: Response, doc: dict, spec_status: int) -> str:
    """`resp` matches the documented response `doc`: content type, required headers, body."""
    expect(resp.status == spec_status, f"status {resp.status}, want {spec_status}: {resp!r}")
    for name, header in doc.get("headers", {}).items():
        if header.get("required") and name.lower() not in resp.headers:
            raise CheckError(f"missing documented header {name}: {resp.headers}")
        if name.lower() in resp.headers:
            value: Any = resp.headers[name.lower()]
            if header.get("schema", {}).get("type") == "integer" and value.isdigit():
                value = int(value)
            errors = schema_errors(header.get("schema", {}), value)
            expect(not errors, f"header {name}={value!r}: {errors}")
    content = doc.get("content")
    if not content:
        expect(resp.body == b"", f"documented without content, got a body: {resp!r}")
        return "no body"
    ctype = resp.headers.get("content-type", "")
    media_type = next((m for m in content if media_matches(ctype, m)), None)
    expect(media_type is not None, f"content type {ctype!r} not among {sorted(content)}")
    schema = content[media_type].get("schema", {})
    if media_type.startswith("application/json"):
        try:
            value = json.loads(resp.body)
        except ValueError as err:
            raise CheckError(f"body is not JSON ({err}): {resp!r}") from None
        missing = [p for p in schema.get("required", []) if not isinstance(value, dict) or p not in value]
        expect(not missing, f"missing required properties {missing}: {resp!r}")
    else:
        value = resp.text()
    errors = schema_errors(schema, value)
    expect(not errors, f"body does not match the {media_type} schema: {errors}: {resp!r}")
    return media_type


def error_check(op: Operation, resp: Response, status: int, codes: dict[str, int]) -> str:
    """`resp` is the documented `status` with an Error body whose code maps to it."""
    doc = op.response(resp.status)
    check_against_doc(op, resp, doc, status)
    body = json.loads(resp.body)
    expect(isinstance(body, dict) and set(body) >= {"code", "message"},
           f"not an Error body: {resp!r}")
    expect(codes.get(body["code"]) == status,
           f"code {body['code']!r} has status {codes.get(body['code'])}, answered {status}")
    return body["code"]


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def live_dev_checks(report: Report, spec: dict, ops: list[Operation], gw: Gateway, key: str,
                    codes: dict[str, int]) -> None:
    """Dev mode, API key set, no admin listener: every path on the public listener."""
    for op in ops:
        for label, call in valid_calls(op, key):
            def valid(op=op, call=call) -> str:
                status = op.success_code()
                resp = call.send(gw.public)
                media = check_against_doc(op, resp, op.response(resp.status), status)
                if status == 101:
                    sent = call.headers.get("Sec-WebSocket-Key", "")
                    expect(resp.headers.get("sec-websocket-accept") == ws_accept(sent),
                           "wrong Sec-WebSocket-Accept")
                return f"{resp.status} {media}"
            report.run(f"live {op.name} valid {call.describe()}" + (f" [{label}]" if label else ""), valid)

        if op.secured:
            for what, header in (("missing key", None), ("wrong key", f"Bearer {key}-wrong"),
                                 ("not a bearer key", f"Basic {key}")):
                def unauthorized(op=op, header=header) -> str:
                    call = valid_calls(op, None)[0][1]
                    if header:
                        call.headers["Authorization"] = header
                    resp = call.send(gw.public)
                    return f"401 {error_check(op, resp, 401, codes)}"
                report.run(f"live {op.name} {what}", unauthorized)

        # An invalid room/user id (in the path or the query) gets a documented 400 Error.
        for p in op.params:
            kind = ref_name(op.raw_params[(p["name"], p["in"])].get("schema"))
            if kind not in ("RoomId", "UserId") or p["in"] not in ("path", "query"):
                continue

            def invalid_id(op=op, p=p) -> str:
                call = valid_calls(op, key)[0][1]
                if p["in"] == "path":
                    call.path_values[p["name"]] = "a b"
                else:
                    call.query[p["name"]] = "a b"
                resp = call.send(gw.public)
                return f"400 {error_check(op, resp, 400, codes)}"
            report.run(f"live {op.name} invalid {p['in']} {p['name']}", invalid_id)

        # A path parameter outside its enum gets a documented 404.
        for p in op.params:
            if p["in"] == "path" and p.get("schema", {}).get("enum"):
                def outside_enum(op=op, p=p) -> str:
                    call = valid_calls(op, key)[0][1]
                    call.path_values[p["name"]] = "no-such-" + p["name"]
                    resp = call.send(gw.public)
                    check_against_doc(op, resp, op.response(resp.status), 404)
                    return "404"
                report.run(f"live {op.name} unknown {p['name']}", outside_enum)

        # Query strings the framework cannot parse get a documented 400.
        for p in op.params:
            if p["in"] != "query":
                continue
            bad = None
            if p.get("required"):
                bad, what = "drop", f"missing {p['name']}"
            elif p.get("schema", {}).get("type") == "integer":
                bad, what = "x", f"{p['name']}=x"
            if bad is None:
                continue

            def bad_query(op=op, p=p, bad=bad) -> str:
                call = valid_calls(op, key)[0][1]
                if bad == "drop":
                    call.query.pop(p["name"], None)
                else:
                    call.query[p["name"]] = bad
                resp = call.send(gw.public)
                check_against_doc(op, resp, op.response(resp.status), 400)
                return f"400 {resp.headers.get('content-type', '')}"
            report.run(f"live {op.name} {what}", bad_query)

        if op.json_examples():
            body_cases = [
                ("body without required fields", b"{}", "application/json", 400),
                ("body not JSON", b"not json", "application/json", 400),
                ("body over the frame limit",
                 json.dumps({"data": "x" * 66000}).encode(), "application/json", 413),
            ]
            for what, body, ctype, status in body_cases:
                def bad_body(op=op, body=body, ctype=ctype, status=status) -> str:
                    call = valid_calls(op, key)[0][1]
                    call.body = body
                    call.headers["Content-Type"] = ctype
                    resp = call.send(gw.public)
                    return f"{status} {error_check(op, resp, status, codes)}"
                report.run(f"live {op.name} {what}", bad_body)

            def form_content_type(op=op) -> str:
                # "parsed as JSON whatever the Content-Type": curl -d sends form-urlencoded
                call = valid_calls(op, key)[0][1]
                call.headers["Content-Type"] = "application/x-www-form-urlencoded"
                resp = call.send(gw.public)
                status = op.success_code()
                check_against_doc(op, resp, op.response(resp.status), status)
                return f"{status}"
            report.run(f"live {op.name} JSON body sent as form-urlencoded", form_content_type)

    ws = next((op for op in ops if op.path == "/ws" and op.method == "get"), None)
    if ws is None:
        return
    origin = next((p for p in ws.params if p["in"] == "header" and p["name"].lower() == "origin"), None)

    def foreign_origin() -> str:
        expect(origin is not None, "/ws documents no Origin header")
        other = (origin.get("examples") or {}).get("otherSite", {}).get("value")
        expect(bool(other), "Origin has no `otherSite` example")
        call = valid_calls(ws, key)[0][1]
        call.headers["Origin"] = other
        resp = call.send(gw.public)
        return f"403 {error_check(ws, resp, 403, codes)}"
    report.run("live GET /ws foreign Origin", foreign_origin)

    def same_host_origin() -> str:
        call = valid_calls(ws, key)[0][1]
        call.headers["Origin"] = gw.public
        resp = call.send(gw.public)
        check_against_doc(ws, resp, ws.response(resp.status), 101)
        return "101"
    report.run("live GET /ws same-host Origin", same_host_origin)

    def not_an_upgrade() -> str:
        resp = request(gw.public, "GET", "/ws")
        check_against_doc(ws, resp, ws.response(resp.status), 400)
        return f"400 {resp.headers.get('content-type', '')}"
    report.run("live GET /ws without upgrade headers", not_an_upgrade)


def live_production_checks(report: Report, ops: list[Operation], gw: Gateway, key: str,
                           codes: dict[str, int]) -> None:
    """JWT secret (dev mode off), no API key, admin listener, connection cap 1."""
    for op in ops:
        if op.secured:
            def disabled(op=op) -> str:
                resp = valid_calls(op, key)[0][1].send(gw.public)
                return f"503 {error_check(op, resp, 503, codes)}"
            report.run(f"live no API key configured: {op.name}", disabled)
        if "dev" in (op.op.get("tags") or []):
            def dev_off(op=op) -> str:
                resp = valid_calls(op, key)[0][1].send(gw.public)
                code = error_check(op, resp, 404, codes)
                expect(code == "not_found", f"code {code}")
                return f"404 {code}"
            report.run(f"live dev mode off: {op.name}", dev_off)

    def admin_listener() -> str:
        served, refused = [], []
        for op in ops:
            call = valid_calls(op, key)[0][1]
            on_admin = call.send(gw.admin)
            if "admin" in op.listeners:
                check_against_doc(op, on_admin, op.response(on_admin.status), op.success_code())
                served.append(op.name)
                if "public" not in op.listeners:
                    # e.g. /metrics: on the public listener only without an admin listener
                    on_public = call.send(gw.public)
                    expect(on_public.status == 404 and "404" in op.responses,
                           f"{op.name} on the public listener: {on_public!r}, want the documented 404")
            else:
                expect(on_admin.status == 404, f"{op.name} on the admin listener: {on_admin!r}, want 404")
                refused.append(op.name)
        expect(bool(served), "no operation lists the admin server (x-switchboard-listener: admin)")
        return f"admin serves {', '.join(served)}; 404 for the {len(refused)} others"
    report.run("live admin listener serves exactly the documented paths", admin_listener)

    ws = next((op for op in ops if op.path == "/ws" and op.method == "get"), None)
    ready = next((op for op in ops if op.path == "/readyz" and op.method == "get"), None)
    health = next((op for op in ops if op.path == "/healthz" and op.method == "get"), None)
    if ws is not None:
        def connection_limit() -> str:
            call = valid_calls(ws, key)[0][1]
            held, conn = request(gw.public, "GET", call.target(), call.headers, keep=True)
            try:
                expect(held.status == 101, f"first upgrade: {held!r}")
                resp = call.send(gw.public)
                code = error_check(ws, resp, 503, codes)
                return f"503 {code} Retry-After {resp.headers.get('retry-after')}"
            finally:
                conn.close()
        report.run("live GET /ws over the connection cap", connection_limit)

    gw.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # the drain delay keeps the listeners open

    if ready is not None:
        def readyz_draining() -> str:
            out = []
            for base in (gw.public, gw.admin):
                resp = request(base, "GET", "/readyz")
                check_against_doc(ready, resp, ready.response(resp.status), 503)
                expect(resp.text() == "draining", f"body {resp.text()!r}")
                out.append(resp.text())
            return "503 " + ", ".join(out) + " (public, admin)"
        report.run("live draining: GET /readyz", readyz_draining)
    if health is not None:
        def healthz_draining() -> str:
            resp = request(gw.public, "GET", "/healthz")
            check_against_doc(health, resp, health.response(resp.status), 200)
            return "200"
        report.run("live draining: GET /healthz", healthz_draining)
    if ws is not None:
        def ws_draining() -> str:
            for _ in range(50):  # the connection-cap check's session may still be counted
                resp = valid_calls(ws, key)[0][1].send(gw.public)
                if resp.status == 503 and b"draining" in resp.body:
                    break
                time.sleep(0.05)
            code = error_check(ws, resp, 503, codes)
            expect(b"draining" in resp.body, f"{resp!r}")
            return f"503 {code} Retry-After {resp.headers.get('retry-after')}"
        report.run("live draining: GET /ws", ws_draining)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=str(REPO / "target" / "release" / "switchboard"),
                        help="the switchboard binary to run (default: target/release/switchboard)")
    args = parser.parse_args()
    binary = Path(args.bin).resolve()
    # A FAIL on one line; a broken check shows where it broke.
    report = Report(one_line=lambda detail: " ".join(detail.split()),
                    crash=lambda err: f"{type(err).__name__}: {err} | {traceback.format_exc(limit=3)}")

    try:
        spec = load_spec()
    except Exception as err:
        report.fail("spec parses", f"{SPEC}: {err}")
        return 1
    report.run("spec is valid OpenAPI 3.1", lambda: check_valid_spec(spec))
    ops: list[Operation] = []

    def build_ops() -> str:
        ops.extend(operations(spec))
        return f"{len(ops)} operations"
    if not report.run("spec operations resolve", build_ops):
        return 1
    report.run("spec operations are complete", lambda: check_operations_complete(spec, ops))
    report.run("spec examples match their schemas", lambda: check_examples(spec, ops))
    report.run("every routed path is documented and every documented path is routed",
               lambda: check_routes(spec))
    report.run("error codes and statuses match the source", lambda: check_error_codes(spec))
    codes = spec.get("components", {}).get("schemas", {}).get("ErrorCode", {}).get("x-status-codes", {})

    if not binary.is_file() or not os.access(binary, os.X_OK):
        report.fail("gateway binary", f"{binary} is not an executable file; build it first")
    else:
        key = secrets.token_hex(16)
        with tempfile.TemporaryDirectory(prefix="check-openapi-") as tmp:
            gateways: list[Gateway] = []

            def start(label: str, args: list[str], env: dict[str, str], admin: bool = False) -> Gateway:
                gw = Gateway(binary, Path(tmp) / f"gateway-{label}.log", args, gateway_env(env),
                             admin=admin)
                gateways.append(gw)
                gw.wait_ready(gw.public + "/readyz")
                return gw
            try:
                def start_dev() -> str:
                    return start("dev", ["--dev"], {"SWITCHBOARD_API_KEY": key}).public
                if report.run("live gateway (dev mode, API key) starts", start_dev):
                    dev = gateways[-1]
                    live_dev_checks(report, spec, ops, dev, key, codes)
                    dev.stop(grace=5)

                def start_production() -> str:
                    gw = start("production", [], {"SWITCHBOARD_JWT_SECRET": secrets.token_hex(16),
                                                  "SWITCHBOARD_MAX_CONNECTIONS": "1",
                                                  "SWITCHBOARD_DRAIN_DELAY": "10s"}, admin=True)
                    return f"{gw.public}, admin {gw.admin}"
                if report.run("live gateway (no API key, admin listener, cap 1) starts", start_production):
                    live_production_checks(report, ops, gateways[-1], key, codes)
            finally:
                stop_processes(gateways, grace=0)  # the production one is still draining
                if report.failed:
                    for gw in gateways:
                        print(f"  gateway log ({gw.log_path.name}): {gw.log_tail()}", flush=True)

    print(f"check-openapi: {len(report.passed)} passed, {len(report.failed)} failed "
          f"in {report.elapsed():.1f} s", flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
