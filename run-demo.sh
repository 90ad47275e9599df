#!/usr/bin/env bash
# Set up (the first run takes a few minutes, later runs skip it) and run `mcp-harness demo`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/mcp-harness demo "$@"
