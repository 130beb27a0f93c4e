#!/usr/bin/env bash
# The demo from nothing: .venv, anvil (npm), test tokens, a pool, a key, and addrpool serving.
#   ./scripts/devnet.sh [addrpool devnet up args...]   (state in ./.devnet)
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
setup_in_root() { python -c "from scripts.devnet.anvil import ensure_anvil; ensure_anvil()"; }
run_addrpool devnet up "$@"
