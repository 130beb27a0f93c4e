#!/usr/bin/env bash
# The whole test suite, from nothing: virtualenv, packages, PostgreSQL, lint, types, tests.
#   ./scripts/test.sh [pytest args...]
# pytest runs in two processes per core (pytest-xdist): many tests wait on a server, a worker or
# anvil rather than compute, and 4 workers beat 2 on two cores. `-n 0` runs it in one process.
# Under CI=true a missing PostgreSQL is a failure; elsewhere it is reported loudly and the
# SQLite half still runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

ensure_venv
ensure_packages dev
echo "== Chromium and chromedriver (Debian), for the payer's pages in a real browser"
ensure_debian_packages chromium chromium-driver
echo "== PgBouncer and HAProxy (Debian), for the cluster's fault test (tests/scripts/cluster)"
ensure_debian_packages pgbouncer haproxy
echo "== anvil (npm, into .tools/)"; python -c "from scripts.devnet.anvil import ensure_anvil; print(ensure_anvil())"
# Installed once here, not by the first test worker that needs it while the others race it.
echo "== TypeScript compiler (npm, into .tools/)"
python -c "from tests.fixtures.clients.typescript import ensure_typescript; print(ensure_typescript())"

pg_url=""
if postgres_ready; then
  run_db="addrpool_test_$(date +%s)_$$"
  psql_admin -qc "CREATE DATABASE ${run_db}"
  # Each pytest-xdist worker makes `${run_db}_gw0`, `_gw1`, … beside it and drops its own; these
  # go too if a worker could not.
  trap 'drop_test_databases "${run_db}"' EXIT
  pg_url="postgresql://${PGUSER:-postgres}@${PGHOST:-127.0.0.1}:${PGPORT:-5432}/${run_db}"
  echo "PostgreSQL: fresh database ${run_db}"
elif [ "${CI:-}" = "true" ]; then
  echo "FATAL: CI=true and no PostgreSQL could be reached or started on ${PGHOST:-127.0.0.1}:${PGPORT:-5432}" >&2
  exit 1
else
  cat >&2 <<'BANNER'
################################################################################
#  NO POSTGRESQL: none is installed or reachable. Running the SQLite half only. #
#  Every PostgreSQL test below is SKIPPED. Install PostgreSQL to run them.     #
################################################################################
BANNER
fi

echo "== ruff"; ruff check . && ruff format --check .
echo "== mypy (strict on pool/ chains/ api/)"; mypy
echo "== import-linter"; lint-imports
echo "== pytest"
ADDRPOOL_TEST_POSTGRES_URL="${pg_url}" python -m pytest -n "$(( $(getconf _NPROCESSORS_ONLN) * 2 ))" "$@"
