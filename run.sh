#!/usr/bin/env bash
# The two commands of this project:
#   ./run.sh          set up (.venv, demo AIRFLOW_HOME, demo config) and start the gateway
#   ./run.sh test     the same set-up, then ruff and the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
# The Airflow release series to install (a file config/constraints/airflow-SERIES.txt pins it and everything else).
AIRFLOW_SERIES=${AIRFLOW_SERIES:-3.3}
CONSTRAINTS=$ROOT/config/constraints/airflow-$AIRFLOW_SERIES.txt
VENV=${VENV:-$ROOT/.venv}
DEMO=$ROOT/.demo
export AIRFLOW_HOME=$DEMO/airflow_home
export AIRFLOW__CORE__LOAD_EXAMPLES=False

say() { printf '==> %s\n' "$*" >&2; }

python_for_venv() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then echo "$candidate"; return; fi
  done
  echo "no python3 found" >&2; exit 1
}

setup_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$(python_for_venv)" -m venv "$VENV"
  fi
  # Reproducible: every package pinned by the committed constraints file of the Airflow release.
  # Re-install only when the packaging or the pins changed.
  local stamp="$VENV/.installed-$(cat setup.py pyproject.toml "$CONSTRAINTS" | sha1sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    say "installing the gateway and apache-airflow $AIRFLOW_SERIES into $VENV (first time: a few minutes)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$CONSTRAINTS" -e '.[test,postgres]' 2>&1 \
      | grep -v '^WARNING: Location' || true
    "$VENV/bin/python" -c 'import gateway, airflow, aiohttp_jinja2' || { echo "install failed" >&2; exit 1; }
    rm -f "$VENV"/.installed-*; touch "$stamp"
  fi
}

setup_demo() {
  mkdir -p "$AIRFLOW_HOME/dags"
  if [ ! -f "$AIRFLOW_HOME/airflow.db" ]; then
    say "preparing the demo AIRFLOW_HOME at $AIRFLOW_HOME (SQLite)"
    "$VENV/bin/airflow" db migrate > "$DEMO/db-migrate.log" 2>&1 || { cat "$DEMO/db-migrate.log" >&2; exit 1; }
    sed -i 's/^load_examples = .*/load_examples = False/' "$AIRFLOW_HOME/airflow.cfg"
  fi
  cp config/demo_dags/*.py "$AIRFLOW_HOME/dags/"
  "$VENV/bin/airflow" dags reserialize > "$DEMO/reserialize.log" 2>&1 || { cat "$DEMO/reserialize.log" >&2; exit 1; }
  if ! grep -q token_sha256 "$DEMO/gateway.yaml" 2>/dev/null; then   # missing, or from before hashed tokens
    (umask 077; sed -e "s|@AIRFLOW_HOME@|$AIRFLOW_HOME|" config/demo.yaml.in > "$DEMO/gateway.yaml")
  fi
}

# A fresh demo token at every start: printed once, only its SHA-256 is written (DAG code can read files).
new_demo_token() {
  local token digest
  token=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')
  digest=$(printf '%s\n' "$token" | "$VENV/bin/airflow-rest-gateway" --hash-token)
  sed -i "s|^\( *token_sha256:\).*|\1 \"$digest\"|" "$DEMO/gateway.yaml"
  echo "$token"
}

# A Debian tool the tests drive for real (nginx for the proxy tests, chromium for the browser tests):
# installed when missing and we can (root with apt); otherwise those tests are skipped, loudly.
ensure_debian_tool() {
  local binary=$1 package=$2 purpose=$3
  if command -v "$binary" >/dev/null 2>&1 || [ -x "/usr/sbin/$binary" ]; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $package (Debian package) for the $purpose"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package") > "$DEMO/apt-$package.log" 2>&1 \
      || say "WARNING: could not install $package (see $DEMO/apt-$package.log): the $purpose will be SKIPPED"
  else
    say "WARNING: $binary is missing and cannot be installed here: the $purpose will be SKIPPED"
  fi
}

case "${1:-serve}" in
  serve)
    setup_venv
    setup_demo
    token=$(new_demo_token)
    say "token (printed once; a new one at every start): $token"
    say "try:   curl -H 'rest_api_plugin_http_token: $token' 'http://127.0.0.1:8780/admin/rest_api/api?api=version'"
    exec "$VENV/bin/airflow-rest-gateway" --config "$DEMO/gateway.yaml"
    ;;
  test)
    shift || true
    setup_venv
    setup_demo
    ensure_debian_tool nginx nginx "proxy tests"
    ensure_debian_tool chromium chromium "browser tests"
    say "ruff"
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    say "pytest"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: $0 [serve|test [pytest args]]" >&2; exit 2
    ;;
esac
