"""The plugin's launchers find an installed mcp-harness: `mcp-harness` on PATH (never a plugin's
own launcher), then pipx's bin, then a checkout's `.venv`; with none, `bin/mcp-harness` names
what to install and the hook stays silent and successful."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO

PLUGIN = REPO / "adapters" / "claude_code"
BASH = shutil.which("bash") or "/bin/bash"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the plugin at `<checkout>/adapters/claude_code`, as in the repository."""
    target = tmp_path / "checkout" / "adapters" / "claude_code"
    shutil.copytree(PLUGIN, target, ignore=shutil.ignore_patterns("skills"))
    return target


def fake(path: Path, label: str, log: Path) -> Path:
    """An `mcp-harness` console script whose "Python" logs its label, argv and stdin."""
    python = path.parent / f"python-{label}"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text(f'#!/bin/sh\necho "{label} $*" >> "{log}"\ncat >> "{log}"\n')
    path.write_text(f"#!{python}\n# console script\n")
    for script in (python, path):
        script.chmod(0o755)
    return path


def launch(plugin: Path, name: str, home: Path, path: list[Path], stdin: str = ""):
    env = {"PATH": os.pathsep.join(map(str, path)), "HOME": str(home)}
    return subprocess.run(
        [BASH, str(plugin / "bin" / name), *(["serve"] if name == "mcp-harness" else [])],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("have", "expect"),
    [
        ({"path", "pipx", "venv"}, "path"),
        ({"pipx", "venv"}, "pipx"),
        ({"venv"}, "venv"),
    ],
)
def test_lookup_order(checkout: Path, tmp_path: Path, have: set[str], expect: str) -> None:
    log, home = tmp_path / "log", tmp_path / "home"
    places = {
        "path": tmp_path / "installed" / "bin" / "mcp-harness",
        "pipx": home / ".local" / "bin" / "mcp-harness",
        "venv": checkout.parent.parent / ".venv" / "bin" / "mcp-harness",
    }
    for label in have:
        fake(places[label], label, log)
    # the plugin's own bin/ comes first on PATH (Claude Code puts it there): it is skipped
    path = [checkout / "bin", places["path"].parent, Path("/usr/bin"), Path("/bin")]
    done = launch(checkout, "mcp-harness", home, path)
    assert done.returncode == 0, done.stderr
    label, script, arg = log.read_text().splitlines()[0].split(" ")
    assert (label, Path(script).resolve(), arg) == (expect, places[expect].resolve(), "serve")

    log.unlink()
    payload = json.dumps({"hook_event_name": "SessionStart"})
    hooked = launch(checkout, "mcp-harness-hook", home, path, payload)
    assert (hooked.returncode, hooked.stdout, hooked.stderr) == (0, "", "")
    assert log.read_text() == f"{expect} -I -m mcp_harness.capture.hooks\n{payload}"


def test_nothing_installed(checkout: Path, tmp_path: Path) -> None:
    path = [checkout / "bin", Path("/usr/bin"), Path("/bin")]
    done = launch(checkout, "mcp-harness", tmp_path / "home", path)
    assert done.returncode == 127 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert "pipx install mcp-harness" in line and "pip install mcp-harness" in line
    assert "torch==2.13.0" in line and "cpu" in line
    hooked = launch(checkout, "mcp-harness-hook", tmp_path / "home", path, "{}")
    assert (hooked.returncode, hooked.stdout, hooked.stderr) == (0, "", "")
