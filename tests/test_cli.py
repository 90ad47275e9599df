"""The CLI as users run it: the installed `mcp-harness` script in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = shutil.which("mcp-harness", path=str(Path(sys.executable).parent)) or "mcp-harness"


def cli(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MCP_HARNESS_HOME": str(home)}
    env.pop("MCP_HARNESS_DEBUG", None)
    done = subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed ({done.returncode}): {done.stderr}")
    return done


def test_help_does_not_import_torch(harness_home: Path) -> None:
    probe = (
        "import sys; from mcp_harness.cli.main import main\n"
        "for argv in (['--help'], ['experience', 'stats', 'x', '--help']):\n"
        "    try: main(argv)\n"
        "    except SystemExit: pass\n"
        "main(['paths']); main(['experience', 'new', 'fast'])\n"
        "main(['experience', 'search', 'fast', 'git'])\n"
        "main(['module', 'validate', 'coder']); main(['kernels'])\n"
        "print('torch' in sys.modules)"
    )
    env = {**os.environ, "MCP_HARNESS_HOME": str(harness_home)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_paths_follow_mcp_harness_home(harness_home: Path) -> None:
    paths = json.loads(cli("paths", "--json", home=harness_home).stdout)
    assert paths["home"] == str(harness_home)
    assert paths["experience"] == str(harness_home / "experience")


def test_paths_default_to_xdg(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MCP_HARNESS_HOME"}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    out = subprocess.run([SCRIPT, "paths", "--json"], env=env, capture_output=True, text=True)
    assert json.loads(out.stdout)["home"] == str(tmp_path / "xdg" / "mcp-harness")


def test_experience_workflow(harness_home: Path, tmp_path: Path) -> None:
    cli("experience", "new", "shell", home=harness_home)
    assert (harness_home / "experience" / "shell" / "shape").read_text() == "[0, 3]"
    empty = json.loads(
        cli("experience", "search", "shell", "git", "--json", home=harness_home).stdout
    )
    assert empty == {"query": "git", "empty": True, "hits": []}
    assert (
        "the experience is empty"
        in cli("experience", "search", "shell", "git", home=harness_home).stdout
    )

    added = json.loads(
        cli(
            "experience",
            "add",
            "shell",
            "list all files with sizes",
            "ls -la",
            "--field",
            "exit_code=0",
            "--json",
            home=harness_home,
        ).stdout
    )
    assert added["row"] == 0 and added["query"] == "list\nfiles\nsizes"
    assert added["provenance"]["exit_code"] == "0"

    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps({"key": "show git status", "value": "git status", "session": "s1"})
        + "\n"
        + json.dumps(["docker\ncontainers", "list running containers", "docker ps"])
        + "\n"
    )
    summary = json.loads(
        cli("experience", "import-jsonl", "shell", str(rows), "--json", home=harness_home).stdout
    )
    assert summary == {"added": 2, "first_row": 1, "rows": 3}

    hits = json.loads(
        cli(
            "experience",
            "search",
            "shell",
            "what is the git status?",
            "-k",
            "2",
            "--method",
            "bm25",
            "--json",
            home=harness_home,
        ).stdout
    )["hits"]
    assert [h["value"] for h in hits] == ["git status"]
    assert hits[0]["provenance"]["session"] == "s1"
    assert hits[0]["provenance"]["source"] == "rows.jsonl"

    shown = json.loads(cli("experience", "show", "shell", "2", "--json", home=harness_home).stdout)
    assert shown[0]["value"] == "docker ps"
    text = cli("experience", "show", "shell", home=harness_home).stdout
    assert "3 rows" in text and "value: docker ps" in text

    cli(
        "experience",
        "edit",
        "shell",
        "2",
        "--value",
        "docker ps -a",
        "--weight",
        "0.5",
        home=harness_home,
    )
    stats = json.loads(cli("experience", "stats", "shell", "--json", home=harness_home).stdout)
    assert stats["rows"] == 3
    assert stats["sources"] == {"manual": 1, "rows.jsonl": 2}
    cli("experience", "delete", "shell", "0", home=harness_home)
    shown = json.loads(cli("experience", "show", "shell", "--json", home=harness_home).stdout)
    assert [r["value"] for r in shown] == ["git status", "docker ps -a"]
    assert shown[1]["weight"] == 0.5


def test_experience_by_path(tmp_path: Path, harness_home: Path) -> None:
    target = tmp_path / "elsewhere" / "exp"
    cli("experience", "new", str(target), home=harness_home)
    cli("experience", "add", str(target), "make the build", "make -j4", home=harness_home)
    assert (target / "storage" / "2" / "data").read_text() == "make -j4"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["experience", "search", "missing", "git"], "no experience here"),
        (["experience", "show", "shell", "7"], "row 7 does not exist"),
        (["experience", "add", "shell", "k", "v", "--field", "oops"], "is not NAME=VALUE"),
        (["experience", "search", "shell", "git", "--noise", "0.3"], "needs an explicit seed"),
        (["experience", "new", "shell"], "an experience already exists here"),
        (["experience", "edit", "shell", "0"], "nothing to change"),
    ],
)
def test_bad_input_gets_a_message_not_a_traceback(
    harness_home: Path, args: list[str], message: str
) -> None:
    cli("experience", "new", "shell", home=harness_home)
    done = cli(*args, home=harness_home, check=False)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "fix:" in done.stderr


def test_bad_jsonl_is_rejected_whole(harness_home: Path, tmp_path: Path) -> None:
    cli("experience", "new", "shell", home=harness_home)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"key": "a", "value": "b"}\n["only", "two"]\n')
    done = cli("experience", "import-jsonl", "shell", str(rows), home=harness_home, check=False)
    assert done.returncode == 2
    assert f"{rows}:2: an experience row needs 3 cells" in done.stderr
    stats = json.loads(cli("experience", "stats", "shell", "--json", home=harness_home).stdout)
    assert stats["rows"] == 0


def test_corrupt_experience_is_named(harness_home: Path) -> None:
    cli("experience", "new", "shell", home=harness_home)
    (harness_home / "experience" / "shell" / "shape").write_text("[2, 3")
    done = cli("experience", "stats", "shell", home=harness_home, check=False)
    assert done.returncode == 2 and "shape is not valid JSON" in done.stderr


def test_demo_runs_offline(harness_home: Path, tmp_path: Path) -> None:
    env_extra = {"MCP_HARNESS_RUNTIME_DIR": str(tmp_path / "rt")}
    done = subprocess.run(
        [SCRIPT, "demo", "--keep", str(tmp_path / "demo")],
        env={**os.environ, "MCP_HARNESS_HOME": str(harness_home), **env_extra},
        capture_output=True,
        text=True,
        timeout=300,
    )
    from mcp_harness.terminal.pool import shutdown

    shutdown(tmp_path / "rt")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Harvested a recorded Claude Code session (9 Bash calls)" in out
    # The session fixed run.sh with `chmod +x run.sh`: adapted (not replayed) before training.
    assert "[PASS] Make the release.sh script executable" in out
    assert "[FAIL] Add a directory named assets here" in out  # reworded: not before training
    assert "Report: 2/7 tasks passed their validator" in out
    assert "steps 1: chmod +x release.sh" in out
    assert "chmod +x deploy.sh" not in out and "chmod +x run.sh" not in out
    assert "Held-out success: 2/7 before training -> 7/7 after (+71 points)." in out
    assert "Protocol: train: 2 instances per family" in out
    work = tmp_path / "demo" / "work"
    assert any((run / "assets").is_dir() for run in work.iterdir())  # it ran in a terminal
    assert (tmp_path / "demo" / "train-steps.jsonl").is_file()
    assert not (harness_home / "experience").exists()  # the demo keeps to its own data dir


def test_every_help_ends_with_an_example_that_parses() -> None:
    import shlex

    from mcp_harness.cli.examples import EXAMPLES, parsers
    from mcp_harness.cli.main import build_parser

    tree = dict(parsers(build_parser()))
    assert set(tree) == set(EXAMPLES)
    for path, parser in tree.items():
        assert f"example: {EXAMPLES[path]}" in " ".join(parser.format_help().split()), path
        words = shlex.split(EXAMPLES[path])
        args = build_parser().parse_args(words[words.index("mcp-harness") + 1 :])
        assert path in " ".join(words), path
        assert callable(args.run)
    assert tree["demo"].description and tree["paths"].description


def test_harvest_with_nothing_says_where_it_looked(harness_home: Path, tmp_path: Path) -> None:
    (tmp_path / "projects").mkdir()
    done = cli("harvest", "--transcripts", str(tmp_path / "projects"), home=harness_home)
    assert (
        f"nothing to harvest: no Bash calls in {harness_home / 'capture'} or the Claude Code "
        f"transcripts under {tmp_path / 'projects'}"
    ) in done.stdout
    assert "mcp-harness capture install" in done.stdout


BLOCK = "import sys\nfor name in sys.argv[1:]: sys.modules[name] = None  # as if not installed\n"


def test_missing_optional_packages_name_their_extra(harness_home: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MCP_HARNESS_HOME": str(harness_home), "ANTHROPIC_API_KEY": "x"}
    kernels = BLOCK + "from mcp_harness.cli.main import main\nmain(['kernels'])\n"
    done = subprocess.run(
        [sys.executable, "-c", kernels, "anthropic", "openai"],
        env={**env, "OPENAI_API_KEY": "x"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "anthropic kernel needs the `anthropic` Python package" in done.stdout
    assert "pip install 'mcp-harness[anthropic]'" in done.stdout
    assert "pip install 'mcp-harness[openai]'" in done.stdout
    plot = BLOCK + (
        "from pathlib import Path\nfrom mcp_harness.errors import HarnessError\n"
        "from mcp_harness.training.plot import plot_history\n"
        f"try: plot_history({{'epochs': []}}, Path({str(tmp_path / 'p.png')!r}))\n"
        "except HarnessError as exc: print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", plot, "matplotlib"], env=env, capture_output=True, text=True
    )
    assert "matplotlib is not installed" in done.stdout, done.stderr
    assert "pip install 'mcp-harness[plot]'" in done.stdout


@pytest.mark.parametrize(
    ("args", "message", "fix"),
    [
        (["demo"], "the demo runs its tasks in tmux, which is not installed", "apt-get install"),
        (["capture", "prefix-path"], "no C compiler found", "apt-get install gcc"),
    ],
)
def test_missing_system_tools_get_one_message(
    harness_home: Path, tmp_path: Path, args: list[str], message: str, fix: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CC"}
    env.update(PATH=str(tmp_path), MCP_HARNESS_HOME=str(harness_home))  # no tmux, no cc
    done = subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"mcp-harness: error: {message}") and fix in done.stderr
    assert done.stdout == ""
