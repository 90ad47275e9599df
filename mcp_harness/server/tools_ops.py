"""Every ft_* op is a tool, generated from the op registry: `ft_format`, `ft_expert`,
`ft_validate_regex`, ... applied once to literal input tensors (nested lists of text), with
the op's args as typed parameters and its docstring as the description.

A call builds a two-level graph (one `ft_const` per input tensor, then the op), so the op's
shape contract is checked before anything runs, runs it on the kernel (ops that read
experience take it by name or path) and returns the output's texts and statuses in its shape.
Composition stays in `graph_run`. `ft_input` is no tool: it reads a run input, and here the
literal tensors are the inputs.
"""

from __future__ import annotations

import functools
import inspect
import operator
import time
from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_harness.errors import HarnessError
from mcp_harness.paths import data_home
from mcp_harness.server import notify
from mcp_harness.server.declare import Result, add, concise
from mcp_harness.server.output import LIMIT_CHARS, fit

NOT_TOOLS = {"ft_input"}
OP_TIMEOUT_S = 120.0
MIN_TEXT = 500
READS = ("ft_read_file", "ft_tmux_capture_pane", "ft_first_line", "ft_tmux_wait")
TensorArg = Annotated[
    list[Any], Field(description='the input tensors: nested lists of text, e.g. [["a", "b"]]')
]


class OpResult(Result):
    op: str
    shape: list[int] = Field(description="the output's shape")
    texts: Any = Field(description="the output's element texts, nested in its shape")
    statuses: Any = Field(description="each element's status, nested the same way")
    passed: int = Field(description="elements with an ok status")
    run_dir: str


def _python_type(types: Any) -> Any:
    accepted = types if isinstance(types, tuple) else (types,)
    mapped = [list[Any] if t is list else t for t in accepted]
    return functools.reduce(operator.or_, mapped)


def _tensor_shape(value: Any, where: str) -> list[int]:
    """The shape of a nested list of strings, or a HarnessError naming `where`."""
    if isinstance(value, str):
        return []
    if not isinstance(value, list) or not value:
        raise HarnessError(
            f"{where} is {type(value).__name__} {str(value)[:60]!r}, not a tensor",
            'give nested lists of text, e.g. ["a", "b"] or [["a"], ["b"]]',
        )
    inner = [_tensor_shape(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if any(shape != inner[0] for shape in inner):
        raise HarnessError(
            f"{where} is ragged: its items have shapes {inner[0]} and "
            f"{next(s for s in inner if s != inner[0])}",
            "give every item of a list the same shape",
        )
    return [len(value), *inner[0]]


def _nest(flat: list[Any], shape: list[int]) -> Any:
    if not shape:
        return flat[0]
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


async def apply(
    op_name: str, tensors: list[Any], args: dict[str, Any], kernel: str | None
) -> OpResult:
    """Run op `op_name` once on literal `tensors` with `args`."""
    from mcp_harness.kernels.config import make_kernel
    from mcp_harness.runtime import module
    from mcp_harness.runtime.ops import OPS
    from mcp_harness.server.tools_graph import open_experience

    for index, tensor in enumerate(tensors):
        _tensor_shape(tensor, f"tensors[{index}]")
    cls = OPS[op_name]
    low, high = (cls.arity, cls.arity) if isinstance(cls.arity, int) else cls.arity
    if len(tensors) < low or (high is not None and len(tensors) > high):
        want = f"{low}" if low == high else f"{low} to {high if high is not None else 'any'}"
        raise HarnessError(
            f"{op_name} takes {want} input tensor(s); tensors has {len(tensors)}",
            f"give {want} tensors",
        )
    spec_args = dict(args)
    experience: dict[str, str] = {}
    if "experience" in cls.ARGS:
        experience = {"experience": spec_args["experience"]}
        spec_args["experience"] = "experience"
    spec = {
        "name": op_name,
        "experience": experience,
        "nodes": [
            *(
                {"id": f"tensors[{i}]", "op": "ft_const", "args": {"value": t}}
                for i, t in enumerate(tensors)
            ),
            {
                "id": op_name,
                "op": op_name,
                "inputs": [f"tensors[{i}]" for i in range(len(tensors))],
                "args": spec_args,
            },
        ],
        "output": op_name,
    }
    opened = await open_experience(spec, {})
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = data_home() / "runs" / f"{op_name}-{stamp}-{time.time_ns() % 10**6}"
    loaded = module.Module(run_dir, spec, opened)
    try:
        runner = make_kernel(kernel)
        report = await module.run(loaded, {}, kernel=runner, run_dir=run_dir, timeout=OP_TIMEOUT_S)
    finally:
        loaded.close()  # its pool connections
    shape = list(report.graph.output.shape)
    elements = report.elements
    share = max(MIN_TEXT, LIMIT_CHARS // max(len(elements), 1) - 100)
    return OpResult(
        op=op_name,
        shape=shape,
        texts=_nest([fit(e.text, "element", share) for e in elements], shape),
        statuses=_nest([str(e.status) for e in elements], shape),
        passed=sum(e.status.ok for e in elements),
        run_dir=str(report.run_dir),
    )


def _function(op_name: str, cls: Any) -> Any:
    async def op_tool(ctx: Context, **given: Any) -> OpResult:
        tensors = given.pop("tensors", [])
        kernel = given.pop("kernel", None)
        async with notify.ticking(ctx, op_name):
            return await apply(op_name, tensors, given, kernel)

    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("ctx", keyword, annotation=Context)]
    if cls.arity != 0:
        params.append(inspect.Parameter("tensors", keyword, annotation=TensorArg))
    for name, (types, default) in cls.ARGS.items():
        kind: Any = _python_type(types)
        if name == "experience":
            kind = Annotated[str, Field(description="an experience name or path")]
        params.append(
            inspect.Parameter(
                name,
                keyword,
                default=inspect.Parameter.empty if default is ... else default,
                annotation=kind,
            )
        )
    if "experience" in cls.ARGS:
        params.append(
            inspect.Parameter(
                "kernel",
                keyword,
                default=None,
                annotation=Annotated[
                    str | None, Field(description="LLM kernel (default: configured)")
                ],
            )
        )
    op_tool.__signature__ = inspect.Signature(params, return_annotation=OpResult)  # type: ignore[attr-defined]
    op_tool.__annotations__ = {p.name: p.annotation for p in params} | {"return": OpResult}
    op_tool.__name__ = op_name
    return op_tool


def op_names() -> list[str]:
    """The ops that are tools: every registered ft_* op but `NOT_TOOLS`."""
    from mcp_harness.runtime.ops import OPS

    return sorted(name for name in OPS if name.startswith("ft_") and name not in NOT_TOOLS)


def register(server: MCPServer) -> None:
    from mcp_harness.runtime.ops import OPS

    for op_name in op_names():
        cls = OPS[op_name]
        reads = op_name in READS or op_name.startswith("ft_validate") or cls.arity == 0
        add(
            server,
            _function(op_name, cls),
            op_name,
            f"Op {op_name}",
            concise(cls.__doc__),
            ToolAnnotations(
                read_only_hint=reads,
                destructive_hint=not reads,
                open_world_hint=op_name.startswith(("ft_tmux", "ft_expert")),
            ),
        )
