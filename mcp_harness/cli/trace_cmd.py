"""`mcp-harness trace show`: read why a module changed (a training step's reflection records)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    trace = commands.add_parser("trace", help="reflection records of training steps")
    sub = trace.add_subparsers(dest="trace_command", metavar="ACTION")
    sub.required = True
    show = sub.add_parser("show", help="print a training step's reflection records")
    show.add_argument(
        "where", type=Path, help="a training run dir, its trace/ dir, or one step-<n>.jsonl file"
    )
    show.add_argument("--step", type=int, default=None, help="step number (default: the last)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=_show)


def _show(args: argparse.Namespace) -> int:
    from mcp_harness.runtime.reflection import load_records, step_file

    path = step_file(args.where, args.step)
    records = load_records(path)
    if args.json:
        print(json.dumps(records, indent=2, ensure_ascii=False))
        return 0
    second = sum(1 for r in records if r.get("order", 1) == 2)
    print(f"{path}: {len(records)} backward calls ({second} of them second order)")
    for record in records:
        inputs = record["inputs"]
        order = record.get("order", 1)
        print(f"- order {order}: {record['fn']} on {inputs.get('node')}")
        output = record["output"]
        if order == 2 and "grad_input" in inputs and not isinstance(output, dict | None):
            print(f"    first-order grad_input {_short(inputs['grad_input'])}")
            print(f"    its gradient wrt grad_output {_short(output)}")
        elif order == 2:
            revised = "kept" if output is None else "revised"
            print(f"    reviewed the reflection: {revised}")
        if isinstance(output, dict):
            for name, targets in output.get("input_targets", {}).items():
                for coords, text in targets.items():
                    print(f"    {name}{coords} should be: {text[:100]!r}")
            for row in output.get("rows", []):
                print(f"    proposes {row}")
    return 0


def _short(value: object, limit: int = 100) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
