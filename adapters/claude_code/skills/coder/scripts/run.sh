#!/usr/bin/env bash
# Launcher of the "coder" skill, written by `mcp-harness export-skill`: runs the module in
# ../module with `mcp-harness module run`. mcp-harness is $MCP_HARNESS_BIN, else `mcp-harness`
# on PATH. Exit status: 0 the check passed, 1 it did not, 2 bad input, 127 no mcp-harness.
set -u
me="${BASH_SOURCE[0]}"
CLAUDE_SKILL_DIR="$(cd -P -- "$(dirname -- "$me")/.." && pwd)" || exit 2
module="$CLAUDE_SKILL_DIR/module"

usage() {
  cat <<'__USAGE__'
usage: run.sh "<task>" --check "<command>" [--workdir DIR] [--kernel NAME] [--dim NAME=SIZE] [--timeout SECONDS] [--json]

  Works a terminal task in a real tmux session: decide the next step from the task and the
  screen, turn it into a command, run it (or press keys), check the task's validator,
  repeat until it passes.

inputs:
  TASK... | --task TEXT    what to do, in plain words (e.g. "Make run.sh executable")
  --workdir VALUE          the directory to work in (default: the current directory)
  --check VALUE            a shell command, run in the work directory, that exits 0 once the task is done (e.g. "test -x run.sh")
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

v0=""; s0=0
v1="$PWD"; s1=1  # workdir defaults to the current dir
v2=""; s2=0
words=()
extra=()

set_input() {  # NAME VALUE
  case "$1" in
    task) v0="$2"; s0=1 ;;
    workdir) v1="$2"; s1=1 ;;
    check) v2="$2"; s2=1 ;;
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
    --task|--workdir|--check)
      [ $# -ge 2 ] || die "$1 needs a value" "see: $me --help"
      set_input "${1#--}" "$2"; shift 2 ;;
    --task=*|--workdir=*|--check=*)
      opt="${1%%=*}"; set_input "${opt#--}" "${1#*=}"; shift ;;
    --input)
      [ $# -ge 2 ] || die "--input needs NAME=VALUE" "$kv_help"
      set_pair "$2"; shift 2 ;;
    --input=*) set_pair "${1#--input=}"; shift ;;
    --kernel|--dim|--timeout)
      [ $# -ge 2 ] || die "$1 needs a value" "see: $me --help"
      extra+=("$1" "$2"); shift 2 ;;
    --kernel=*|--dim=*|--timeout=*|--json) extra+=("$1"); shift ;;
    --) shift; words+=("$@"); break ;;
    -?*) die "unknown option $1" "see: $me --help" ;;
    *) words+=("$1"); shift ;;
  esac
done

if [ ${#words[@]} -gt 0 ]; then
  [ "${s0}" = 1 ] && die "the task is given twice (--task and words)" "give it once"
  v0="${words[*]}"; s0=1
fi

missing=()
[ "${s0}" = 1 ] || missing+=('TASK: what to do, in plain words (e.g. "Make run.sh executable")')
[ "${s2}" = 1 ] || missing+=('--check: a shell command, run in the work directory, that exits 0 once the task is done (e.g. "test -x run.sh")')
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
args+=(--input "task=${v0}")
args+=(--input "workdir=${v1}")
args+=(--input "check=${v2}")
exec "$bin" "${args[@]}" ${extra[@]+"${extra[@]}"}
