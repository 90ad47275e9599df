#!/usr/bin/env bash
# Create .venv and install mcp-harness. `--test` also installs what the tests use: the test
# extras, and the real Claude Code CLI from npm (into .cache/claude-code) for end-to-end tests.
# torch is pinned to the CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "mcp-harness needs Python 3.11+ (found $("$python" --version 2>&1)); set PYTHON=..." >&2
  exit 1
}

# System tools: tmux (the terminal layer) and a C compiler (the shell prefix wrapper).
missing=()
command -v tmux >/dev/null || missing+=(tmux)
command -v cc >/dev/null || command -v gcc >/dev/null || missing+=(gcc)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "please install: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${pip[@]}" --upgrade pip
"${pip[@]}" "torch==2.13.0"
if [ "${1:-}" = "--test" ]; then
  "${pip[@]}" -e ".[test]"
  if [ ! -x .cache/claude-code/node_modules/.bin/claude ]; then
    command -v npm >/dev/null || { echo "please install Node.js and npm (for the e2e tests)" >&2; exit 1; }
    npm install --prefix .cache/claude-code --no-audit --no-fund --loglevel=error \
      @anthropic-ai/claude-code >/dev/null
  fi
  [ -x .cache/inspector/node_modules/.bin/mcp-inspector ] ||
    npm install --prefix .cache/inspector --no-audit --no-fund --loglevel=error \
      @modelcontextprotocol/inspector@2.12.0 >/dev/null
else
  "${pip[@]}" -e .
fi
