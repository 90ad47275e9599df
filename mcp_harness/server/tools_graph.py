"""Ops and graph tools: the op catalog, the static graph check, and a short synchronous run.

A graph is the JSON spec of `runtime.graph` (dims, inputs, experience, nodes, output). Checking
it runs nothing; `graph_run` runs it on a kernel with a time limit and returns the output
elements. Long runs (training, many steps) belong to the module tools, which run as jobs.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from pathlib import Path
from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_harness.errors import HarnessError
from mcp_harness.experience.backend import (
    STORES,
    PoolAddress,
    Store,
    close_store,
    open_at,
    resolve_store,
)
from mcp_harness.experience.store import Experience
from mcp_harness.paths import data_home
from mcp_harness.server import notify
from mcp_harness.server.confine import allowed_path, check_name, confined_tree
from mcp_harness.server.declare import Result, tool
from mcp_harness.server.output import LIMIT_CHARS, fit
from mcp_harness.storage import layout

MIN_ELEMENT_CHARS = 2_000
MAX_RUN_S = 600

SpecArg = Annotated[
    dict[str, Any],
    Field(
        description='graph spec: {"dims": {name: int}, "inputs": {name: shape}, "experience": '
        '{name: dir}, "nodes": [{"id", "op", "inputs": [ids], "args": {...}}], "output": id}; '
        "ops_catalog lists the ops and their args"
    ),
]
DimsArg = Annotated[
    dict[str, int] | None,
    Field(description='sizes overriding the spec\'s dims, e.g. {"steps": 3}'),
]


class ArgInfo(Result):
    name: str
    types: list[str] = Field(description="accepted JSON types")
    required: bool
    default: Any = Field(default=None, description="value when omitted (if not required)")


class OpInfo(Result):
    name: str
    min_inputs: int
    max_inputs: int | None = Field(description="null: any number")
    args: list[ArgInfo]
    doc: str = Field(description="what the op does, its shape contract and its output")


class Catalog(Result):
    ops: list[OpInfo]


class NodeInfo(Result):
    id: str
    op: str
    inputs: list[str]
    shape: list[int]
    args: dict[str, Any]


class GraphInfo(Result):
    name: str | None
    output: str
    output_shape: list[int]
    dims: dict[str, int] = Field(description="dim sizes used")
    nodes: list[NodeInfo] = Field(description="in build order")


class ElementOut(Result):
    coords: list[int]
    ok: bool
    status: str = Field(description="confidence(v) or failed(v), not_bounded, context_overflow")
    text: str
    meta: dict[str, Any] = Field(default_factory=dict)


class RunOut(Result):
    name: str
    run_dir: str = Field(description="every node's elements, statuses and metadata")
    seconds: float
    output_shape: list[int]
    passed: int = Field(description="output elements with an ok status")
    elements: list[ElementOut] = Field(description="output elements in row-major order")


_TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _arg_info(name: str, types: Any, default: Any) -> ArgInfo:
    accepted = types if isinstance(types, tuple) else (types,)
    required = default is ...
    return ArgInfo(
        name=name,
        types=[_TYPE_NAMES.get(t, t.__name__) for t in accepted],
        required=required,
        default=None if required else default,
    )


def catalog() -> Catalog:
    from mcp_harness.runtime.ops import OPS

    ops = []
    for name in sorted(OPS):
        cls = OPS[name]
        low, high = (cls.arity, cls.arity) if isinstance(cls.arity, int) else cls.arity
        ops.append(
            OpInfo(
                name=name,
                min_inputs=low,
                max_inputs=high,
                args=[_arg_info(k, t, d) for k, (t, d) in cls.ARGS.items()],
                doc=inspect.cleandoc(cls.__doc__ or ""),
            )
        )
    return Catalog(ops=ops)


def _graph_info(graph: Any) -> GraphInfo:
    return GraphInfo(
        name=graph.spec.get("name"),
        output=graph.output.name,
        output_shape=list(graph.output.shape),
        dims=graph.dims,
        nodes=[NodeInfo(**node) for node in graph.describe()],
    )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


async def open_experience(spec: dict[str, Any], given: dict[str, str]) -> dict[str, Store]:
    """Open every experience the graph declares: `given[name]` if passed, else the spec's own
    entry, either read as every experience argument is (`backend.resolve_store`: a pool address,
    a `[stores]` name, a name or a path; a path must be confined). The caller closes them
    (`Module.close`)."""
    declared = spec.get("experience", {})
    if not isinstance(declared, dict):
        raise HarnessError(
            "the graph's 'experience' must map names to experience names or paths",
            'write e.g. "experience": {"command": "shell"}',
        )
    extra = sorted(set(given) - set(declared))
    if extra:
        raise HarnessError(
            f"experience {extra} given but not declared by the graph "
            f"(declared: {', '.join(declared) or 'none'})",
            "pass only names the graph declares under 'experience'",
        )
    opened: dict[str, Store] = {}
    try:
        for name, where in declared.items():
            source = given.get(name, where)
            if not isinstance(source, str) or not source:
                raise HarnessError(
                    f"graph experience {name!r}: {source!r} is not an experience name or path",
                    f"pass experience={{{name!r}: '<name, path or pool address>'}}",
                )
            opened[name] = await asyncio.to_thread(_open_one, name, source)
    except BaseException:
        for store in opened.values():
            close_store(store)
        raise
    return opened


def _open_one(name: str, source: str) -> Store:
    check_name(source, "experience")
    try:
        store = resolve_store(source)
        if isinstance(store, PoolAddress):
            return open_at(store)
    except HarnessError as exc:
        raise HarnessError(f"graph experience {name!r}: {exc.message}", exc.fix) from None
    path = confined_tree(allowed_path(store, "experience"), "experience")
    if not (path / layout.SHAPE_FILE).is_file():
        raise HarnessError(
            f"graph experience {name!r}: no experience at {path} (from {source!r})",
            f"pass experience={{{name!r}: '<name, path or pool address>'}} naming an existing "
            f"one, or a store listed under [{STORES}] in config.toml (create one with "
            "experience_add(..., create=true))",
        )
    return Experience.open(path)


def register(server: MCPServer) -> None:
    read = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @tool(server, title="List the ops", annotations=read)
    def ops_catalog() -> Catalog:
        """Every registered op: its name, how many inputs it takes, its args (types, required,
        defaults) and its documentation (what it does, its shape contract)."""
        return catalog()

    @tool(server, title="Check a graph", annotations=read)
    def graph_validate(spec: SpecArg, dims: DimsArg = None) -> GraphInfo:
        """Check a graph spec without running anything: form, ops and args, references, cycles,
        declared experience and every op's shape contract. Returns each node's shape; an error
        names the node (and both shapes for a shape mismatch) and the fix."""
        from mcp_harness.runtime.graph import build

        return _graph_info(build(spec, dims))

    @tool(
        server,
        title="Run a graph",
        annotations=ToolAnnotations(
            destructive_hint=True, idempotent_hint=False, open_world_hint=True
        ),
    )
    async def graph_run(
        ctx: Context,
        spec: SpecArg,
        inputs: Annotated[
            dict[str, Any],
            Field(description="run inputs: name -> nested lists of text of the declared shape"),
        ],
        experience: Annotated[
            dict[str, str] | None,
            Field(
                description="declared experience name -> experience name or path (default: "
                "the spec's own entry, read the same way)"
            ),
        ] = None,
        kernel: Annotated[
            str | None,
            Field(
                description="offline, anthropic, openai, claude-code or replay (default: "
                "MCP_HARNESS_KERNEL, config.toml, else offline)"
            ),
        ] = None,
        dims: DimsArg = None,
        timeout: Annotated[
            float, Field(gt=0, le=MAX_RUN_S, description="seconds before the run is cancelled")
        ] = 120,
    ) -> RunOut:
        """Run a graph once and return its output elements (text and status). Short runs only:
        at the timeout unfinished elements are cancelled (use the module tools for long work).
        Graphs may run shell commands in terminals and call the kernel's LLM."""
        from mcp_harness.kernels.config import make_kernel
        from mcp_harness.runtime import module

        opened = await open_experience(spec, experience or {})
        name = str(spec.get("name") or "graph")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = data_home() / "runs" / f"{name}-{stamp}-{time.time_ns() % 10**6}"
        loaded = module.Module(Path(name), spec, opened)
        deadline = asyncio.timeout(timeout)
        try:
            runner = make_kernel(kernel)
            async with deadline, notify.ticking(ctx, f"running {name}"):
                report = await module.run(loaded, inputs, kernel=runner, dims=dims, run_dir=run_dir)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise HarnessError(
                f"graph run {name!r} timed out after {timeout:g} s; unfinished elements were "
                f"cancelled (what finished is in {run_dir})",
                f"pass a larger timeout (up to {MAX_RUN_S} s), fewer steps, or run it as a "
                "module job with the module tools",
            ) from None
        finally:
            loaded.close()  # its pool connections
        elements = report.elements
        share = max(MIN_ELEMENT_CHARS, LIMIT_CHARS // max(len(elements), 1))
        return RunOut(
            name=name,
            run_dir=str(report.run_dir),
            seconds=round(report.seconds, 3),
            output_shape=list(report.graph.output.shape),
            passed=sum(e.status.ok for e in elements),
            elements=[
                ElementOut(
                    coords=list(coords),
                    ok=e.status.ok,
                    status=str(e.status),
                    text=fit(e.text, "element", share),
                    meta=_jsonable(e.meta),
                )
                for coords, e in zip(report.graph.output.coords(), elements, strict=True)
            ],
        )
