#!/usr/bin/env bash
# Install everything and start addrpool (SQLite file in the working directory by default).
#   ./scripts/serve.sh [addrpool serve args...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
here="$(pwd)"
cd "$root"
source scripts/bootstrap.sh
ensure_venv
ensure_packages
cd "$here"
exec "$root/.venv/bin/addrpool" serve "$@"
