"""`mcp-harness module …` and `kernels` as users run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = str(Path(sys.executable).parent / "mcp-harness")


def cli(*args: str, home: Path, runtime: Path | None = None, check: bool = True):
    env = {**os.environ, "MCP_HARNESS_HOME": str(home)}
    env.pop("ANTHROPIC_API_KEY", None)
    env.pop("MCP_HARNESS_KERNEL", None)
    if runtime is not None:
        env["MCP_HARNESS_RUNTIME_DIR"] = str(runtime)
    done = subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_builtin_coder_validates_and_shows(harness_home: Path) -> None:
    out = cli("module", "validate", "coder", home=harness_home).stdout
    assert out.startswith("ok: coder — ") and "output 'result' shape [1]" in out
    assert (harness_home / "modules" / "coder" / "module.json").is_file()  # materialised copy
    shown = json.loads(cli("module", "show", "coder", "--json", home=harness_home).stdout)
    ops = {n["id"]: n["op"] for n in shown["nodes"]}
    assert ops["decision"] == ops["command"] == "ft_expert"
    assert ops["acted"] == "ft_switch" and ops["result"] == "ft_recurrent"
    assert shown["experience"]["command"]["rows"] == 42
    assert "ft_tmux_run" in cli("module", "show", "coder", home=harness_home).stdout


def test_run_coder_on_a_task(harness_home: Path, runtime: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = cli(
        "module",
        "run",
        "coder",
        "--input",
        "task=Make a script executable",
        "--input",
        f"workdir={work}",
        "--input",
        "check=true",
        "--json",
        home=harness_home,
        runtime=runtime,
    )
    result = json.loads(done.stdout)
    assert result["elements"][0]["ok"] is True
    assert Path(result["run_dir"], "command", "shape").is_file()  # the run's elements on disk


def test_new_module_from_template(harness_home: Path, tmp_path: Path) -> None:
    cli("module", "new", "mine", "--to", str(tmp_path / "mine"), home=harness_home)
    assert "ok: mine" in cli("module", "validate", str(tmp_path / "mine"), home=harness_home).stdout


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["module", "validate", "nosuch"], "unknown module 'nosuch'"),
        (
            "broken-json",
            ["module", "validate", "{dir}"],
            "module.json:1: graph spec is not valid JSON",
        ),
        ("bad-op", ["module", "validate", "{dir}"], "unknown op 'ft_bogus'"),
        ("no-experience", ["module", "validate", "{dir}"], "experience 'command' is missing"),
        (None, ["module", "run", "coder", "--input", "oops"], "is not NAME=VALUE"),
        (
            None,
            ["module", "run", "coder", "--input", "task=x"],
            "needs inputs ['check', 'workdir']",
        ),
        (
            None,
            ["module", "run", "coder", "--kernel", "nope", "--input", "task=x"],
            "unknown kernel 'nope'",
        ),
    ],
)
def test_bad_input_is_named(harness_home: Path, tmp_path: Path, setup, args, message) -> None:
    directory = tmp_path / "mod"
    if setup:
        cli("module", "new", "m", "--to", str(directory), home=harness_home)
        spec_file = directory / "module.json"
        if setup == "broken-json":
            spec_file.write_text("{nope")
        elif setup == "bad-op":
            spec = json.loads(spec_file.read_text())
            spec["nodes"][0]["op"] = "ft_bogus"
            spec_file.write_text(json.dumps(spec))
        else:
            import shutil

            shutil.rmtree(directory / "experience" / "command")
    done = cli(*[a.replace("{dir}", str(directory)) for a in args], home=harness_home, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_kernels_lists_usability(harness_home: Path) -> None:
    out = cli("kernels", "--json", home=harness_home).stdout
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["offline"]["usable"] is True
    assert rows["anthropic"]["usable"] is False
    assert "ANTHROPIC_API_KEY" in rows["anthropic"]["reason"]
