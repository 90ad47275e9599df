"""The Python API with the seed's names: lazy composition with shape checks, runs on a
kernel, training with loss.backward() + StSGD, the JSON spec both ways, the coder example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mcp_harness
from mcp_harness import (
    Session,
    StSGD,
    TracePolicy,
    dispatch_policy,
    from_spec,
    ft_const,
    ft_expert,
    ft_sequential,
    make_tensor,
    need_reflection,
    save_module,
    to_spec,
)
from mcp_harness.errors import HarnessError
from mcp_harness.runtime.ops import ShapeError

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "MCP_HARNESS_HOME": str(tmp_path / "home")}


def test_import_is_cheap_and_names_resolve_on_use(tmp_path: Path) -> None:
    probe = (
        "import sys, mcp_harness; cheap = 'torch' not in sys.modules; "
        "mcp_harness.ft_expert; mcp_harness.make_tensor; "
        "print(cheap, 'torch' in sys.modules, mcp_harness.StSGD.__mro__[1].__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=_env(tmp_path), capture_output=True, text=True
    )
    assert done.stdout.split() == ["True", "False", "Optimizer"], done.stderr
    with pytest.raises(AttributeError):
        mcp_harness.no_such_name  # noqa: B018


def test_shapes_are_checked_when_composing(tmp_path: Path) -> None:
    with pytest.raises(ShapeError, match=r"input 0 has shape \[2\] but input 1 has shape \[3\]"):
        ft_sequential(ft_const(["a", "b"]), ft_const(["a", "b", "c"]), name="both")
    with pytest.raises(HarnessError, match="takes"):
        ft_const(["a"], ["b"])  # one argument too many


def seed_rows() -> list[list[str]]:
    return [["list files", "list the files", "ls"], ["disk usage", "show disk usage", "df -h"]]


def test_train_with_backward_and_stsgd_step(tmp_path: Path) -> None:
    exp = make_tensor(seed_rows(), tmp_path / "exp", name="cmd")
    assert exp.shape == (2,) and exp.is_leaf and exp.requires_grad
    out = ft_expert(ft_const(["list the files"]), exp, name="command")
    optimizer = StSGD([exp], lr=0.5)
    assert isinstance(optimizer, torch.optim.Optimizer)
    with Session(kernel="offline") as session:
        assert session.forward(out) == ["ls"]
        loss = session.target_loss(out, {(0,): "ls -la"})
        optimizer.zero_grad()
        loss.backward()
    assert exp.grad is not None and exp.grad[0] > 0 and exp.grad[1] == 0  # row 0 answered wrong
    assert [(c.key, c.value) for c in exp.symbolic_grad] == [("list the files", "ls -la")]
    credit = exp.grad[0].item()
    optimizer.step()
    assert optimizer.last_report.accepted
    rows = list(exp.experience.rows())
    assert [r.value for r in rows] == ["ls", "df -h", "ls -la"]
    assert rows[0].weight == pytest.approx(1 - 0.5 * credit) and rows[1].weight == 1
    assert exp.shape == (3,)  # the parameter follows the experience
    with Session(kernel="offline") as session:
        assert session.forward(out) == ["ls -la"]  # the new row answers now
        assert session.target_loss(out, {(0,): "ls -la"}).item() == 0


def test_spec_round_trip_and_the_cli_serves_a_python_module(tmp_path: Path) -> None:
    exp = make_tensor(seed_rows(), tmp_path / "exp", name="cmd")
    out = ft_expert(ft_const(["show disk usage"]), exp, topk=2, name="command")
    spec = to_spec(out, "disk")
    assert spec["experience"] == {"cmd": str(exp.experience.path)}
    assert [n["id"] for n in spec["nodes"]][-1] == "command" and spec["output"] == "command"
    again = from_spec(spec)
    assert to_spec(again, "disk") == spec
    assert again.bound["cmd"].experience.path == exp.experience.path
    with Session() as session:
        assert session.forward(again) == ["df -h"]
    module = save_module(out, tmp_path / "disk")
    done = subprocess.run(
        [sys.executable, "-m", "mcp_harness", "module", "run", str(module), "--json"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "df -h" in json.dumps(json.loads(done.stdout))


@pytest.mark.filterwarnings("ignore:Using backward.. with create_graph=True")
def test_need_reflection_and_trace_policy(tmp_path: Path) -> None:
    exp = make_tensor(seed_rows(), tmp_path / "exp", name="cmd")
    anchor = mcp_harness.ft_reflection_starter()
    source = need_reflection(ft_const(["list the files"], name="task"), anchor)
    out = ft_expert(source, exp, name="command")
    records: list = []
    with Session() as session:
        session.forward(out)
        loss = session.target_loss(out, {(0,): "ls -la"})
        with dispatch_policy(TracePolicy(records)) as trace:
            loss.backward(create_graph=True)
    fns = [r.fn for r in trace]
    assert "ft_expert.backward" in fns and "ft_expert.symbolic_backward" in fns
    assert anchor.grad is not None and anchor.grad.requires_grad


def test_coder_example_runs_offline(tmp_path: Path, runtime: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "coder_simulator.py")],
        env={**_env(tmp_path), "MCP_HARNESS_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "step 0: decided 'text:type the shell command', then 'echo hello world'" in done.stdout
    assert "step 1: decided 'ctrl:press Enter', then 'Enter'" in done.stdout
    assert "\nhello world\n" in done.stdout


def test_a_graph_as_an_nn_module(tmp_path: Path) -> None:
    exp = make_tensor(seed_rows(), tmp_path / "exp", name="cmd")
    out = ft_expert(ft_const(["show disk usage"]), exp, name="command")
    module = mcp_harness.harness_module(out)
    assert isinstance(module, torch.nn.Module)
    assert [name for name, _ in module.named_parameters()] == ["cmd"]
    assert module.state_dict()["cmd"].tolist() == [1.0, 1.0]
    optimizer = StSGD(module.parameters(), lr=0.5)
    with Session() as session:
        status = module(session)
        assert status.tolist() == [1.0]
        (1 - status.mean()).backward()
    assert exp.grad.tolist() == [0.0, -1.0]  # the row that answered gains weight
    optimizer.step()
    assert [r.weight for r in exp.experience.rows()] == [1.0, 1.5]
    assert module.to_spec("disk") == to_spec(out, "disk")


def test_a_python_graph_runs_and_reflects_on_an_llm_kernel(tmp_path: Path) -> None:
    """The real openai SDK against a loopback stub: forward and the backward's reflection
    calls share the session's event loop."""
    from mcp_harness.kernels.openai_api import OpenAIKernel
    from mcp_harness.kernels.runner import KernelRunner
    from tests.kernel_stubs import ApiStub, last_user_text

    def model(body: dict) -> str:
        return "ls -la --color" if "EXAMPLE OUTPUT" in last_user_text(body) else "ls"

    exp = make_tensor(seed_rows(), tmp_path / "exp", name="cmd")
    out = ft_expert(ft_const(["list the files"]), exp, name="command")
    with ApiStub("openai", text=model) as stub:
        kernel = KernelRunner(OpenAIKernel(api_key="sk-test", base_url=stub.base_url))
        with Session(kernel=kernel) as session:
            assert session.forward(out) == ["ls"]
            session.target_loss(out, {(0,): "ls -la --color"}).backward()
        calls = stub.count
    patches = [c for c in exp.symbolic_grad if hasattr(c, "diff")]
    assert calls == 2 and len(patches) == 1  # the answer, then the row's reflection
    assert "+ls -la --color" in patches[0].diff
    StSGD([exp]).step()
    assert exp.experience.row(0).value == "ls -la --color"


def test_a_bare_llm_call_is_an_expert_over_an_empty_experience(tmp_path: Path) -> None:
    """The seed's `ft_llm_call`: no rows retrieved, the task and the input go to the kernel."""
    from mcp_harness.kernels.openai_api import OpenAIKernel
    from mcp_harness.kernels.runner import KernelRunner
    from tests.kernel_stubs import ApiStub, last_user_text

    empty = make_tensor([], tmp_path / "exp", name="none")
    out = ft_expert(ft_const(["good evening"]), empty, task="Translate English to French.")
    with ApiStub("openai", text="bonsoir") as stub:
        kernel = KernelRunner(OpenAIKernel(api_key="sk-test", base_url=stub.base_url))
        with Session(kernel=kernel) as session:
            assert session.forward(out) == ["bonsoir"]
        prompt = last_user_text(stub.bodies[0])
    assert "TASK:\nTranslate English to French." in prompt and "EXAMPLES" not in prompt


def test_a_session_inside_an_event_loop_says_what_to_do() -> None:
    import asyncio

    async def inside() -> None:
        with Session() as session:
            session.forward(ft_const(["x"]))

    with pytest.raises(HarnessError, match="made inside a running event loop") as info:
        asyncio.run(inside())
    assert "await run.forward" in info.value.fix
