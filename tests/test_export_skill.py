"""`mcp-harness export-skill` and the `export_skill` MCP tool: the skill folder, its frontmatter
and limits, the launcher running the module for real (tmux), atomic re-export, bad input, and
the committed `skills/coder` export of the built-in."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mcp_harness.errors import HarnessError
from mcp_harness.experience.store import Experience
from mcp_harness.export.skill import (
    DESCRIPTION_LIMIT,
    export_skill,
    render_launcher,
    validate_frontmatter,
)
from mcp_harness.export.template import TEMPLATES
from mcp_harness.storage import swap

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).with_name("mcp-harness")
ALLOWED_TOOLS = "Bash(${CLAUDE_SKILL_DIR}/scripts/run.sh *)"
PORTABLE_KEYS = {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}


# ---- helpers ------------------------------------------------------------------------------------
def parse_skill_md(text: str) -> tuple[dict[str, Any], str]:
    """A tiny YAML frontmatter parser for what the exporter writes: one `key: value` per line,
    a value either a double-quoted (JSON-compatible) scalar or a plain scalar."""
    lines = text.split("\n")
    assert lines[0] == "---", "SKILL.md starts with the frontmatter fence"
    end = lines.index("---", 1)
    fields: dict[str, Any] = {}
    for line in lines[1:end]:
        key, sep, value = line.partition(": ")
        assert sep and key and key == key.strip() and " " not in key, f"not `key: value`: {line}"
        assert key not in fields, f"duplicate key {key}"
        if value.startswith('"'):
            fields[key] = json.loads(value)  # a YAML double-quoted scalar in JSON's subset
        else:
            assert value and not value.startswith(("'", "[", "{", "&", "*", "!", "|", ">"))
            assert " #" not in value and ": " not in value, f"plain scalar needs quoting: {line}"
            fields[key] = value
    return fields, "\n".join(lines[end + 1 :])


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    return subprocess.run(
        [str(BIN), *args],
        cwd=cwd,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def export_json(*args: str, **kw: Any) -> dict[str, Any]:
    done = cli("export-skill", *args, "--json", **kw)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def launcher_env(harness_home: Path, runtime: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_HARNESS", "TMUX"))}
    env.pop("ANTHROPIC_API_KEY", None)
    env["MCP_HARNESS_HOME"] = str(harness_home)
    if runtime is not None:
        env["MCP_HARNESS_RUNTIME_DIR"] = str(runtime)
    env.update(extra)
    return env


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# ---- the skill folder ---------------------------------------------------------------------------
def test_export_writes_a_valid_skill(harness_home: Path, tmp_path: Path) -> None:
    result = export_json("coder", "--to", str(tmp_path / "skills"))
    skill = tmp_path / "skills" / "coder"
    assert result["skill_dir"] == str(skill) and result["name"] == "coder"
    assert result["replaced"] is False
    assert result["experience"] == {"decision": 42, "command": 42}

    fields, body = parse_skill_md((skill / "SKILL.md").read_text())
    assert set(fields) == {"name", "description", "allowed-tools"} <= PORTABLE_KEYS
    assert fields["name"] == "coder"
    assert fields["allowed-tools"] == ALLOWED_TOOLS
    description = fields["description"]
    assert description == result["description"]
    assert len(description) + len(fields.get("when_to_use", "")) <= DESCRIPTION_LIMIT
    assert description.startswith("Works a terminal task in a real tmux session")  # what
    assert "Use when" in description and "--check" in description  # when, and how
    assert "\n" not in description
    assert len(body.splitlines()) < 500
    assert '${CLAUDE_SKILL_DIR}/scripts/run.sh "Make run.sh executable" --check' in body
    for heading in ("## Run it", "## What the result means", "## Requirements"):
        assert heading in body
    assert "PASS" in body and "FAIL" in body and "run files:" in body

    launcher = skill / "scripts" / "run.sh"
    assert launcher.stat().st_mode & stat.S_IXUSR
    assert launcher.read_text().startswith("#!/usr/bin/env bash\n")
    assert subprocess.run(["bash", "-n", str(launcher)]).returncode == 0

    names = {p.name for p in skill.rglob("*")}
    assert not names & {".lock", ".txn", "__pycache__"}, "no lock, journal or cache files"
    assert result["files"] == len(all_files(skill))
    module = skill / "module"
    source = harness_home / "modules" / "coder"
    assert (module / "module.json").read_text() == (source / "module.json").read_text()
    assert "# coder" in (module / "README.md").read_text()
    for name in ("decision", "command"):
        copied, original = (Experience.open(p / "experience" / name) for p in (module, source))
        assert len(copied) == 42
        assert [r.to_json() for r in copied.rows()] == [r.to_json() for r in original.rows()]
    assert ".lock" in (skill / ".gitignore").read_text()
    assert sorted(p.name for p in (tmp_path / "skills").iterdir()) == ["coder"], "no temp dirs"


def test_cli_text_output_and_default_targets(harness_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "CLAUDE_CONFIG_DIR"}
    env["HOME"] = str(home)
    done = cli("export-skill", "coder", cwd=project, env=env)
    assert done.returncode == 0, done.stderr
    assert f"exported skill 'coder' at {project / '.claude' / 'skills' / 'coder'}" in done.stdout
    assert (project / ".claude" / "skills" / "coder" / "SKILL.md").is_file()
    # no .claude here: the personal skills dir
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = export_json("coder", cwd=elsewhere, env=env)
    assert result["skill_dir"] == str(home / ".claude" / "skills" / "coder")
    # ... which Claude Code moves with CLAUDE_CONFIG_DIR
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "config")
    result = export_json("coder", "--name", "coder-two", cwd=elsewhere, env=env)
    assert result["skill_dir"] == str(tmp_path / "config" / "skills" / "coder-two")
    fields, _ = parse_skill_md(Path(result["skill_md"]).read_text())
    assert fields["name"] == "coder-two"


def test_long_description_is_kept_within_the_limit(harness_home: Path, tmp_path: Path) -> None:
    module = tmp_path / "wordy"
    assert cli("module", "new", "wordy", "--to", str(module)).returncode == 0
    spec = json.loads((module / "module.json").read_text())
    spec["description"] = "Does a very particular thing. " * 120  # ~3,600 characters
    (module / "module.json").write_text(json.dumps(spec))
    result = export_json(str(module), "--to", str(tmp_path / "skills"))
    fields, _ = parse_skill_md(Path(result["skill_md"]).read_text())
    assert len(fields["description"]) <= DESCRIPTION_LIMIT
    assert fields["description"].startswith("Does a very particular thing.")
    assert "Use when" in fields["description"], "the when-to-use part is never cut"

    with pytest.raises(HarnessError, match="1536"):
        validate_frontmatter({"name": "x", "description": "d" * 1000, "when_to_use": "w" * 537})
    validate_frontmatter({"name": "x", "description": "d" * 1000, "when_to_use": "w" * 536})


# ---- the launcher -------------------------------------------------------------------------------
def test_launcher_runs_the_module(harness_home: Path, runtime: Path, tmp_path: Path) -> None:
    skill = Path(export_json("coder", "--to", str(tmp_path / "skills"))["skill_dir"])
    work = tmp_path / "work"
    work.mkdir()
    run = [str(skill / "scripts" / "run.sh"), "Make", "a", "script", "executable"]
    env = launcher_env(harness_home, runtime, MCP_HARNESS_BIN=str(BIN))
    done = subprocess.run(
        [*run, "--check", "true", "--workdir", str(work)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[0] PASS confidence(1)")
    assert "chmod +x script.sh" in done.stdout, "the module's experience answered"
    assert "run files: " in done.stdout
    # it ran the skill's own copy (its experience lock is there, and .gitignore covers it)
    assert (skill / "module" / "experience" / "command" / ".lock").exists()

    # a moved copy works the same, finding mcp-harness on PATH; --json passes through
    moved = tmp_path / "moved" / "coder"
    shutil.copytree(skill, moved)
    env = launcher_env(harness_home, runtime, PATH=f"{BIN.parent}:/usr/bin:/bin")
    done = subprocess.run(
        [str(moved / "scripts" / "run.sh"), "--task=Make a script executable", "--json"],
        input="",
        env={**env, "PWD": str(work)},
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, "no check given"
    assert "missing --check: a shell command" in done.stderr and "fix:" in done.stderr
    done = subprocess.run(
        [
            *(str(moved / "scripts" / "run.sh"), "--task=Make a script executable", "--json"),
            *("--input", "check=test -d ."),
        ],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["elements"][0]["ok"] is True
    assert Path(report["run_dir"]).is_relative_to(harness_home)


def test_launcher_errors(harness_home: Path, tmp_path: Path) -> None:
    skill = Path(export_json("coder", "--to", str(tmp_path / "skills"))["skill_dir"])
    run = str(skill / "scripts" / "run.sh")

    def launch(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        full = launcher_env(harness_home, PATH="/usr/bin:/bin", **env)
        return subprocess.run([run, *args], env=full, capture_output=True, text=True, timeout=60)

    done = launch("--help")
    assert done.returncode == 0 and done.stdout.startswith('usage: run.sh "<task>" --check')
    assert "--workdir DIR" in done.stdout and "--kernel NAME" in done.stdout
    done = launch("Do it", "--check", "true")
    assert done.returncode == 127
    assert "mcp-harness not found" in done.stderr and "MCP_HARNESS_BIN" in done.stderr
    done = launch("Do it", "--check", "true", MCP_HARNESS_BIN=str(tmp_path / "nope"))
    assert done.returncode == 127 and "is not an executable" in done.stderr
    done = launch("Do it", "--bogus", MCP_HARNESS_BIN=str(BIN))
    assert done.returncode == 2 and "unknown option --bogus" in done.stderr
    done = launch("Do it", "--check", MCP_HARNESS_BIN=str(BIN))
    assert done.returncode == 2 and "--check needs a value" in done.stderr
    done = launch("--check", "true", MCP_HARNESS_BIN=str(BIN))
    assert done.returncode == 2 and "missing TASK" in done.stderr
    done = launch("Do it", "--task", "twice", "--check", "true", MCP_HARNESS_BIN=str(BIN))
    assert done.returncode == 2 and "given twice" in done.stderr
    # mcp-harness's own errors come through with their fix
    done = launch("Do it", "--check", "true", "--dim", "steps=x", MCP_HARNESS_BIN=str(BIN))
    assert done.returncode == 2 and "size must be an integer" in done.stderr


# ---- re-export and bad input --------------------------------------------------------------------
def test_launcher_template_and_exports_are_valid_bash(harness_home: Path, tmp_path: Path) -> None:
    """The template is bash as it stands (its block placeholders are comments), and so is
    every launcher filled from it, with inputs as options or none at all."""
    bare = tmp_path / "bare.sh"
    bare.write_text(render_launcher({"name": "bare", "inputs": {}}, "bare"))
    coder = export_skill("coder", tmp_path / "skills").launcher
    launchers = [TEMPLATES / "run.sh", bare, coder]
    for launcher in launchers:
        done = subprocess.run(["bash", "-n", str(launcher)], capture_output=True, text=True)
        assert done.returncode == 0, f"{launcher}: {done.stderr}"


def test_reexport_replaces_the_skill_atomically(harness_home: Path, tmp_path: Path) -> None:
    target = tmp_path / "skills"
    first = export_skill("coder", target)
    (first.skill_dir / "stale.txt").write_text("from an older export")
    stop = threading.Event()
    misses: list[str] = []

    def read() -> None:
        while not stop.is_set():
            try:
                (first.skill_md).read_text()
                (first.skill_dir / "module" / "module.json").read_text()
            except OSError as exc:
                misses.append(repr(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(5):
            again = export_skill("coder", target)
            assert again.replaced is True
    finally:
        stop.set()
        reader.join()
    assert misses == [], "a reader never sees the skill missing or half-written"
    assert not (first.skill_dir / "stale.txt").exists()
    assert [p.name for p in target.iterdir()] == ["coder"]


def test_reexport_without_rename_exchange(
    harness_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "skills"
    export_skill("coder", target)
    (target / "coder" / "stale.txt").write_text("old")
    monkeypatch.setattr(swap, "exchange", lambda a, b: False)
    assert export_skill("coder", target).replaced is True
    assert not (target / "coder" / "stale.txt").exists()
    assert [p.name for p in target.iterdir()] == ["coder"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "unknown module 'nosuch'"),
        (["./no/such/dir"], "not a module (no module.json)"),
        (["coder", "--name", "Bad_Name"], "skill name 'Bad_Name' (--name) must match"),
        (["coder", "--name", "a" * 65], "must match ^[a-z0-9-]{1,64}$"),
        (["coder", "--name", ""], "must match"),
        (["coder", "--to", "{file}/skills"], "cannot write the skill to"),
        (["coder", "--to", "{dir}"], "a non-empty directory without SKILL.md; not replacing"),
        (["{module}"], "skill name 'My_Mod' (the module name) must match"),
    ],
)
def test_bad_input_is_a_clear_error(
    harness_home: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "file").write_text("a regular file")
    keep = tmp_path / "dir" / "coder"
    keep.mkdir(parents=True)
    (keep / "notes.txt").write_text("mine")
    module = tmp_path / "My_Mod"
    assert cli("module", "new", "My_Mod", "--to", str(module)).returncode == 0
    filled = [a.format(file=tmp_path / "file", dir=tmp_path / "dir", module=module) for a in args]
    done = cli("export-skill", *filled, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "fix:" in done.stderr and "Traceback" not in done.stderr
    assert (keep / "notes.txt").read_text() == "mine", "nothing that is not a skill is replaced"
    assert not (tmp_path / "file" / "skills").exists()


def test_export_refuses_a_target_inside_the_module(harness_home: Path, tmp_path: Path) -> None:
    module = tmp_path / "mod"
    assert cli("module", "new", "mod", "--to", str(module)).returncode == 0
    with pytest.raises(HarnessError, match="inside the module being exported"):
        export_skill(str(module), module / "skills")


# ---- the MCP tool -------------------------------------------------------------------------------
async def test_export_skill_tool_over_stdio(harness_home: Path, tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    server = StdioServerParameters(
        command=str(BIN),
        args=["serve"],
        cwd=str(project),
        env={"MCP_HARNESS_HOME": str(harness_home), "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg")},
    )
    async with Client(server, mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        tool = tools["export_skill"]
        assert tool.annotations is not None and tool.annotations.destructive_hint is False
        assert set(tool.input_schema["properties"]) == {"module", "to", "name"}
        assert tool.input_schema["required"] == ["module"]

        result = await client.call_tool("export_skill", {"module": "coder"})
        assert not result.is_error, result.content
        out = result.structured_content
        assert out is not None
        assert out["skill_md"] == str(project / ".claude" / "skills" / "coder" / "SKILL.md")
        assert out["experience"] == {"decision": 42, "command": 42}
        assert "Skill tool" in out["next"]
        fields, _ = parse_skill_md(Path(out["skill_md"]).read_text())
        assert fields["name"] == "coder"

        result = await client.call_tool(
            "export_skill", {"module": "coder", "to": "skills", "name": "my-coder"}
        )
        assert not result.is_error and (project / "skills" / "my-coder" / "SKILL.md").is_file()
        result = await client.call_tool("export_skill", {"module": "coder", "name": "Bad Name"})
        assert result.is_error and "must match ^[a-z0-9-]{1,64}$" in result.content[0].text
        result = await client.call_tool("export_skill", {"module": "nosuch"})
        assert result.is_error and "unknown module 'nosuch'" in result.content[0].text
        outside = tmp_path / "outside"
        result = await client.call_tool("export_skill", {"module": "coder", "to": str(outside)})
        assert result.is_error and "outside the directories" in result.content[0].text
        assert not outside.exists()
        # the personal skills dir is always a valid target
        personal = tmp_path / "cfg" / "skills"
        result = await client.call_tool("export_skill", {"module": "coder", "to": str(personal)})
        assert not result.is_error and (personal / "coder" / "SKILL.md").is_file()


# ---- the committed exports of the built-in (the repo's skills/, the plugin's skills/) ------------
@pytest.mark.parametrize("skills", ["skills", "adapters/claude_code/skills"])
def test_repo_skill_is_a_current_export_of_the_builtin(
    harness_home: Path, tmp_path: Path, skills: str
) -> None:
    committed = REPO / skills / "coder"
    assert (committed / "SKILL.md").is_file(), (
        f"export it: mcp-harness export-skill coder --to {skills}"
    )
    fresh = export_skill("coder", tmp_path / "skills").skill_dir  # from a fresh data home
    relative = [p.relative_to(committed) for p in all_files(committed)]
    assert relative == [p.relative_to(fresh) for p in all_files(fresh)]
    for rel in relative:
        if rel.name != "rows.jsonl":  # provenance timestamps differ between exports
            assert (committed / rel).read_bytes() == (fresh / rel).read_bytes(), rel
    assert os.access(committed / "scripts" / "run.sh", os.X_OK)
    machine = [str(REPO), str(Path.home()), "/tmp/", "/work/", "/root/", "/home/"]
    for path in all_files(committed):
        text = path.read_text(encoding="utf-8")
        leaked = [m for m in machine if m in text]
        assert not leaked, f"{path.relative_to(REPO)} holds machine paths {leaked}"
