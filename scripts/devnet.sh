#!/usr/bin/env bash
# The demo from nothing: .venv, anvil (npm), test tokens, a pool, a key, and addrpool serving.
#   ./scripts/devnet.sh [addrpool devnet up args...]   (state in ./.devnet)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
here="$(pwd)"
cd "$root"
source scripts/bootstrap.sh
ensure_venv
ensure_packages
python -c "from scripts.devnet.anvil import ensure_anvil; ensure_anvil()"
cd "$here"
exec "$root/.venv/bin/addrpool" devnet up "$@"
