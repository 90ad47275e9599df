"""`mcp-harness module …` (portable harness modules) and `mcp-harness kernels`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("module", help="create, check, inspect and run harness modules")
    sub = parser.add_subparsers(dest="module_command", metavar="ACTION")
    sub.required = True
    where = "a module name (built-in or under the data dir) or a module directory"

    new = sub.add_parser("new", help="create a module from a built-in template")
    new.add_argument("name")
    new.add_argument("--from", dest="template", default="coder", help="template (default coder)")
    new.add_argument("--to", type=Path, default=None, help="directory (default the data dir)")
    new.set_defaults(run=_new)

    validate = sub.add_parser("validate", help="check the graph and experience without running")
    validate.add_argument("module", help=where)
    validate.set_defaults(run=_validate)

    show = sub.add_parser("show", help="the graph (nodes, ops, shapes) and experience summary")
    show.add_argument("module", help=where)
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=_show)

    run = sub.add_parser("run", help="run a module on inputs")
    run.add_argument("module", help=where)
    run.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a run input (repeat; a single value becomes a batch of one)",
    )
    run.add_argument(
        "--inputs", type=Path, default=None, help='JSON file {"name": [values, …]} for a batch'
    )
    run.add_argument("--kernel", default=None, help="kernel name (default: configured/offline)")
    run.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=SIZE",
        help="override a dim, e.g. steps=8",
    )
    run.add_argument("--timeout", type=float, default=None, help="seconds for the whole run")
    run.add_argument("--json", action="store_true")
    run.set_defaults(run=_run)

    kernels = commands.add_parser("kernels", help="which LLM kernels are usable here, and why not")
    kernels.add_argument("--json", action="store_true")
    kernels.set_defaults(run=_kernels)


def _new(args: argparse.Namespace) -> int:
    from mcp_harness.runtime import module

    path = module.new(args.name, template=args.template, target=args.to)
    print(f"created module {args.name!r} at {path} (from {args.template})")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from mcp_harness.runtime import module

    loaded = module.load(args.module)
    graph = loaded.graph()
    print(
        f"ok: {loaded.name} — {len(graph.nodes)} nodes, output {graph.output.name!r} "
        f"shape {list(graph.output.shape)}, experience "
        + ", ".join(f"{k} ({len(v)} rows)" for k, v in loaded.experience.items())
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from mcp_harness.runtime import module

    summary = module.load(args.module).summary()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(f"{summary['name']}: {summary['description']}\n  path {summary['path']}")
    print(f"  dims {summary['dims']}; inputs {summary['inputs']}; output {summary['output']}")
    for node in summary["nodes"]:
        print(
            f"  {node['id']:16} {node['op']:24} {node['shape']!s:10} <- "
            f"{', '.join(node['inputs']) or '-'}"
        )
    for name, info in summary["experience"].items():
        print(f"  experience {name}: {info['rows']} rows at {info['path']}")
    return 0


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise HarnessError(f"--{what} {item!r} is not NAME=VALUE", f"write e.g. --{what} x=1")
        pairs[name] = value
    return pairs


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from mcp_harness.kernels.config import make_kernel
    from mcp_harness.runtime import module

    inputs: dict[str, Any] = {}
    if args.inputs:
        try:
            inputs.update(json.loads(args.inputs.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise HarnessError(
                f"{args.inputs}: cannot read inputs ({exc})",
                'give a JSON object {"name": [values]}',
            ) from None
    inputs.update({k: [v] for k, v in _pairs(args.input, "input").items()})
    dims = {}
    for name, size in _pairs(args.dim, "dim").items():
        if not size.isdigit():
            raise HarnessError(f"--dim {name}={size}: size must be an integer", "e.g. steps=8")
        dims[name] = int(size)
    loaded = module.load(args.module)
    kernel = make_kernel(args.kernel)
    report = asyncio.run(module.run(loaded, inputs, kernel=kernel, dims=dims, timeout=args.timeout))
    rows = [
        {"status": str(e.status), "ok": e.status.ok, "text": e.text, "meta": e.meta}
        for e in report.elements
    ]
    if args.json:
        print(
            json.dumps(
                {"run_dir": str(report.run_dir), "seconds": report.seconds, "elements": rows},
                indent=2,
                default=str,
            )
        )
    else:
        for index, row in enumerate(rows):
            print(f"[{index}] {'PASS' if row['ok'] else 'FAIL'} {row['status']}")
            for line in [ln for ln in row["text"].splitlines() if ln.strip()][-6:]:
                print(f"    {line}")
        print(f"run files: {report.run_dir} ({report.seconds:.1f} s)")
    return 0 if all(row["ok"] for row in rows) else 1


def _kernels(args: argparse.Namespace) -> int:
    from mcp_harness.kernels.config import format_status, kernel_status

    rows = kernel_status()
    print(json.dumps(rows, indent=2) if args.json else format_status(rows))
    return 0
