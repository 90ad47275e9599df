"""`trace_show`: why training changed a module in one step, read from the run's
`trace/step-<n>.jsonl` reflection records (numeric ones summarised; symbolic ones with the
targets each node should have said and the experience rows proposed; second-order critiques
with whether they revised the reflection, and the revision)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from pydantic import Field

from mcp_harness.errors import HarnessError
from mcp_harness.server.confine import allowed_path, confined_file
from mcp_harness.server.declare import READ, Result, tool
from mcp_harness.server.output import fit

RECORD_TEXT_LIMIT = 2000
TEXT_FLOOR = 400


class TraceRecord(Result):
    fn: str
    node: str | None
    kind: Literal["numeric", "symbolic", "critique"]
    order: int = Field(default=1, description="2: a reflection on a reflection")
    revised: bool | None = Field(
        default=None, description="critique: whether it revised the reflection (input_targets)"
    )
    targets: dict[str, str] = Field(default_factory=dict, description="what this node should say")
    input_targets: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="what the upstream nodes should have said"
    )
    rows: list[str] = Field(default_factory=list, description="experience changes proposed")
    patches: list[str] = Field(default_factory=list)
    row_credit: dict[str, Any] = Field(default_factory=dict)
    nonzero_gradients: int | None = Field(
        default=None, description="numeric backward: how many gradient entries are not zero"
    )


class TraceShow(Result):
    path: str = Field(description="the step file read (the full records)")
    step: int
    steps: list[int] = Field(description="every step recorded in this run")
    calls: int = Field(description="backward calls in this step")
    records: list[TraceRecord]


def _clip(text: str, what: str, limit: int) -> str:
    return fit(text, what, limit=max(limit, TEXT_FLOOR))


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _nonzero(value: Any) -> int:
    if isinstance(value, list):
        return sum(_nonzero(v) for v in value)
    return int(isinstance(value, (int, float)) and value != 0)


def _texts(mapping: Any, what: str) -> dict[str, str]:
    if not isinstance(mapping, dict):
        return {}
    return {str(k): _clip(str(v), what, RECORD_TEXT_LIMIT) for k, v in mapping.items()}


def _record(raw: dict[str, Any]) -> TraceRecord:
    inputs = raw.get("inputs") if isinstance(raw.get("inputs"), dict) else {}
    output = raw.get("output")
    node = inputs.get("node")
    base = {
        "fn": str(raw.get("fn", "?")),
        "node": None if node is None else str(node),
        "order": raw.get("order", 1) if isinstance(raw.get("order", 1), int) else 1,
    }
    if base["fn"].endswith(".critique"):
        revised = output.get("input_targets", {}) if isinstance(output, dict) else {}
        return TraceRecord(
            **base,
            kind="critique",
            revised=isinstance(output, dict),
            targets=_texts(inputs.get("targets"), "trace-target"),
            input_targets={
                str(name): _texts(targets, "trace-target")
                for name, targets in (revised.items() if isinstance(revised, dict) else [])
            },
        )
    if not isinstance(output, dict):
        return TraceRecord(**base, kind="numeric", nonzero_gradients=_nonzero(output))
    input_targets = output.get("input_targets", {})
    return TraceRecord(
        **base,
        kind="symbolic",
        targets=_texts(inputs.get("targets"), "trace-target"),
        input_targets={
            str(name): _texts(targets, "trace-target")
            for name, targets in (input_targets.items() if isinstance(input_targets, dict) else [])
        },
        rows=[_clip(str(r), "trace-row", RECORD_TEXT_LIMIT) for r in output.get("rows", [])],
        patches=[
            _clip(str(p), "trace-patch", RECORD_TEXT_LIMIT) for p in output.get("patches", [])
        ],
        row_credit=_plain(output.get("row_credit", {})),
    )


def show_trace(run_dir: str, step: int | None) -> TraceShow:
    from mcp_harness.runtime.reflection import load_records, recorded_steps, step_file

    where = allowed_path(run_dir)
    if not where.exists():
        raise HarnessError(
            f"{run_dir}: no such directory", "give a training run's out dir (job_status shows it)"
        )
    _, steps = recorded_steps(where)
    path = step_file(where, step)
    path = confined_file(path, "trace step file")
    try:
        records = load_records(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(
            f"{path}: not a reflection record file ({exc})",
            "give a training run dir, its trace/ dir or a trace/step-<n>.jsonl file",
        ) from None
    number = path.stem.split("-")[-1]
    return TraceShow(
        path=str(path),
        step=int(number) if number.isdigit() else 0,
        steps=steps,
        calls=len(records),
        records=[_record(r) for r in records if isinstance(r, dict)],
    )


def register(server: MCPServer) -> None:
    @tool(server, title="Show a training step's trace", annotations=READ)
    def trace_show(
        run_dir: Annotated[
            str,
            Field(
                description="a training run's out dir, its trace/ dir or one step-<n>.jsonl file"
            ),
        ],
        step: Annotated[
            int | None, Field(ge=1, description="the step number (default: the last)")
        ] = None,
    ) -> TraceShow:
        """Why training changed the module in one step: each backward call's reflection record
        (numeric ones summarised; symbolic ones with the targets each node should have said and
        the experience rows proposed)."""
        return show_trace(run_dir, step)
