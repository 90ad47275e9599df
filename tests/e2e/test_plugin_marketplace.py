"""The repository is a Claude Code plugin marketplace: the real CLI adds it (as a GitHub
`owner/repo`, served from a local bare clone through git's `insteadOf`, and as a local path),
installs `mcp-harness@mcp-harness` with its coder skill, and `claude mcp list` connects the
plugin's MCP server through `bin/mcp-harness`, which finds the installed mcp-harness on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mcp_harness.terminal.pool import shutdown
from tests.e2e.conftest import REPO

MARKETPLACE = "mcp-harness"
PLUGIN = f"mcp-harness@{MARKETPLACE}"
GITHUB = "someone/mcp-harness"  # what users type; the clone comes from a local bare repo


def github_mirror(tmp_path: Path) -> Path:
    """A bare git repo of this working tree's marketplace files, where git (told by
    `~/.gitconfig`) fetches `https://github.com/someone/mcp-harness.git` from."""
    source = tmp_path / "source"
    skip = shutil.ignore_patterns("__pycache__", ".lock", ".txn")
    for part in (".claude-plugin", "adapters"):
        shutil.copytree(REPO / part, source / part, ignore=skip)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(source)]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "mkt"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    mirrors = tmp_path / "mirrors"
    bare = mirrors / f"{GITHUB}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True)
    return mirrors


@pytest.mark.parametrize("how", ["github", "path"])
def test_marketplace_add_install_and_connect(claude_bin: Path, tmp_path: Path, how: str) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    runtime = Path(tempfile.mkdtemp(prefix="mh-mkt-", dir="/tmp"))
    drop = ("CLAUDE", "ANTHROPIC", "MCP_HARNESS", "TMUX", "GIT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        HOME=str(home),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        MCP_HARNESS_HOME=str(tmp_path / "harness"),
        MCP_HARNESS_RUNTIME_DIR=str(runtime),
    )
    if how == "github":
        mirrors = github_mirror(tmp_path)
        (home / ".gitconfig").write_text(
            f'[url "file://{mirrors}/"]\n\tinsteadOf = https://github.com/\n'
            "\tinsteadOf = git@github.com:\n"
        )
        source = GITHUB
    else:
        source = str(REPO)

    def claude(*args: str) -> str:
        done = subprocess.run(
            [str(claude_bin), *args], env=env, cwd=project, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"claude {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    try:
        assert "Validation passed" in claude("plugin", "validate", str(REPO))
        added = claude("plugin", "marketplace", "add", source)
        assert f"Successfully added marketplace: {MARKETPLACE}" in added
        assert f"Successfully installed plugin: {PLUGIN}" in claude("plugin", "install", PLUGIN)
        installed = home / ".claude" / "plugins" / "installed_plugins.json"
        [entry] = json.loads(installed.read_text())["plugins"][PLUGIN]
        cached = Path(entry["installPath"])
        assert (cached / "skills" / "coder" / "SKILL.md").is_file()  # a copy, not a link out
        assert (cached / "skills" / "coder" / "module" / "module.json").is_file()
        assert "Skills (1)  coder" in claude("plugin", "details", PLUGIN)
        listed = claude("mcp", "list")
        [line] = [ln for ln in listed.splitlines() if ln.startswith("plugin:mcp-harness:harness:")]
        assert line.endswith("✔ Connected"), listed
        if how == "github":  # installed from git: Claude Code runs the cached copy
            assert f"{cached}/bin/mcp-harness serve" in line
    finally:
        shutdown(runtime)
        shutil.rmtree(runtime, ignore_errors=True)
