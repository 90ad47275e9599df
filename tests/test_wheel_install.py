"""A normal (non-editable) install, as a new user gets it: build the sdist and the wheel from a
copy of the checkout, install the wheel with pip into a fresh virtual environment, and run the
installed `mcp-harness` from another folder.

Offline: the wheel goes in with `--no-deps --no-index`, and the new environment then sees this
environment's dependencies through a `.pth` line. A plain path line does not run the `.pth` files
found there, so the editable install of this checkout stays invisible: each run proves that
`mcp_harness` is imported from the new environment's site-packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".cache", ".work", "build", "dist", "*.egg-info", "__pycache__", "*_cache"
)
# Variables that would let the installed CLI see this checkout or a paid kernel.
DROP = ("PYTHONPATH", "VIRTUAL_ENV", "MCP_HARNESS_DEBUG", "MCP_HARNESS_KERNEL", "ANTHROPIC_API_KEY")


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    assert done.returncode == 0, f"{args}: {done.stderr}"
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(checkout copy, dist dir with the sdist and the wheel, the build's stderr)."""
    src = tmp_path_factory.mktemp("src") / "mcp-harness"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE)
    dist = src.parent / "dist"
    stderr = ""
    for kind in ("sdist", "wheel"):  # one process each: setuptools keeps state between builds
        code = (
            f"import sys; from setuptools import build_meta; build_meta.build_{kind}(sys.argv[1])"
        )
        stderr += _run([sys.executable, "-c", code, str(dist)], cwd=src).stderr
    return src, dist, stderr


def _python(python: Path, code: str) -> str:
    """Run `code` with the venv's python outside the checkout (`-c` imports from the cwd)."""
    return _run([str(python), "-c", code], cwd=python.parent).stdout.strip()


def _install(wheel: Path, where: Path) -> Path:
    """A fresh venv at `where` with `wheel` installed (no index, no deps); its python."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    python = where / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    _run([*pip, "--no-index", str(wheel)])
    site = Path(_python(python, "import sysconfig; print(sysconfig.get_path('purelib'))"))
    outer = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "_outer_dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(outer)))
    return python


@pytest.fixture(scope="module")
def installed(built: tuple[Path, Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's bin dir, after checking that its mcp_harness is the installed wheel."""
    wheel = next(built[1].glob("*.whl"))
    python = _install(wheel, tmp_path_factory.mktemp("venv") / "v")
    code = (
        "import mcp_harness, sysconfig; print(mcp_harness.__file__, sysconfig.get_path('purelib'))"
    )
    imported, site = _python(python, code).split()
    assert Path(imported).is_relative_to(site), (imported, site)
    return python.parent


def _env(bin_dir: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROP}
    outer_bin = str(Path(sys.executable).parent)
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p != outer_bin]
    env.update(
        PATH=os.pathsep.join([str(bin_dir), *path]),
        HOME=str(tmp_path / "user"),
        MCP_HARNESS_HOME=str(tmp_path / "data"),
    )
    return env


def _cli(bin_dir: Path, tmp_path: Path, *args: str, ok: bool = True):
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    done = subprocess.run(
        [str(bin_dir / "mcp-harness"), *args],
        cwd=cwd,
        env=_env(bin_dir, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if ok:
        assert done.returncode == 0, f"{args}: {done.stderr}"
    return done


def test_sdist_and_wheel_ship_every_package_file(built: tuple[Path, Path, str]) -> None:
    src, dist, stderr = built
    assert "deprecat" not in stderr.lower(), stderr
    package = {
        p.relative_to(src).as_posix()
        for p in (src / "mcp_harness").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert {"mcp_harness/modules/coder/module.json", "mcp_harness/capture/prefix.c"} <= package
    assert any(p.startswith("mcp_harness/data/sample_projects/") for p in package)
    assert any(p.startswith("mcp_harness/modules/coder/seed/") for p in package)
    with zipfile.ZipFile(next(dist.glob("*.whl"))) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert {n for n in names if n.startswith("mcp_harness/")} == package
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    text = metadata.decode()
    assert "License-Expression: MIT" in text and "Project-URL: " in text
    assert 'Requires-Dist: anthropic>=0.40; extra == "anthropic"' in text
    assert "Requires-Dist: matplotlib" not in text.split("Provides-Extra")[0]
    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if m.isfile()}
    assert package | {"LICENSE", "README.md", "pyproject.toml"} <= members


def test_installed_cli_works_from_another_folder(installed: Path, tmp_path: Path) -> None:
    shown = _cli(installed, tmp_path, "module", "show", "coder").stdout
    assert "experience" in shown and "decision" in shown
    made = _cli(installed, tmp_path, "module", "new", "mine").stdout
    assert (tmp_path / "data" / "modules" / "mine" / "module.json").is_file(), made
    exported = _cli(installed, tmp_path, "export-skill", "coder", "--to", str(tmp_path / "sk"))
    assert (tmp_path / "sk" / "coder" / "SKILL.md").is_file(), exported.stdout


def test_installed_demo_runs(installed: Path, runtime: Path, tmp_path: Path) -> None:
    done = _cli(installed, tmp_path, "demo", "--kernel", "offline")
    assert "Harvested a recorded Claude Code session (9 Bash calls)" in done.stdout
    assert "Held-out success: 2/7 before training -> 7/7 after" in done.stdout


async def test_installed_server_lists_coder(installed: Path, runtime: Path, tmp_path: Path) -> None:
    (tmp_path / "cwd").mkdir()
    params = StdioServerParameters(
        command=str(installed / "mcp-harness"),
        args=["serve"],
        env=_env(installed, tmp_path),
        cwd=str(tmp_path / "cwd"),
    )
    async with Client(params, mode="legacy") as client:
        listed = await client.call_tool("module_list", {})
        assert not listed.is_error, listed.content
        names = [m["name"] for m in listed.structured_content["modules"]]
        assert "coder" in names
        shown = await client.call_tool("module_show", {"module": "coder"})
        assert not shown.is_error, shown.content


def test_missing_package_data_is_a_broken_install(
    built: tuple[Path, Path, str], tmp_path: Path
) -> None:
    python = _install(next(built[1].glob("*.whl")), tmp_path / "v")
    package = Path(_python(python, "import mcp_harness; print(mcp_harness.__file__)")).parent
    assert package.is_relative_to(tmp_path / "v"), package
    shutil.rmtree(package / "modules" / "coder")
    shutil.rmtree(package / "data" / "sample_projects")
    for args, missing in (
        (["module", "show", "coder"], "the built-in modules"),
        (["demo"], "the bundled sample session"),
    ):
        done = _cli(python.parent, tmp_path, *args, ok=False)
        assert done.returncode == 2, done.stderr
        assert f"broken mcp-harness install: {missing}" in done.stderr
        assert "pip install --force-reinstall --no-deps mcp-harness" in done.stderr
        assert "use one of" not in done.stderr and "--transcripts" not in done.stderr
