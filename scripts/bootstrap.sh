# Shared by scripts/serve.sh, scripts/devnet.sh and scripts/test.sh: set up everything from
# nothing. Sourced, not run.

# The repository's root: this file sits in its scripts/ folder.
ADDRPOOL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    echo "creating .venv"
    python3 -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
}

# Reinstall only when pyproject.toml changed since the last install.
ensure_packages() {
  local extra="${1:-}" stamp=".venv/.installed-${1:-base}"
  local spec="."
  [ -n "$extra" ] && spec=".[${extra}]"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "installing addrpool ${spec} into .venv"
    python -m pip install --quiet --disable-pip-version-check --upgrade pip
    python -m pip install --quiet --disable-pip-version-check -e "$spec"
    touch "$stamp"
  fi
}

# Debian packages the tests need, installed when missing (the tests run as root in CI). The
# payer's pages are tested in a real browser: Chromium and its matching chromedriver.
ensure_debian_packages() {
  local missing=() package
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "FATAL: not root: run \`sudo apt-get install -y ${missing[*]}\` first" >&2
    return 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

psql_admin() {
  psql -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" -d "${PGDATABASE:-postgres}" "$@"
}

# True when PostgreSQL answers; starts a local cluster that is installed but stopped.
postgres_ready() {
  command -v psql >/dev/null 2>&1 || return 1
  if psql_admin -qAtc "SELECT 1" >/dev/null 2>&1; then
    return 0
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    local version
    for version in $(ls /etc/postgresql); do
      echo "starting PostgreSQL ${version}/main"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    done
    local attempt
    for attempt in $(seq 1 30); do
      psql_admin -qAtc "SELECT 1" >/dev/null 2>&1 && return 0
      sleep 1
    done
  fi
  return 1
}

# Install .venv in the repository's root, run the caller's `setup_in_root` there if it defines
# one, then run `addrpool ARGS...` from the caller's folder, so relative paths in ARGS and the
# default SQLite file stay where the caller stands.
run_addrpool() {
  local here
  here="$(pwd)"
  cd "$ADDRPOOL_ROOT"
  ensure_venv
  ensure_packages
  if declare -F setup_in_root >/dev/null; then setup_in_root; fi
  cd "$here"
  exec "$ADDRPOOL_ROOT/.venv/bin/addrpool" "$@"
}

# Drop database $1 and the per-worker databases the test suite made beside it ($1_gw0, ...).
drop_test_databases() {
  local name
  for name in $(psql_admin -qAtc "SELECT datname FROM pg_database WHERE datname = '$1' OR datname LIKE '$1\_gw%'" 2>/dev/null); do
    psql_admin -qc "DROP DATABASE IF EXISTS \"${name}\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
