"""Install, uninstall and inspect capture in Claude Code's settings.json.

`install` adds two things and touches nothing else:

- `env.CLAUDE_CODE_SHELL_PREFIX` = the prefix wrapper (every Bash call runs through it);
- one hook entry per event in `HOOK_EVENTS` running `<python> -I -m mcp_harness.capture.hooks`
  (matcher `Bash` for the tool events).

Our hooks are recognised by `HOOK_MODULE` in their command, the prefix by its value, so
`uninstall` removes exactly those and keeps every other key, env var and hook. Writes are atomic;
the first install keeps the untouched original as `settings.json.mcp-harness.bak`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from mcp_harness.capture.records import COMMANDS, HOOKS, TRANSCRIPTS, capture_dir, failure_count
from mcp_harness.errors import HarnessError
from mcp_harness.paths import runtime_dir
from mcp_harness.storage.atomic import atomic_write

PREFIX_ENV = "CLAUDE_CODE_SHELL_PREFIX"
HOOK_MODULE = "mcp_harness.capture.hooks"
HOOK_TIMEOUT_S = 10
TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
HOOK_EVENTS = ("UserPromptSubmit", *TOOL_EVENTS, "SessionStart", "SessionEnd")
SCOPES = ("user", "project")
BACKUP_SUFFIX = ".mcp-harness.bak"

_TAIL_SCAN_LIMIT = 8 * 1024 * 1024  # how far back `status` looks for the last parseable record


# ---------------------------------------------------------------------------------------------
# locations and the hook command


def settings_path(scope: str, project_dir: Path | None = None) -> Path:
    """`$CLAUDE_CONFIG_DIR|~/.claude/settings.json` (user) or `<project>/.claude/settings.json`."""
    if scope == "user":
        config = os.environ.get("CLAUDE_CONFIG_DIR")
        base = Path(config).expanduser() if config else Path.home() / ".claude"
        return (base / "settings.json").absolute()
    if scope == "project":
        root = Path(project_dir).expanduser() if project_dir is not None else Path.cwd()
        return (root / ".claude" / "settings.json").absolute()
    raise HarnessError(
        f"unknown settings scope {scope!r}", fix="use --scope user or --scope project"
    )


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + BACKUP_SUFFIX)


def hook_command(python: str | None = None) -> str:
    """`'<abs python>' -I -m mcp_harness.capture.hooks` (the venv's python, not its target)."""
    interpreter = os.path.abspath(python or sys.executable)
    return f"{shlex.quote(interpreter)} -I -m {HOOK_MODULE}"


def hook_entry(event: str, command: str) -> dict[str, Any]:
    handler = {"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}
    if event in TOOL_EVENTS:
        return {"matcher": "Bash", "hooks": [handler]}
    return {"hooks": [handler]}


def _default_prefix() -> Path:
    from mcp_harness.capture.prefix import prefix_path

    return Path(prefix_path())


def _our_prefix(prefix_path: Path | None) -> str | None:
    """The prefix value install would write; None if the prefix module cannot tell."""
    if prefix_path is not None:
        return str(Path(prefix_path).expanduser().absolute())
    try:
        return str(_default_prefix().expanduser().absolute())
    except Exception:
        return None


def _same_path(a: Any, b: str | None) -> bool:
    if not isinstance(a, str) or not a or b is None:
        return False
    return a == b or os.path.realpath(os.path.expanduser(a)) == os.path.realpath(b)


def _is_ours(handler: Any) -> bool:
    return (
        isinstance(handler, dict)
        and isinstance(handler.get("command"), str)
        and HOOK_MODULE in handler["command"]
    )


# ---------------------------------------------------------------------------------------------
# reading and writing settings.json


def _load(path: Path) -> tuple[dict[str, Any], bytes | None]:
    """(settings, original bytes or None when missing); invalid content is a HarnessError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        raise HarnessError(
            f"cannot read Claude Code settings {path}: {exc.strerror or exc}",
            fix="check the file's permissions",
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HarnessError(
            f"{path} is not UTF-8 text (byte {exc.start})",
            fix=f"repair or remove {path}, then run the command again",
        ) from None
    if not text.strip():
        return {}, raw
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarnessError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            fix=f"fix the JSON in {path} (nothing was changed), then run the command again",
        ) from None
    if not isinstance(data, dict):
        raise HarnessError(
            f"{path} holds a JSON {type(data).__name__}, not an object",
            fix=f"make {path} a JSON object ({{...}}), then run the command again",
        )
    for key in ("env", "hooks"):
        if key in data and not isinstance(data[key], dict):
            raise HarnessError(
                f"{path}: `{key}` is a JSON {type(data[key]).__name__}, not an object",
                fix=f"make `{key}` an object in {path}, then run the command again",
            )
    hooks = data.get("hooks", {})
    for event in HOOK_EVENTS:
        if event in hooks and not isinstance(hooks[event], list):
            raise HarnessError(
                f"{path}: `hooks.{event}` is not a list",
                fix=f"make `hooks.{event}` a list of matcher entries in {path}",
            )
    return data, raw


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _write(path: Path, data: dict[str, Any], original: bytes | None) -> Path | None:
    """Back up the first original once, then write atomically; returns the backup if made."""
    made = None
    if original is not None:
        backup = backup_path(path)
        if not backup.exists():
            atomic_write(backup, original)
            made = backup
    atomic_write(path, _dump(data))
    return made


# ---------------------------------------------------------------------------------------------
# editing the hooks tree


def _strip_ours(entries: list[Any]) -> list[Any]:
    """`entries` without our handlers; an entry left with no handler is dropped."""
    kept: list[Any] = []
    for entry in entries:
        handlers = entry.get("hooks") if isinstance(entry, dict) else None
        if not isinstance(handlers, list) or not any(_is_ours(h) for h in handlers):
            kept.append(entry)
            continue
        rest = [h for h in handlers if not _is_ours(h)]
        if rest:
            kept.append({**entry, "hooks": rest})
    return kept


def _count_ours(entries: list[Any]) -> int:
    return sum(
        1
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("hooks"), list)
        for handler in entry["hooks"]
        if _is_ours(handler)
    )


def _hook_installed(data: dict[str, Any], event: str) -> bool:
    entries = data.get("hooks", {}).get(event, [])
    return isinstance(entries, list) and _count_ours(entries) > 0


# ---------------------------------------------------------------------------------------------
# public API


def install(
    scope: str,
    project_dir: Path | None = None,
    prefix_path: Path | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Set the shell prefix and add our six hooks to the scope's settings.json (idempotent).

    Raises HarnessError (and writes nothing) if the file is not valid JSON or if
    `env.CLAUDE_CODE_SHELL_PREFIX` already points elsewhere and `force` is false.
    """
    path = settings_path(scope, project_dir)
    data, original = _load(path)
    prefix = str(Path(prefix_path or _default_prefix()).expanduser().absolute())

    current = data.get("env", {}).get(PREFIX_ENV)
    replaced = None
    if current is not None and not _same_path(current, prefix):
        if not force:
            raise HarnessError(
                f"{path} already sets {PREFIX_ENV}={current!r}; capture needs {prefix!r}",
                fix="rerun with --force to replace it (only one shell prefix can be active; "
                f"the original settings are kept in {backup_path(path).name})",
            )
        replaced = current

    updated = json.loads(json.dumps(data))  # deep copy; `data` stays the original
    changes: list[str] = []
    if current is None or replaced is not None:
        updated.setdefault("env", {})[PREFIX_ENV] = prefix
        changes.append(f"env.{PREFIX_ENV}")

    command = hook_command()
    hooks = updated.setdefault("hooks", {})
    for event in HOOK_EVENTS:
        entries = hooks.get(event, [])
        wanted = hook_entry(event, command)
        if wanted in entries and _count_ours(entries) == 1:
            continue
        hooks[event] = [*_strip_ours(entries), wanted]
        changes.append(f"hooks.{event}")

    backup = None
    if changes:
        backup = _write(path, updated, original)
    return {
        "scope": scope,
        "path": str(path),
        "changed": bool(changes),
        "changes": changes,
        "prefix": prefix,
        "replaced_prefix": replaced,
        "hook_command": command,
        "backup": str(backup) if backup else None,
    }


def uninstall(
    scope: str, project_dir: Path | None = None, prefix_path: Path | None = None
) -> dict[str, Any]:
    """Remove exactly what `install` added; empty hook lists, `env` and `hooks` are dropped.

    The prefix env var is removed only while it still points at our prefix wrapper.
    """
    path = settings_path(scope, project_dir)
    data, original = _load(path)
    prefix = _our_prefix(prefix_path)
    updated = json.loads(json.dumps(data))
    changes: list[str] = []

    env = updated.get("env")
    kept_prefix = None
    if isinstance(env, dict) and PREFIX_ENV in env:
        if _same_path(env[PREFIX_ENV], prefix):
            del env[PREFIX_ENV]
            if not env:
                del updated["env"]
            changes.append(f"env.{PREFIX_ENV}")
        else:
            kept_prefix = env[PREFIX_ENV]

    hooks = updated.get("hooks")
    if isinstance(hooks, dict):
        touched = False
        for event in list(hooks):
            entries = hooks[event]
            if not isinstance(entries, list) or not _count_ours(entries):
                continue
            rest = _strip_ours(entries)
            if rest:
                hooks[event] = rest
            else:
                del hooks[event]
            changes.append(f"hooks.{event}")
            touched = True
        if touched and not hooks:
            del updated["hooks"]

    removed_file = False
    if changes:
        if not updated and original is not None and not backup_path(path).exists():
            # the file only ever held our settings (install created it): leave no trace
            path.unlink()
            removed_file = True
        else:
            atomic_write(path, _dump(updated))
    return {
        "scope": scope,
        "path": str(path),
        "changed": bool(changes),
        "changes": changes,
        "kept_prefix": kept_prefix,
        "removed_file": removed_file,
    }


def status(project_dir: Path | None = None, prefix_path: Path | None = None) -> dict[str, Any]:
    """Where capture is installed, whether tmux is available, and what has been recorded."""
    prefix = _our_prefix(prefix_path)
    scopes: dict[str, Any] = {}
    for scope in SCOPES:
        path = settings_path(scope, project_dir)
        info: dict[str, Any] = {"path": str(path), "exists": path.exists()}
        try:
            data, _ = _load(path)
        except HarnessError as exc:
            data = {}
            info["error"] = exc.message
        value = data.get("env", {}).get(PREFIX_ENV)
        info["prefix"] = value
        info["prefix_installed"] = _same_path(value, prefix)
        info["hooks"] = {event: _hook_installed(data, event) for event in HOOK_EVENTS}
        info["installed"] = info["prefix_installed"] and all(info["hooks"].values())
        scopes[scope] = info

    records: dict[str, Any] = {}
    last_overall = None
    for name in (COMMANDS, HOOKS, TRANSCRIPTS):
        lines, last = _record_stats(capture_dir() / name)
        records[name] = {"lines": lines, "last_ts": last}
        if last is not None and (last_overall is None or last > last_overall):
            last_overall = last
    tmux = shutil.which("tmux")
    return {
        "scopes": scopes,
        "prefix": prefix,
        "prefix_exists": bool(prefix) and os.access(prefix, os.X_OK),
        "tmux": tmux is not None,
        "tmux_path": tmux,
        "capture_dir": str(capture_dir()),
        "records": records,
        "last_record_ts": last_overall,
        "recording_failures": failure_count(capture_dir(), runtime_dir()),
    }


def _record_stats(path: Path) -> tuple[int, str | None]:
    """(newline-terminated lines, `ts` of the last parseable record) of a JSONL file."""
    try:
        handle = path.open("rb")
    except OSError:
        return 0, None
    with handle:
        lines = 0
        while chunk := handle.read(1024 * 1024):
            lines += chunk.count(b"\n")
        end = handle.tell()
        tail = b""
        pos = end
        while pos > 0 and end - pos < _TAIL_SCAN_LIMIT:
            step = min(64 * 1024, pos)
            pos -= step
            handle.seek(pos)
            tail = handle.read(step) + tail
            parts = tail.split(b"\n")
            # parts[0] may be a partial line unless we reached the start of the file
            candidates = parts if pos == 0 else parts[1:]
            for line in reversed(candidates):
                ts = _line_ts(line)
                if ts is not None:
                    return lines, ts
            tail = parts[0] if pos > 0 else b""
    return lines, None


def _line_ts(line: bytes) -> str | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    ts = record.get("ts") if isinstance(record, dict) else None
    return ts if isinstance(ts, str) else None
