"""Graph specs: a JSON description of a harness, checked completely before anything runs.

```json
{"name": "coder",
 "dims": {"batch": 1, "steps": 8},
 "inputs": {"task": ["batch"]},
 "experience": {"decision": "experience/decision"},
 "nodes": [{"id": "task", "op": "ft_input", "args": {"input": "task", "shape": ["batch"]}},
           {"id": "plan", "op": "ft_expert", "inputs": ["task"],
            "args": {"experience": "decision"}}],
 "output": "plan"}
```
`dims` name sizes that `shape` args may use in place of ints (run-time values override);
`inputs` declares each run input's shape. Building checks, in order: the spec's form, every
node's op and arguments, references between nodes (no unknown node, no cycle), experience
references, and every op's shape contract — each error names the node and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.limits import limits
from mcp_harness.runtime.future import FutureTensor
from mcp_harness.runtime.ops import OPS

SPEC_FIX = "see the graph spec format in the module README"


@dataclass
class Graph:
    spec: dict[str, Any]
    nodes: dict[str, FutureTensor]
    output: FutureTensor
    dims: dict[str, int]

    def describe(self) -> list[dict[str, Any]]:
        """Nodes in build order with op, inputs and shape: what `module show` prints."""
        return [
            {
                "id": name,
                "op": node.op.name,
                "inputs": [i.name for i in node.inputs],
                "shape": list(node.shape),
                "args": node.op.args,
            }
            for name, node in self.nodes.items()
        ]


def load_spec(path: Path) -> dict[str, Any]:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path}: no graph spec here", "create module.json") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(
            f"{path}:{exc.lineno}: graph spec is not valid JSON ({exc.msg})", "fix the JSON"
        ) from None
    return spec


def build(
    spec: Any, dims: dict[str, int] | None = None, experience_names: set[str] | None = None
) -> Graph:
    """Check `spec` and build its nodes; raises HarnessError/ShapeError before anything runs."""
    if not isinstance(spec, dict):
        raise HarnessError("a graph spec must be a JSON object", SPEC_FIX)
    for key, kind in (("nodes", list), ("output", str)):
        if not isinstance(spec.get(key), kind):
            raise HarnessError(f"graph spec needs {key!r} ({kind.__name__})", SPEC_FIX)
    bound = {**_dims(spec.get("dims", {})), **(dims or {})}
    declared = spec.get("experience", {})
    if not isinstance(declared, dict):
        raise HarnessError("'experience' must map names to directories", SPEC_FIX)
    raw: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(spec["nodes"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise HarnessError(f"node #{index} needs a string 'id'", SPEC_FIX)
        if entry["id"] in raw:
            raise HarnessError(
                f"node id {entry['id']!r} is used twice", "give each node its own id"
            )
        raw[entry["id"]] = entry
    nodes: dict[str, FutureTensor] = {}
    visiting: set[str] = set()
    caps = limits()
    if bound.get("steps", 0) > caps.steps:
        raise caps.exceeded("dim steps", bound["steps"], "steps", "run fewer steps")
    total = 0

    def make(node_id: str, wanted_by: str | None) -> FutureTensor:
        nonlocal total
        if node_id in nodes:
            return nodes[node_id]
        entry = raw.get(node_id)
        if entry is None:
            where = f"node {wanted_by!r} refers to" if wanted_by else "output is"
            raise HarnessError(f"{where} unknown node {node_id!r}", f"use one of: {', '.join(raw)}")
        if node_id in visiting:
            raise HarnessError(
                f"node {node_id!r} depends on itself (a cycle)",
                "loops are a dimension: use ft_recurrent",
            )
        visiting.add(node_id)
        op_name = entry.get("op")
        if op_name not in OPS:
            raise HarnessError(
                f"node {node_id!r}: unknown op {op_name!r}", f"use one of: {', '.join(sorted(OPS))}"
            )
        inputs = entry.get("inputs", [])
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            raise HarnessError(f"node {node_id!r}: 'inputs' must be a list of node ids", SPEC_FIX)
        args = entry.get("args", {})
        if not isinstance(args, dict):
            raise HarnessError(f"node {node_id!r}: 'args' must be an object", SPEC_FIX)
        args = {k: _resolve_dims(v, bound, node_id) if k == "shape" else v for k, v in args.items()}
        if op_name == "ft_expert" and args.get("experience") not in declared:
            raise HarnessError(
                f"node {node_id!r}: experience {args.get('experience')!r} is not declared",
                f"declare it under 'experience' (declared: {', '.join(declared) or 'none'})",
            )
        parents = [make(i, node_id) for i in inputs]
        try:
            op = OPS[op_name](**args)
        except HarnessError as exc:
            raise HarnessError(f"node {node_id!r}: {exc.message}", exc.fix) from None
        node = FutureTensor(op, parents, name=node_id)
        total += node.numel
        if node.numel > caps.node_elements:
            raise caps.exceeded(
                f"node {node_id!r} has shape {list(node.shape)}: its elements",
                node.numel,
                "node_elements",
            )
        if total > caps.run_elements:
            raise caps.exceeded(
                f"the graph's nodes up to {node_id!r} hold elements", total, "run_elements"
            )
        visiting.discard(node_id)
        nodes[node_id] = node
        return node

    for node_id in raw:
        make(node_id, None)
    output = make(spec["output"], None)
    if experience_names is not None:
        missing = set(declared) - experience_names
        if missing:
            raise HarnessError(
                f"experience {sorted(missing)} declared but not found",
                "create the experience directories (mcp-harness module new)",
            )
    return Graph(spec, nodes, output, bound)


def _dims(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw.values()
    ):
        raise HarnessError("'dims' must map names to non-negative ints", SPEC_FIX)
    return dict(raw)


def _resolve_dims(value: Any, dims: dict[str, int], node_id: str) -> Any:
    """Replace dim names in a `shape` arg with their sizes."""
    if isinstance(value, list):
        return [_resolve_dim(v, dims, node_id) for v in value]
    return value


def _resolve_dim(value: Any, dims: dict[str, int], node_id: str) -> Any:
    if isinstance(value, str) and value.isidentifier():
        if value not in dims:
            raise HarnessError(
                f"node {node_id!r}: unknown dim {value!r}",
                f"declare it under 'dims' (declared: {', '.join(dims) or 'none'})",
            )
        return dims[value]
    return value
