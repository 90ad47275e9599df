"""`ft_read_file`, `ft_first_line` and `ft_validate_ctrl` inside graphs (no tmux needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mcp_harness.runtime.future import Element, Run
from mcp_harness.runtime.graph import build


def _run(nodes: list[dict], output: str, tmp_path: Path, workdir: Path | None) -> list[Element]:
    graph = build({"nodes": nodes, "output": output})
    return asyncio.run(Run(tmp_path / "run", workdir=workdir).forward(graph.output))


def _const(node_id: str, value: list[str]) -> dict:
    return {"id": node_id, "op": "ft_const", "args": {"value": value}}


def test_read_file_reads_inside_the_directory_and_refuses_escapes(tmp_path: Path) -> None:
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    (work / "notes.txt").write_text("hello\nworld\n")
    (work / "bin.dat").write_bytes(b"ok \xff\xfe")
    (work / "big.txt").write_text("x" * 100)
    (outside / "secret.txt").write_text("not yours")
    (work / "link.txt").symlink_to(outside / "secret.txt")
    names = ["notes.txt", "bin.dat", "../outside/secret.txt", "link.txt",
             str(outside / "secret.txt"), "missing.txt", "big.txt"]  # fmt: skip
    nodes = [
        _const("name", names),
        {"id": "read", "op": "ft_read_file", "inputs": ["name"], "args": {"max_bytes": 50}},
    ]
    notes, binary, dotdot, link, absolute, missing, big = _run(nodes, "read", tmp_path, work)
    assert notes.status.ok and notes.text == "hello\nworld\n"
    assert binary.status.ok and binary.text == "ok \ufffd\ufffd"
    for refused in (dotdot, link, absolute):
        assert not refused.status.ok and "outside" in refused.text, refused
        assert "not yours" not in refused.text
    assert not missing.status.ok and "missing.txt" in missing.text
    assert not big.status.ok and "max_bytes=50" in big.text


def test_read_file_takes_the_directory_from_a_second_input(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("from a")
    nodes = [
        _const("name", ["f.txt", "f.txt"]),
        _const("dir", [str(tmp_path / "a"), str(tmp_path)]),
        {"id": "read", "op": "ft_read_file", "inputs": ["name", "dir"]},
    ]
    inside, elsewhere = _run(nodes, "read", tmp_path, None)
    assert inside.status.ok and inside.text == "from a"
    assert not elsewhere.status.ok
    [nowhere] = _run(
        [_const("n", ["f.txt"]), {"id": "r", "op": "ft_read_file", "inputs": ["n"]}],
        "r",
        tmp_path,
        None,
    )
    assert not nowhere.status.ok and "second input" in nowhere.text


def test_first_line_is_the_first_non_blank_line(tmp_path: Path) -> None:
    nodes = [
        _const("text", ["\n  \nls -la  \nthen this", "one", "\n \t\n"]),
        {"id": "first", "op": "ft_first_line", "inputs": ["text"]},
    ]
    found, single, blank = _run(nodes, "first", tmp_path, None)
    assert found.status.ok and found.text == "ls -la"
    assert single.text == "one"
    assert not blank.status.ok


def test_validate_ctrl_accepts_key_names_only(tmp_path: Path) -> None:
    texts = ["keys: C-c", "keys: Up Up Enter", "keys: c-x m-f", "keys: hello", "keys:", "ls -la"]
    nodes = [
        _const("text", texts),
        {
            "id": "ctrl",
            "op": "ft_validate_ctrl",
            "inputs": ["text"],
            "args": {"strip_prefix": "keys:"},
        },
    ]
    results = _run(nodes, "ctrl", tmp_path, None)
    assert [e.status.ok for e in results] == [True, True, True, False, False, False]
    assert results[1].meta["keys"] == ["Up", "Up", "Enter"]
    assert results[2].meta["keys"] == ["C-x", "M-f"]
    assert "'hello' is not a tmux key" in results[3].meta["error"]
    assert all(e.text == t for e, t in zip(results, texts, strict=True))  # passed through
