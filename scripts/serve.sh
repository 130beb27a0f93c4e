#!/usr/bin/env bash
# Install everything and start addrpool (SQLite file in the working directory by default).
#   ./scripts/serve.sh [addrpool serve args...]
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
run_addrpool serve "$@"
