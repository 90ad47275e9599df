#!/usr/bin/env bash
# Launcher of the "@NAME@" skill, written by `mcp-harness export-skill`: runs the module in
# ../module with `mcp-harness module run`. mcp-harness is $MCP_HARNESS_BIN, else `mcp-harness`
# on PATH. Exit status: 0 the check passed, 1 it did not, 2 bad input, 127 no mcp-harness.
set -u
me="${BASH_SOURCE[0]}"
CLAUDE_SKILL_DIR="$(cd -P -- "$(dirname -- "$me")/.." && pwd)" || exit 2
module="$CLAUDE_SKILL_DIR/@MODULE_DIR@"

usage() {
  cat <<'__USAGE__'
usage: @USAGE@ [--kernel NAME] [--dim NAME=SIZE] [--timeout SECONDS] [--json]

@WHAT@

inputs:
@HELP_INPUTS@
passed on to `mcp-harness module run`:
  --kernel NAME            LLM backend (default: configured, else offline)
  --dim NAME=SIZE          override a dim, e.g. steps=8
  --timeout SECONDS        time limit for the whole run
  --input NAME=VALUE       any module input
  --json                   machine-readable result
__USAGE__
}

say() { printf '%s: %s\n' "$(basename -- "$me")" "$1" >&2; }
fail() {  # STATUS MESSAGE [FIX]
  say "$2"
  [ -n "${3:-}" ] && printf '  fix: %s\n' "$3" >&2
  exit "$1"
}
die() { fail 2 "$@"; }
kv_help="e.g. --input name=value"

#: @INIT@
words=()
extra=()

set_input() {  # NAME VALUE
  case "$1" in
    #: @SET_CASES@
    *) extra+=(--input "$1=$2") ;;
  esac
}

set_pair() {  # NAME=VALUE
  case "$1" in
    *=*) set_input "${1%%=*}" "${1#*=}" ;;
    *) die "--input $1 is not NAME=VALUE" "$kv_help" ;;
  esac
}

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    #: @OPTION_ARMS@
    --input)
      [ $# -ge 2 ] || die "--input needs NAME=VALUE" "$kv_help"
      set_pair "$2"; shift 2 ;;
    --input=*) set_pair "${1#--input=}"; shift ;;
    @PASS_PATTERN@)
      [ $# -ge 2 ] || die "$1 needs a value" "see: $me --help"
      extra+=("$1" "$2"); shift 2 ;;
    @PASS_EQ@|--json) extra+=("$1"); shift ;;
    --) shift; words+=("$@"); break ;;
    -?*) die "unknown option $1" "see: $me --help" ;;
    *) words+=("$1"); shift ;;
  esac
done

#: @WORDS@

missing=()
#: @MISSING@
if [ ${#missing[@]} -gt 0 ]; then
  for m in "${missing[@]}"; do say "missing $m"; done
  die "not enough to run the module" "see: $me --help"
fi

if [ -n "${MCP_HARNESS_BIN:-}" ]; then
  bin="$MCP_HARNESS_BIN"
  case "$bin" in
    */*) [ -f "$bin" ] && [ -x "$bin" ] || bin="" ;;
    *) bin="$(command -v -- "$bin" 2>/dev/null)" || bin="" ;;
  esac
  [ -n "$bin" ] || fail 127 "MCP_HARNESS_BIN=$MCP_HARNESS_BIN is not an executable" \
    "point MCP_HARNESS_BIN at the mcp-harness command (e.g. <venv>/bin/mcp-harness), or unset it"
elif ! bin="$(command -v mcp-harness 2>/dev/null)"; then
  fail 127 "mcp-harness not found (MCP_HARNESS_BIN is not set, no mcp-harness on PATH)" \
    "install mcp-harness and put mcp-harness on PATH, or set MCP_HARNESS_BIN=/path/to/it"
fi

args=(module run "$module")
#: @BUILD@
exec "$bin" "${args[@]}" ${extra[@]+"${extra[@]}"}
