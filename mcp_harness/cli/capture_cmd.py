"""`mcp-harness capture …` and `mcp-harness harvest`: Stage 0, from Claude Code to experience."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError


def register(commands: argparse._SubParsersAction) -> None:
    capture = commands.add_parser("capture", help="record Claude Code's Bash commands")
    sub = capture.add_subparsers(dest="capture_command", metavar="ACTION")
    sub.required = True

    install = sub.add_parser("install", help="set the shell prefix and hooks in Claude settings")
    _scope_flags(install)
    install.add_argument(
        "--force",
        action="store_true",
        help="replace a CLAUDE_CODE_SHELL_PREFIX that points elsewhere",
    )
    _json_flag(install)
    install.set_defaults(run=_install)

    uninstall = sub.add_parser("uninstall", help="remove exactly what install added")
    _scope_flags(uninstall)
    _json_flag(uninstall)
    uninstall.set_defaults(run=_uninstall)

    status = sub.add_parser("status", help="where capture is installed and what it recorded")
    status.add_argument("--project-dir", type=Path, default=None)
    _json_flag(status)
    status.set_defaults(run=_status)

    prefix = sub.add_parser("prefix-path", help="print the wrapper for CLAUDE_CODE_SHELL_PREFIX")
    prefix.set_defaults(run=_prefix_path)

    log = sub.add_parser(
        "log", help="recent Bash calls, one per call (wrapper + hooks + transcripts)"
    )
    log.add_argument("-n", type=int, default=20, help="how many (default 20)")
    _json_flag(log)
    log.set_defaults(run=_log)

    harvest = commands.add_parser("harvest", help="turn captured calls into experience tensors")
    source = harvest.add_mutually_exclusive_group()
    source.add_argument(
        "--transcripts",
        type=Path,
        default=None,
        help="Claude Code projects dir to import (default ~/.claude/projects)",
    )
    source.add_argument("--no-transcripts", action="store_true", help="skip transcript import")
    harvest.add_argument(
        "--exit",
        choices=("any", "success", "failure"),
        default="any",
        help="keep calls by exit status (default any)",
    )
    harvest.add_argument("--project", default=None, help="a project slug or directory")
    harvest.add_argument("--since", type=_date, default=None, help="ISO date or time (UTC)")
    harvest.add_argument("--until", type=_date, default=None, help="ISO date or time (UTC)")
    harvest.add_argument(
        "--out", type=Path, default=None, help="where the tensors go (default the experience dir)"
    )
    pool = harvest.add_mutually_exclusive_group()
    pool.add_argument(
        "--to",
        default=None,
        metavar="URI",
        help="then push the tensors to this pool, postgresql://USER@HOST:PORT/DBNAME "
        "(default: [pool] uri in config.toml, if set)",
    )
    pool.add_argument("--no-push", action="store_true", help="do not push to the [pool] uri")
    _json_flag(harvest)
    harvest.set_defaults(run=_harvest)


def _scope_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scope",
        choices=("user", "project"),
        default="user",
        help="user (~/.claude/settings.json) or project (.claude/settings.json)",
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="project root for --scope project (default: the current dir)",
    )


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _date(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date such as 2026-11-27"
        ) from None


def _emit(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    print(json.dumps(payload, indent=2, default=str) if args.json else "\n".join(lines))


def _install(args: argparse.Namespace) -> int:
    from mcp_harness.capture import settings
    from mcp_harness.capture.prefix import prefix_path

    prefix = prefix_path()
    result = settings.install(args.scope, args.project_dir, prefix, force=args.force)
    where = settings.settings_path(args.scope, args.project_dir)
    lines = [f"capture installed ({args.scope} scope): {where}"]
    lines += [f"  {change}" for change in result.get("changes", [])] or ["  (already installed)"]
    lines.append(
        "New Claude Code sessions now run Bash commands through tmux and record them; "
        "`mcp-harness capture log` shows them, `mcp-harness harvest` learns from them."
    )
    _emit(args, result, lines)
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    from mcp_harness.capture import settings
    from mcp_harness.capture.prefix import prefix_path

    result = settings.uninstall(args.scope, args.project_dir, prefix_path())
    changes = result.get("changes", [])
    lines = [f"capture removed ({args.scope} scope)"] + [f"  {c}" for c in changes]
    _emit(args, result, lines if changes else ["capture was not installed in that scope"])
    return 0


def _status(args: argparse.Namespace) -> int:
    from mcp_harness.capture import settings
    from mcp_harness.capture.prefix import prefix_path

    report = settings.status(args.project_dir, prefix_path())
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    for scope, info in report["scopes"].items():
        hooks = sum(info["hooks"].values())
        state = (
            f"installed (prefix {'on' if info['prefix_installed'] else 'off'}, "
            f"hooks {hooks}/{len(info['hooks'])})"
            if info["prefix_installed"] or hooks
            else "not installed"
        )
        print(f"{scope + ' scope':14} {state}  {info['path']}")
    print(f"{'prefix':14} {report['prefix']}")
    print(f"{'tmux':14} {report['tmux_path'] or 'NOT FOUND (commands would run unrecorded)'}")
    counts = ", ".join(
        f"{name.removesuffix('.jsonl')} {info['lines']}" for name, info in report["records"].items()
    )
    print(f"{'records':14} {counts} (last {report['last_record_ts'] or 'never'})")
    failures = report["recording_failures"]
    if failures:
        print(f"{'unrecorded':14} {failures} calls ran but could not be recorded (see wrapper.log)")
    print(f"{'data':14} {report['capture_dir']}")
    return 0


def _prefix_path(args: argparse.Namespace) -> int:
    from mcp_harness.capture.prefix import prefix_path

    print(prefix_path())
    return 0


def _log(args: argparse.Namespace) -> int:
    from mcp_harness.capture.join import calls

    recent = calls()[-args.n :] if args.n > 0 else []
    if args.json:
        print(json.dumps([_call_json(c) for c in recent], indent=2, default=str))
        return 0
    if not recent:
        print("no calls recorded yet (install with `mcp-harness capture install`)")
    for call in recent:
        status = "?" if call.exit_code is None else str(call.exit_code)
        when = call.ts.isoformat(timespec="seconds") if call.ts else "-"
        print(f"{when}  exit {status:>3}  {call.command or ''}")
        if call.description:
            print(f"{'':28}# {call.description}")
    return 0


def _call_json(call: Any) -> dict[str, Any]:
    fields = (
        "call_id",
        "session_id",
        "tool_use_id",
        "ts",
        "cwd",
        "task",
        "description",
        "command",
        "exit_code",
        "signal",
        "denied",
        "sources",
        "output",
        "screen_before",
        "screen_after",
    )
    return {name: getattr(call, name) for name in fields}


def _harvest(args: argparse.Namespace) -> int:
    from mcp_harness.capture.transcripts import default_projects_root
    from mcp_harness.experience.harvest import harvest

    root = args.transcripts
    use_transcripts = not args.no_transcripts and (
        root is not None or default_projects_root().is_dir()
    )
    if root is not None and not root.is_dir():
        raise HarnessError(f"{root}: no such directory", "pass the Claude Code projects dir")
    if args.to is None and not args.no_push:
        from mcp_harness.experience.backend import pool_settings

        args.to = pool_settings()[0]
    report = harvest(
        import_transcripts=use_transcripts,
        projects_root=root,
        exit_status=args.exit,
        project=args.project,
        since=args.since,
        until=args.until,
        out_dir=args.out,
        to=args.to,
    )
    payload = report.to_json()
    lines = [f"calls seen {report.calls_seen}, filtered out {report.calls_filtered}"]
    if report.imported is not None:
        lines.insert(
            0, f"transcripts: {report.imported.files} files, {report.imported.new_calls} new calls"
        )
    for path, tensor in report.tensors.items():
        lines.append(
            f"  {path}: +{tensor.added} rows ({tensor.skipped_duplicates} duplicates skipped)"
        )
    for address, pushed in report.pushed.items():
        lines.append(
            f"  pushed to {address}: +{pushed.added} rows ({pushed.skipped_duplicates} there)"
        )
    if not report.tensors:
        lines += _nothing_to_harvest(report.calls_seen, args, use_transcripts)
    _emit(args, payload, lines)
    return 0


def _nothing_to_harvest(seen: int, args: argparse.Namespace, transcripts: bool) -> list[str]:
    """Where harvest looked, and how to get calls to harvest."""
    from mcp_harness.capture.records import capture_dir
    from mcp_harness.capture.transcripts import default_projects_root

    if seen:
        filters = "--exit, --project, --since, --until"
        return [f"nothing to harvest: all {seen} calls were filtered out ({filters})"]
    projects = args.transcripts or default_projects_root()
    if args.no_transcripts:
        looked = f"in {capture_dir()} (transcripts skipped: --no-transcripts)"
    elif transcripts:
        looked = f"in {capture_dir()} or the Claude Code transcripts under {projects}"
    else:
        looked = f"in {capture_dir()} (no Claude Code transcripts at {projects})"
    return [
        f"nothing to harvest: no Bash calls {looked}",
        "record some: mcp-harness capture install, then work in Claude Code and harvest again",
    ]
