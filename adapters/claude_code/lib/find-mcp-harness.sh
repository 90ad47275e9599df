# Sourced by bin/mcp-harness and bin/mcp-harness-hook (with $root = the plugin dir): finds an
# installed mcp-harness, in this order, and sets mh_bin (the executable) and mh_python (the
# interpreter it runs on), both empty if there is none:
#   1. $MCP_HARNESS_PYTHON: an interpreter with mcp-harness installed (mh_bin stays empty)
#   2. `mcp-harness` on PATH, skipping plugin bin/ dirs (Claude Code puts them on PATH)
#   3. pipx's bin: ${PIPX_BIN_DIR:-~/.local/bin}/mcp-harness
#   4. a checkout's .venv/bin/mcp-harness (the plugin lives in the repo at adapters/claude_code)
mh_bin=""
mh_python=""

_mh_interpreter() {  # the Python of console script $1 (its shebang, or pip's /bin/sh trampoline)
  local first second
  { IFS= read -r first && IFS= read -r second; } <"$1" 2>/dev/null
  first="${first#\#!}"
  if [ "$first" = "/bin/sh" ]; then  # '''exec' "/path/to/python" "$0" "$@"
    first="${second#\'\'\'exec\' }"
    first="${first%% \"\$0\"*}"
    first="${first#\"}"
    first="${first%\"}"
  fi
  [ -x "$first" ] && printf '%s' "$first"
}

_mh_find() {
  local dir candidate
  if [ -n "${MCP_HARNESS_PYTHON:-}" ] && command -v -- "$MCP_HARNESS_PYTHON" >/dev/null 2>&1; then
    mh_python="$(command -v -- "$MCP_HARNESS_PYTHON")"
    return 0
  fi
  local IFS=:
  for dir in $PATH; do
    candidate="${dir:-.}/mcp-harness"
    [ -f "$candidate" ] && [ -x "$candidate" ] || continue
    [ -f "${dir:-.}/../.claude-plugin/plugin.json" ] && continue  # a plugin's own launcher
    mh_bin="$candidate"
    break
  done
  unset IFS
  if [ -z "$mh_bin" ]; then
    for candidate in "${PIPX_BIN_DIR:-${HOME:-~}/.local/bin}/mcp-harness" \
      "$root/../../.venv/bin/mcp-harness"; do
      if [ -f "$candidate" ] && [ -x "$candidate" ]; then
        mh_bin="$candidate"
        break
      fi
    done
  fi
  [ -n "$mh_bin" ] || return 1
  mh_python="$(_mh_interpreter "$mh_bin")"
  return 0
}

_mh_find
