#!/usr/bin/env bash
# The two commands of this project:
#   ./run.sh [--gateway-only]   set up (.venv, demo AIRFLOW_HOME, demo config) and start the gateway with
#                               Airflow's scheduler, dag-processor, triggerer and api-server beside it
#                               (--gateway-only: the gateway alone, as next to an existing Airflow)
#   ./run.sh test [pytest args] the same set-up, then ruff and the whole test suite (SQLite and PostgreSQL),
#                               then the reduced suite on each older supported Airflow, oldest first (without
#                               pytest args)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
# The Airflow release series to install (config/constraints/airflow-SERIES.txt pins it and everything else).
NEWEST_SERIES=3.3
OLDEST_SERIES=3.1
# The series that get the reduced suite (tests marked `oldest`), each in its own .venv-airflow-SERIES: the
# oldest, and 3.2, which has pins (fastapi/cadwyn) and code paths of its own.
REDUCED_SERIES="$OLDEST_SERIES 3.2"
AIRFLOW_SERIES=${AIRFLOW_SERIES:-$NEWEST_SERIES}
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

# setup_venv DIR SERIES: the gateway (editable) and apache-airflow SERIES, every package pinned by the
# committed constraints file; re-installed only when the packaging or the pins changed.
setup_venv() {
  local venv=$1 series=$2
  local constraints=$ROOT/config/constraints/airflow-$series.txt
  [ -f "$constraints" ] || { echo "no constraints for Airflow $series ($constraints)" >&2; exit 2; }
  if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    "$(python_for_venv)" -m venv "$venv"
  fi
  local stamp="$venv/.installed-$(cat setup.py pyproject.toml "$constraints" | sha1sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    say "installing the gateway and apache-airflow $series into $venv (first time: a few minutes)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    PYTHONWARNINGS=ignore "$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$constraints" -e '.[test,postgres]' 2>&1 \
      | grep -v '^WARNING: Location' || true
    "$venv/bin/python" -c 'import gateway, airflow, aiohttp_jinja2, psycopg2, asyncpg' || { echo "install failed" >&2; exit 1; }
    rm -f "$venv"/.installed-*; touch "$stamp"
  fi
}

setup_demo() {
  mkdir -p "$AIRFLOW_HOME/dags"
  if [ ! -f "$AIRFLOW_HOME/airflow.db" ]; then
    say "preparing the demo AIRFLOW_HOME at $AIRFLOW_HOME (SQLite)"
    "$VENV/bin/airflow" db migrate > "$DEMO/db-migrate.log" 2>&1 || { cat "$DEMO/db-migrate.log" >&2; exit 1; }
  fi
  # The demo's runs should start: new DAGs are not paused, and the demo DAG is unpaused.
  sed -i -e 's/^load_examples = .*/load_examples = False/' \
         -e 's/^dags_are_paused_at_creation = .*/dags_are_paused_at_creation = False/' "$AIRFLOW_HOME/airflow.cfg"
  cp config/demo_dags/*.py "$AIRFLOW_HOME/dags/"
  "$VENV/bin/airflow" dags reserialize > "$DEMO/reserialize.log" 2>&1 || { cat "$DEMO/reserialize.log" >&2; exit 1; }
  "$VENV/bin/airflow" dags unpause gateway_demo > "$DEMO/unpause.log" 2>&1 || { cat "$DEMO/unpause.log" >&2; exit 1; }
}

# The demo config, written anew at every start with a fresh token: the token is printed once, only its
# SHA-256 is written (DAG code can read files). --gateway-only starts no Airflow service beside it.
write_demo_config() {
  local token digest
  token=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')
  digest=$(printf '%s\n' "$token" | "$VENV/bin/airflow-rest-gateway" --hash-token)
  (umask 077; sed -e "s|@AIRFLOW_HOME@|$AIRFLOW_HOME|" -e "s|^\( *token_sha256:\).*|\1 \"$digest\"|" \
    config/demo.yaml.in > "$DEMO/gateway.yaml")
  echo "$token"
}

# A Debian package the tests drive for real (nginx for the proxy tests, chromium for the browser tests,
# postgresql for the PostgreSQL runs): installed when missing and we can (root with apt); otherwise those
# tests are skipped, loudly. $1 is a command that succeeds when it is there.
ensure_debian_package() {
  local present=$1 package=$2 purpose=$3
  if eval "$present" >/dev/null 2>&1; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $package (Debian package) for the $purpose"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package") > "$DEMO/apt-$package.log" 2>&1 \
      || say "WARNING: could not install $package (see $DEMO/apt-$package.log): the $purpose will be SKIPPED"
  else
    say "WARNING: $package is missing and cannot be installed here: the $purpose will be SKIPPED"
  fi
}

mode=${1:-serve}
case "$mode" in
  serve|--gateway-only)
    [ "$mode" = serve ] && shift || true
    setup_venv "$VENV" "$AIRFLOW_SERIES"
    setup_demo
    token=$(write_demo_config)
    say "token (printed once; a new one at every start): $token"
    say "try:   curl -H 'rest_api_plugin_http_token: $token' 'http://127.0.0.1:8780/admin/rest_api/api?api=version'"
    exec "$VENV/bin/airflow-rest-gateway" --config "$DEMO/gateway.yaml" "$@"
    ;;
  test)
    shift || true
    setup_venv "$VENV" "$AIRFLOW_SERIES"
    setup_demo
    ensure_debian_package "command -v nginx || test -x /usr/sbin/nginx" nginx "proxy tests"
    ensure_debian_package "command -v chromium" chromium "browser tests"
    ensure_debian_package "ls /usr/lib/postgresql/*/bin/initdb" postgresql "PostgreSQL runs"
    say "ruff"
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    if [ $# -gt 0 ]; then exec "$VENV/bin/python" -m pytest "$@"; fi
    # Two workers (one per core: most tests wait on an Airflow process); a module stays on one worker.
    workers=(-n "${TEST_WORKERS:-2}" --dist loadfile)
    say "pytest: the whole suite on Airflow $AIRFLOW_SERIES (SQLite and PostgreSQL)"
    "$VENV/bin/python" -m pytest "${workers[@]}"
    # The older supported releases: each its own venv, the reduced suite (tests marked `oldest`); every
    # series runs even when one fails, and the exit code says whether any did.
    failed=()
    for series in $REDUCED_SERIES; do
      old_venv=$ROOT/.venv-airflow-$series
      setup_venv "$old_venv" "$series"
      say "pytest: the reduced suite on Airflow $series"
      "$old_venv/bin/python" -m pytest "${workers[@]}" -m oldest -p no:cacheprovider || failed+=("$series")
    done
    if [ ${#failed[@]} -gt 0 ]; then say "the reduced suite FAILED on Airflow ${failed[*]}"; exit 1; fi
    ;;
  *)
    echo "usage: $0 [--gateway-only] | $0 test [pytest args]" >&2; exit 2
    ;;
esac
