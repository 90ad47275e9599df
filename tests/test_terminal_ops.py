"""tmux ops and validators on a real tmux server, inside graphs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mcp_harness.runtime.future import Run
from mcp_harness.runtime.graph import build
from mcp_harness.terminal.session import TerminalSession


def graph(nodes: list[dict], output: str):
    return build({"nodes": nodes, "output": output})


def const(node_id: str, value) -> dict:
    return {"id": node_id, "op": "ft_const", "args": {"value": value}}


def test_run_send_capture_and_validate(runtime: Path, tmp_path: Path) -> None:
    g = graph(
        [
            const("cwd", [str(tmp_path)]),
            {
                "id": "session",
                "op": "ft_tmux_create_session",
                "inputs": ["cwd"],
                "args": {"name": "ops"},
            },
            const("cmd", ["echo 'a  b'\"!\" ; false"]),
            {"id": "ran", "op": "ft_tmux_run", "inputs": ["cmd", "session"]},
            {
                "id": "exit1",
                "op": "ft_validate_exit_status",
                "inputs": ["ran"],
                "args": {"expect": 1},
            },
            const("text", ["printf '%s|' x  y"]),
            {"id": "typed", "op": "ft_tmux_send_text", "inputs": ["text", "session"]},
            const("enter", ["keys: Enter"]),
            {
                "id": "pressed",
                "op": "ft_tmux_send_keys",
                "inputs": ["enter", "session"],
                "args": {"strip_prefix": "keys:"},
            },
            {"id": "idle", "op": "ft_validate_prompt_idle", "inputs": ["pressed", "session"]},
            {"id": "shot", "op": "ft_tmux_capture_pane", "inputs": ["session"]},
            {"id": "fresh", "op": "ft_sequential", "inputs": ["idle", "shot"]},
            {
                "id": "seen",
                "op": "ft_validate_regex",
                "inputs": ["fresh"],
                "args": {"pattern": r"^x\|y\|\$"},
            },
            const("check", ["test -d ."]),
            {"id": "checked", "op": "ft_validate_command", "inputs": ["seen", "check", "cwd"]},
            {"id": "all", "op": "ft_sequential", "inputs": ["exit1", "typed", "checked"]},
        ],
        "all",
    )
    run = Run(tmp_path / "run")
    [done] = asyncio.run(run.forward(g.output))
    ran = run.element(g.nodes["ran"], (0,))
    assert ran.meta["exit_code"] == 1 and not ran.status.ok
    assert "a  b!" in ran.text  # spaces and punctuation reached the terminal intact
    assert run.element(g.nodes["exit1"], (0,)).status.ok
    assert run.element(g.nodes["idle"], (0,)).status.ok
    assert done.status.ok, done
    assert "x|y|$" in done.text
    # Per-element gradients through tmux ops and validators (element-wise: identity to the
    # inputs that were pulled; a session's name gets none): d mean(all) / d leaf = 1.
    from mcp_harness.runtime.future import FutureTensor
    from mcp_harness.runtime.ops import OPS

    loss_node = FutureTensor(OPS["ft_mean"](), [g.output], name="loss")
    asyncio.run(run.forward(loss_node))
    run.coefficients(loss_node).backward()
    for leaf in ("cmd", "text", "check"):
        assert run.coefficients(g.nodes[leaf]).grad.tolist() == [1.0], leaf
    asyncio.run(_kill(run))


def test_send_text_types_pieces_with_every_space(runtime: Path, tmp_path: Path) -> None:
    """Typed piece by piece (one-character pieces, leading, trailing and repeated spaces, a
    tab), the command line is the pieces joined, nothing dropped."""
    pieces = ["echo", " ", "'", "a", "  ", "b", "'", "\t", "x", " ", " y", "  "]
    nodes: list[dict] = [
        const("cwd", [str(tmp_path)]),
        {"id": "session", "op": "ft_tmux_create_session", "inputs": ["cwd"], "args": {"name": "p"}},
    ]
    for i, piece in enumerate(pieces):
        nodes.append(const(f"piece{i}", [piece]))
        nodes.append(
            {"id": f"sent{i}", "op": "ft_tmux_send_text", "inputs": [f"piece{i}", "session"]}
        )
    nodes += [
        const("enter", ["Enter"]),
        {"id": "pressed", "op": "ft_tmux_send_keys", "inputs": ["enter", "session"]},
        {"id": "idle", "op": "ft_validate_prompt_idle", "inputs": ["pressed", "session"]},
        {"id": "shot", "op": "ft_tmux_capture_pane", "inputs": ["session"]},
        {
            "id": "all",
            "op": "ft_sequential",
            "inputs": [*(f"sent{i}" for i in range(len(pieces))), "idle", "shot"],
        },
    ]
    g = graph(nodes, "all")
    run = Run(tmp_path / "run")
    [done] = asyncio.run(run.forward(g.output))
    assert done.status.ok, done
    assert [
        run.element(g.nodes[f"sent{i}"], (0,)).meta["sent"] for i in range(len(pieces))
    ] == pieces
    assert "\na  b x y\n" in done.text, done.text
    asyncio.run(_kill(run))


async def _kill(run: Run) -> None:
    for session in run.sessions.values():
        await session.kill()


def test_dead_session_fails_the_element_without_hanging(runtime: Path, tmp_path: Path) -> None:
    async def scenario():
        session = await TerminalSession.create("doomed", cwd=tmp_path)
        await session.kill()
        g = graph(
            [
                const("name", ["doomed"]),
                const("cmd", ["echo hi"]),
                {"id": "ran", "op": "ft_tmux_run", "inputs": ["cmd", "name"]},
            ],
            "ran",
        )
        return await Run(tmp_path / "run").forward(g.output, timeout=30)

    [element] = asyncio.run(scenario())
    assert not element.status.ok
    assert "no longer exists" in element.text or "does not exist" in element.text


def test_capture_and_wait(runtime: Path, tmp_path: Path) -> None:
    g = graph(
        [
            {"id": "session", "op": "ft_tmux_create_session", "args": {"name": "cap"}},
            const("cmd", ["echo ready-marker"]),
            {"id": "ran", "op": "ft_tmux_run", "inputs": ["cmd", "session"]},
            {"id": "after", "op": "ft_sequential", "inputs": ["ran", "session"]},
            {
                "id": "waited",
                "op": "ft_tmux_wait",
                "inputs": ["after"],
                "args": {"pattern": "ready-marker", "timeout": 5},
            },
        ],
        "waited",
    )
    run = Run(tmp_path / "run", workdir=tmp_path)
    [waited] = asyncio.run(run.forward(g.output))
    assert waited.status.ok and "ready-marker" in waited.text
    asyncio.run(_kill(run))
