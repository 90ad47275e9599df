"""Resources: what runs, jobs and training leave behind, read by URI so large results are
links rather than pasted text.

| URI | what |
|---|---|
| `harness://runs/{run_id}` | a run directory: its nodes with shapes and statuses |
| `harness://runs/{run_id}/{node}` | one node's element texts and statuses |
| `harness://jobs/{job_id}` | a job of this server with its full result |
| `harness://training/{run_id}` | a training run's history (per-epoch metrics) |
| `harness://training/{run_id}/steps/{step}` | the reflection records of one training step |
| `harness://experience/{name}/rows/{index}` | one experience row |
| `harness://results/{name}` | a long tool result saved in full |

Run and training ids are directory names under `<data home>/runs`; every path is confined to
the data home (symlinks resolved first) and every text is redacted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError

from mcp_harness.errors import HarnessError
from mcp_harness.paths import data_home
from mcp_harness.redaction import redact
from mcp_harness.server.output import results_dir

JSON = "application/json"
MAX_CHARS = 200_000


def _part(value: str, what: str) -> str:
    if not value or value in (".", "..") or "/" in value or "\x00" in value:
        raise ResourceError(f"{what} {value!r} is not a name (one path component)")
    return value


def _inside(base: Path, *parts: str) -> Path:
    """`base/parts...`, which must exist and stay inside `base` once symlinks are resolved."""
    root = base.resolve()
    path = base.joinpath(*parts).resolve()
    if not path.is_relative_to(root):
        raise ResourceError(f"{'/'.join(parts)} leads out of {base}")
    if not path.exists():
        raise ResourceError(f"{'/'.join(parts)}: no such entry under {base}")
    return path


def _json(value: Any) -> str:
    text = redact(json.dumps(value, indent=1, default=str, ensure_ascii=False))
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + "\n... (cut: read the files under the run directory)"
    return text


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def run_summary(run_id: str) -> str:
    run = _inside(data_home() / "runs", _part(run_id, "run id"))
    from mcp_harness.storage import layout

    nodes = {}
    for node in sorted(p for p in run.iterdir() if (p / "shape").is_file()):
        nodes[node.name] = {
            "shape": list(layout.read_shape(node)),
            "statuses": _read_json(node / "statuses.json"),
            "resource": f"harness://runs/{run_id}/{node.name}",
        }
    return _json({"run_dir": str(run), "nodes": nodes})


def run_node(run_id: str, node: str) -> str:
    from mcp_harness.storage import layout

    folder = _inside(data_home() / "runs", _part(run_id, "run id"), _part(node, "node"))
    shape = list(layout.read_shape(folder))
    texts = [layout.read_element(folder, index) for index in range(layout.numel(shape))]
    return _json(
        {
            "node": node,
            "shape": shape,
            "texts": texts,
            "statuses": _read_json(folder / "statuses.json"),
            "meta": _read_json(folder / "meta.json"),
        }
    )


def training_history(run_id: str) -> str:
    run = _inside(data_home() / "runs", _part(run_id, "training run id"))
    steps = sorted(
        int(p.stem.split("-")[1]) for p in run.glob("trace/step-*.jsonl") if p.stem[5:].isdigit()
    )
    return _json(
        {
            "out": str(run),
            "history": _read_json(run / "history.json"),
            "steps": [f"harness://training/{run_id}/steps/{n}" for n in steps],
        }
    )


def training_step(run_id: str, step: str) -> str:
    from mcp_harness.runtime.reflection import load_records

    if not step.isdigit():
        raise ResourceError(f"step {step!r} is not a number")
    path = _inside(data_home() / "runs", _part(run_id, "training run id"), "trace")
    return _json(load_records(_inside(path, f"step-{int(step)}.jsonl")))


def experience_row(cache: Any, name: str, index: str) -> str:
    if not index.isdigit():
        raise ResourceError(f"row {index!r} is not a row index (0, 1, ...)")
    try:
        with cache.opened(_part(name, "experience")) as experience:
            row = experience.row(int(index))
    except HarnessError as exc:
        raise ResourceError(str(exc)) from None
    return _json(
        {
            "row": row.index,
            "query": row.query,
            "key": row.key,
            "value": row.value,
            "weight": row.weight,
            "provenance": row.provenance,
        }
    )


def saved_result(name: str) -> str:
    path = _inside(results_dir(), _part(name, "result"))
    return redact(path.read_text(encoding="utf-8", errors="replace"))


def register(server: MCPServer) -> None:
    @server.resource("harness://runs/{run_id}", mime_type=JSON, title="Run directory")
    def run(run_id: str) -> str:
        """A run directory: each node's shape and element statuses."""
        return run_summary(run_id)

    @server.resource("harness://runs/{run_id}/{node}", mime_type=JSON, title="Run node")
    def node(run_id: str, node: str) -> str:
        """One node of a run: its element texts, statuses and metadata."""
        return run_node(run_id, node)

    @server.resource("harness://jobs/{job_id}", mime_type=JSON, title="Job")
    def job(job_id: str, ctx: Context) -> str:
        """A background job of this server, with its full result."""
        state = ctx.request_context.lifespan_context
        try:
            return _json(state.get(job_id).summary())
        except HarnessError as exc:
            raise ResourceError(str(exc)) from None

    @server.resource("harness://training/{run_id}", mime_type=JSON, title="Training run")
    def training(run_id: str) -> str:
        """A training run's history (per-epoch metrics) and its step traces."""
        return training_history(run_id)

    @server.resource(
        "harness://training/{run_id}/steps/{step}", mime_type=JSON, title="Training step trace"
    )
    def step(run_id: str, step: str) -> str:
        """The reflection records of one training step: why the module changed."""
        return training_step(run_id, step)

    @server.resource(
        "harness://experience/{name}/rows/{index}", mime_type=JSON, title="Experience row"
    )
    def row(name: str, index: str, ctx: Context) -> str:
        """One row of a named experience (under <data home>/experience)."""
        return experience_row(ctx.request_context.lifespan_context.experience, name, index)

    @server.resource("harness://results/{name}", mime_type="text/plain", title="Saved result")
    def result(name: str) -> str:
        """A tool result too long for the reply, saved in full."""
        return saved_result(name)
