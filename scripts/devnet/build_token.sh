#!/usr/bin/env bash
# Rebuild TestToken.json from TestToken.sol with a pinned solc-js, offline after the npm install.
#   scripts/devnet/build_token.sh [OUT]   (default: scripts/devnet/TestToken.json)
# The bytecode's metadata hash covers the source's path, so the source is compiled as the bare
# name TestToken.sol from a scratch directory; any other path gives different (valid) bytecode.
set -euo pipefail
SOLC_VERSION=0.8.37
here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-${here}/TestToken.json}")"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

cd "${work}"
npm install --no-audit --no-fund --silent "solc@${SOLC_VERSION}" >/dev/null
cp "${here}/TestToken.sol" .
command="npx solcjs --bin --abi --optimize -o build TestToken.sol"
${command} >/dev/null
compiler="$(npx solcjs --version)"

COMMAND="${command}" COMPILER="${compiler}" OUT="${out}" node -e '
const fs = require("fs");
const stem = "build/TestToken_sol_TestToken";
const artifact = {
  contract: "TestToken",
  compiler: process.env.COMPILER,
  command: process.env.COMMAND,
  abi: JSON.parse(fs.readFileSync(stem + ".abi", "utf8")),
  bytecode: "0x" + fs.readFileSync(stem + ".bin", "utf8").trim(),
};
fs.writeFileSync(process.env.OUT, JSON.stringify(artifact, null, 2) + "\n");
'
echo "wrote ${out} (${compiler})"
