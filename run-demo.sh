#!/usr/bin/env bash
# Set up (first run only takes long) and run the main job: `mcp-harness demo`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/mcp-harness demo "$@"
