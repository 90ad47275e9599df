"""No path escapes through the server: a symlink planted in an experience, a module or a
training run that leads out of the allowed roots is refused before anything is read or
written, and nothing outside changes (a real MCP client, in memory and over stdio)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from mcp_harness.experience.store import Experience, Row
from mcp_harness.runtime import module as modules
from mcp_harness.server.app import build_server

CLI = Path(sys.executable).parent / "mcp-harness"
ORIGINAL = "outside content: must never change or be shown\n"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's working directory; tmp_path/outside is in no allowed root."""
    directory = tmp_path / "work"
    directory.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim.txt").write_text(ORIGINAL)
    monkeypatch.chdir(directory)
    monkeypatch.delenv("MCP_HARNESS_ALLOWED_DIRS", raising=False)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    monkeypatch.delenv("MCP_HARNESS_KERNEL", raising=False)
    return directory


def victim(work: Path) -> Path:
    return work.parent / "outside" / "victim.txt"


async def call(client: Client, tool: str, **args: Any) -> tuple[bool, str]:
    result = await client.call_tool(tool, args)
    return result.is_error, result.content[0].text if result.content else ""


def _experience(path: Path) -> Experience:
    experience = Experience.create(path)
    experience.append([Row("list\nfiles", "list files", "ls -la")])
    return experience


def _link_a_cell(path: Path, target: Path) -> Path:
    cell = next(p for p in sorted((path / "storage").glob("*/data")))
    cell.unlink()
    cell.symlink_to(target)
    return cell


async def test_experience_cells_and_rows_are_not_followed_out(
    work: Path, harness_home: Path
) -> None:
    exp = harness_home / "experience" / "shell"
    _experience(exp)
    cell = _link_a_cell(exp, victim(work))
    async with Client(build_server(), mode="legacy") as client:
        for tool, args in (
            ("experience_edit", {"row": 0, "key": "overwritten"}),
            ("experience_search", {"text": "list files"}),
            ("experience_add", {"key": "k", "value": "v"}),
            ("experience_stats", {}),
            ("experience_delete", {"rows": [0]}),
        ):
            failed, text = await call(client, tool, experience="shell", **args)
            assert failed, (tool, text)
            assert f"{cell} is a symlink to {victim(work)}" in text
            assert ORIGINAL not in text
        cell.unlink()
        rows = exp / "rows.jsonl"
        rows.rename(work.parent / "outside" / "rows.jsonl")
        rows.symlink_to(work.parent / "outside" / "rows.jsonl")
        failed, text = await call(client, "experience_add", experience="shell", key="k", value="v")
        assert failed and "rows.jsonl is a symlink" in text
    assert victim(work).read_text() == ORIGINAL


async def test_a_symlink_inside_the_roots_still_works(work: Path, harness_home: Path) -> None:
    exp = harness_home / "experience" / "shell"
    _experience(exp)
    cell = next(p for p in sorted((exp / "storage").glob("*/data")))
    kept = work / "cell-copy"
    kept.write_bytes(cell.read_bytes())
    _link_a_cell(exp, kept)
    async with Client(build_server(), mode="legacy") as client:
        failed, text = await call(client, "experience_stats", experience="shell")
        assert not failed, text


def _module(work: Path, name: str = "mod") -> Path:
    return modules.new(name, target=work / name)


async def test_module_experience_outside_the_roots_is_refused(work: Path) -> None:
    path = _module(work)
    outside_exp = work.parent / "outside" / "exp"
    _experience(outside_exp)
    spec = json.loads((path / "module.json").read_text())
    name = next(iter(spec["experience"]))
    spec["experience"][name] = "../../outside/exp"
    (path / "module.json").write_text(json.dumps(spec))
    data = work / "train.jsonl"
    data.write_text(json.dumps({"inputs": {"task": "t", "check": "true"}}) + "\n")
    before = sorted(p.name for p in outside_exp.rglob("*"))
    async with Client(build_server(), mode="legacy") as client:
        for tool, args in (
            ("module_show", {"module": str(path)}),
            ("module_train_start", {"module": str(path), "data": str(data)}),
            ("module_run_start", {"module": str(path), "inputs": {"task": "t", "check": "true"}}),
            ("export_skill", {"module": str(path), "to": str(work / "skills")}),
        ):
            failed, text = await call(client, tool, **args)
            assert failed, (tool, text)
            assert "is outside the directories this server may use" in text, text
    assert sorted(p.name for p in outside_exp.rglob("*")) == before
    assert not (work / "skills").exists()


async def test_module_with_a_link_out_is_not_exported(work: Path) -> None:
    path = _module(work)
    (path / "notes.txt").symlink_to(victim(work))
    async with Client(build_server(), mode="legacy") as client:
        failed, text = await call(client, "export_skill", module=str(path), to=str(work / "sk"))
        assert failed and f"{path / 'notes.txt'} is a symlink to {victim(work)}" in text
        failed, text = await call(client, "module_show", module=str(path))
        assert failed and "is a symlink to" in text
    assert not (work / "sk").exists()


async def test_trace_step_file_symlinked_out_is_refused(work: Path) -> None:
    trace = work / "run" / "trace"
    trace.mkdir(parents=True)
    (trace / "step-1.jsonl").symlink_to(victim(work))
    async with Client(build_server(), mode="legacy") as client:
        for run_dir in (str(work / "run"), str(trace / "step-1.jsonl")):
            failed, text = await call(client, "trace_show", run_dir=run_dir)
            assert failed and "is outside the directories" in text, text
            assert ORIGINAL not in text


@pytest.mark.parametrize("name", ["/tmp/abs-escape.txt", "../escape.txt", "a/../../x"])
async def test_dataset_files_stay_in_the_workspace(work: Path, name: str) -> None:
    data = work / "train.jsonl"
    task = {"inputs": {"task": "t", "check": "false"}, "files": {name: "pwned\n"}}
    data.write_text(json.dumps(task) + "\n")
    async with Client(build_server(), mode="legacy") as client:
        failed, text = await call(client, "module_train_start", module="coder", data=str(data))
    assert failed and f"file {name!r} is not a path inside the task's workspace" in text
    assert not Path("/tmp/abs-escape.txt").exists()


async def test_graph_run_experience_link_out_is_refused(work: Path, harness_home: Path) -> None:
    exp = harness_home / "experience" / "shell"
    _experience(exp)
    _link_a_cell(exp, victim(work))
    spec = {
        "experience": {"command": "shell"},
        "inputs": {"task": [1]},
        "nodes": [{"id": "task", "op": "ft_input", "args": {"input": "task", "shape": [1]}}],
        "output": "task",
    }
    async with Client(build_server(), mode="legacy") as client:
        failed, text = await call(client, "graph_run", spec=spec, inputs={"task": ["x"]})
    assert failed and "is a symlink to" in text


async def test_stdio_refuses_a_link_out(work: Path, harness_home: Path) -> None:
    exp = harness_home / "experience" / "shell"
    _experience(exp)
    cell = _link_a_cell(exp, victim(work))
    params = StdioServerParameters(
        command=str(CLI),
        args=["serve"],
        env={"MCP_HARNESS_HOME": str(harness_home), "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        cwd=str(work),
    )
    async with Client(params, mode="legacy") as client:
        failed, text = await call(client, "experience_edit", experience="shell", row=0, key="x")
    assert failed and f"{cell} is a symlink to" in text
    assert victim(work).read_text() == ORIGINAL


async def test_list_allowed_directories(work: Path, harness_home: Path, monkeypatch) -> None:
    extra = work.parent / "extra"
    extra.mkdir()
    monkeypatch.setenv("MCP_HARNESS_ALLOWED_DIRS", str(extra))
    async with Client(build_server(), mode="legacy") as client:
        listed = (await client.call_tool("list_allowed_directories", {})).structured_content
    assert listed["directories"] == [
        str(harness_home.resolve()),
        str(work.resolve()),
        str(extra.resolve()),
    ]
    assert listed["sources"][str(work.resolve())] == "server working directory"
    assert listed["sources"][str(extra.resolve())] == "MCP_HARNESS_ALLOWED_DIRS"


async def test_client_roots_replace_the_working_directory(work: Path, harness_home: Path) -> None:
    from mcp.types import ListRootsResult, Root

    project = work.parent / "project"
    project.mkdir()
    asked = []

    async def roots(context: Any) -> ListRootsResult:
        asked.append(True)
        return ListRootsResult(roots=[Root(uri=project.as_uri(), name="project")])

    async with Client(build_server(), mode="legacy", list_roots_callback=roots) as client:
        listed = (await client.call_tool("list_allowed_directories", {})).structured_content
        assert listed["directories"] == [str(harness_home.resolve()), str(project.resolve())]
        assert listed["sources"][str(project.resolve())] == "client roots"
        inside = await call(client, "terminal_create", name="x", cwd=str(work))
        assert inside[0] and "is outside the directories" in inside[1]
        made = await call(
            client,
            "experience_add",
            experience=str(project / "exp"),
            key="k",
            value="v",
            create=True,
        )
        assert not made[0], made[1]
    assert asked


async def test_links_planted_after_opening_cannot_redirect_writes(
    work: Path, harness_home: Path
) -> None:
    exp = harness_home / "experience" / "shell"
    async with Client(build_server(), mode="legacy") as client:
        failed, text = await call(
            client, "experience_add", experience="shell", key="k", value="v", create=True
        )
        assert not failed, text
        cells = sorted((exp / "storage").glob("*/data"))
        for cell in cells:  # every cell of row 0 now leads to the victim
            cell.unlink()
            cell.symlink_to(victim(work))
        failed, text = await call(
            client, "experience_edit", experience="shell", row=0, query="q", key="x", value="y"
        )
        assert failed and f"leads to {victim(work)}" in text, text
        for cell in cells:
            cell.unlink()
        rows = exp / "rows.jsonl"
        outside_rows = work.parent / "outside" / "rows.jsonl"
        rows.rename(outside_rows)
        before = outside_rows.read_text()
        rows.symlink_to(outside_rows)
        failed, text = await call(client, "experience_add", experience="shell", key="k", value="v")
        assert failed and "refusing to write" in text and "rows.jsonl" in text, text
        assert outside_rows.read_text() == before
    assert victim(work).read_text() == ORIGINAL


async def test_graph_run_reads_no_file_outside_the_roots(work: Path, harness_home: Path) -> None:
    """`ft_read_file` in a client's graph reads inside the allowed roots only, whatever
    directory the graph names (a second input) or link it follows."""
    (work / "mine.txt").write_text("inside text\n")
    (work / "link.txt").symlink_to(victim(work))
    spec = {
        "nodes": [
            {"id": "name", "op": "ft_const",
             "args": {"value": ["mine.txt", "victim.txt", "link.txt"]}},
            {"id": "dir", "op": "ft_const",
             "args": {"value": [str(work), str(victim(work).parent), str(work)]}},
            {"id": "read", "op": "ft_read_file", "inputs": ["name", "dir"]},
        ],
        "output": "read",
    }  # fmt: skip
    async with Client(build_server(), mode="legacy") as client:
        _, text = await call(client, "graph_run", spec=spec, inputs={})
    assert "inside text" in text
    assert ORIGINAL.strip() not in text
    assert "outside the directories this server may use" in text
