"""Export a harness module as a Claude Code skill.

```
<dir>/<name>/
  SKILL.md          YAML frontmatter (name, description, allowed-tools) + how to run it
  scripts/run.sh    the launcher: finds mcp-harness, runs `module run <skill dir>/module`
  module/           a copy of the module: module.json, README.md, experience/<name>/
  .gitignore        the lock/journal files a run creates beside the experience
```
The frontmatter keeps to the portable subset (`name`, `description`, `allowed-tools`), so the
same folder works in Claude Code, claude.ai and the Skills API. Claude Code lists a skill by its
description (cut at 1,536 characters together with `when_to_use`) and expands
`${CLAUDE_SKILL_DIR}` in the body and in `allowed-tools`.

Re-exporting replaces the skill at once: everything is written to a temp dir beside the target,
then swapped in (`storage.swap`). Experience is copied under its writer lock, without lock files
or commit journals; a pool experience becomes a file copy of its rows inside the skill. The
launcher, the SKILL.md body and the module README are `templates/`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.export.template import fill_template
from mcp_harness.redaction import redact

NAME_PATTERN = re.compile(r"^[a-z0-9-]{1,64}$")
DESCRIPTION_LIMIT = 1536  # description + when_to_use, as Claude Code's skill listing cuts it
BODY_LINE_LIMIT = 500
SKILL_FILE = "SKILL.md"
LAUNCHER = "scripts/run.sh"
MODULE_DIR = "module"
ALLOWED_TOOLS = "Bash(${CLAUDE_SKILL_DIR}/scripts/run.sh *)"
# never copied: writer locks, commit journals, caches, VCS data
_SKIP_NAMES = {".lock", ".txn", "__pycache__", ".git", ".DS_Store"}
_EXPERIENCE_CACHES = {"index.bin", "generation"}  # remade beside the copy when it is opened
_SKIP_SUFFIXES = (".lock", ".pyc", ".tmp")
# options of `module run` the launcher passes through (an input cannot take these names)
_RUN_OPTIONS = ("input", "kernel", "dim", "timeout")
_RESERVED = {*_RUN_OPTIONS, "inputs", "json", "help", "h"}
_OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_KNOWN_INPUTS = {
    "task": 'what to do, in plain words (e.g. "Make run.sh executable")',
    "check": (
        "a shell command, run in the work directory, that exits 0 once the task is done "
        '(e.g. "test -x run.sh")'
    ),
    "workdir": "the directory to work in (default: the current directory)",
}


@dataclass
class ExportedSkill:
    """What one export wrote."""

    name: str
    skill_dir: Path
    module: Path
    description: str
    replaced: bool
    experience: dict[str, int] = field(default_factory=dict)
    files: int = 0

    @property
    def skill_md(self) -> Path:
        return self.skill_dir / SKILL_FILE

    @property
    def launcher(self) -> Path:
        return self.skill_dir / LAUNCHER

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "skill_dir": str(self.skill_dir),
            "skill_md": str(self.skill_md),
            "launcher": str(self.launcher),
            "module": str(self.module),
            "description": self.description,
            "replaced": self.replaced,
            "experience": dict(self.experience),
            "files": self.files,
        }


# ---- where and under which name ------------------------------------------------------------------
def default_target(cwd: Path | None = None) -> Path:
    """`<cwd>/.claude/skills` when cwd has a `.claude` dir (a project skill), else the personal
    skills dir `~/.claude/skills` (`$CLAUDE_CONFIG_DIR/skills` when that is set, as Claude Code
    reads it)."""
    base = Path.cwd() if cwd is None else cwd
    if (base / ".claude").is_dir():
        return (base / ".claude" / "skills").absolute()
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    root = Path(config).expanduser() if config else Path.home() / ".claude"
    return (root / "skills").absolute()


def check_name(name: str, *, given: bool = True) -> str:
    """A skill name: 1-64 characters of `a-z`, `0-9` and `-` (it is also the directory name)."""
    if NAME_PATTERN.match(name):
        return name
    suggestion = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:64] or "my-skill"
    where = "--name" if given else "the module name"
    raise HarnessError(
        f"skill name {name!r} ({where}) must match ^[a-z0-9-]{{1,64}}$",
        f"use lowercase letters, digits and '-', e.g. --name {suggestion}",
    )


# ---- the export --------------------------------------------------------------------------------
def export_skill(
    module: str, to: str | Path | None = None, name: str | None = None
) -> ExportedSkill:
    """Export `module` (a name or a module directory) as `<to>/<name>/` (see the module doc)."""
    from mcp_harness.runtime import module as modules

    if name is not None:
        check_name(name)
    if not isinstance(module, str) or not module.strip():
        raise HarnessError("no module given", "name a module (e.g. coder) or a module directory")
    loaded = modules.load(module)
    try:
        return _export(loaded, to, name)
    finally:
        loaded.close()


def _export(loaded: Any, to: str | Path | None, name: str | None) -> ExportedSkill:
    from mcp_harness.storage.swap import swap_in  # ctypes: not at the top (see _copy_module)

    skill_name = name if name is not None else check_name(loaded.name, given=False)
    target = Path(to).expanduser().absolute() if to is not None else default_target()
    source = loaded.path.resolve()
    if target.resolve() == source or source in target.resolve().parents:
        raise HarnessError(
            f"{target}: inside the module being exported ({source})",
            "export to a directory outside the module",
        )
    final = target / skill_name
    _check_replaceable(final)
    try:
        target.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{skill_name}.export-", dir=target))
    except OSError as exc:
        raise HarnessError(
            f"cannot write the skill to {target}: {exc.strerror or exc}",
            "choose a writable directory with --to (or `to` in the tool call)",
        ) from None
    try:
        rows = _copy_module(loaded, staged / MODULE_DIR)
        description = build_description(loaded.spec, skill_name, rows)
        body = render_body(loaded.spec, skill_name, rows, loaded.graph().describe())
        frontmatter = {"name": skill_name, "description": description}
        validate_frontmatter(frontmatter)
        validate_body(body)
        skill_md = render_frontmatter({**frontmatter, "allowed-tools": ALLOWED_TOOLS}) + body
        (staged / SKILL_FILE).write_text(skill_md, encoding="utf-8")
        launcher = staged / LAUNCHER
        launcher.parent.mkdir()
        launcher.write_text(render_launcher(loaded.spec, skill_name), encoding="utf-8")
        launcher.chmod(0o755)
        (staged / ".gitignore").write_text(fill_template("gitignore"), encoding="utf-8")
        _redact_copy(staged, staged / MODULE_DIR)
        files = sum(1 for p in staged.rglob("*") if p.is_file())
        staged.chmod(0o755)
        replaced = swap_in(staged, final)
    except OSError as exc:
        raise HarnessError(
            f"cannot write the skill to {final}: {exc.strerror or exc}",
            "check free space and permissions of the target, or choose another with --to",
        ) from None
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    return ExportedSkill(skill_name, final, source, description, replaced, rows, files)


def _check_replaceable(final: Path) -> None:
    """Only a skill (a dir with SKILL.md) or an empty dir may be replaced: nothing else is lost."""
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise HarnessError(
            f"{final}: exists and is not a skill directory",
            "choose another --name or --to, or move it away",
        )
    if final.is_dir() and not (final / SKILL_FILE).is_file() and any(final.iterdir()):
        raise HarnessError(
            f"{final}: a non-empty directory without {SKILL_FILE}; not replacing it",
            "choose another --name or --to, or move it away",
        )


def _skip(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in _SKIP_NAMES or n.endswith(_SKIP_SUFFIXES)}


def _copy_module(loaded: Any, destination: Path) -> dict[str, int]:
    """Copy the module dir; each experience under its writer lock (after finishing any
    interrupted commit), so the copy holds whole commits only. Returns rows per experience."""
    import filelock  # here, not at the top: the server imports this module at start

    from mcp_harness.experience.transfer import snapshot
    from mcp_harness.storage.transaction import recover

    root = loaded.path.resolve()
    files = {n: e for n, e in loaded.experience.items() if isinstance(e.path, Path)}
    experience_dirs = {exp.path.resolve(): name for name, exp in files.items()}

    def skip(directory: str, names: list[str]) -> set[str]:
        here = Path(directory).resolve()
        return _skip(directory, names) | {n for n in names if here / n in experience_dirs}

    shutil.copytree(root, destination, ignore=skip)
    spec_path = destination / "module.json"
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    moved = False
    rows: dict[str, int] = {}
    for path, name in experience_dirs.items():
        if root in path.parents:
            copy_to = destination / path.relative_to(root)
        else:  # experience kept outside the module: bring it in
            copy_to = destination / "experience" / name
            spec.setdefault("experience", {})[name] = f"experience/{name}"
            moved = True
        with filelock.FileLock(str(path / ".lock")):
            recover(path)
            shutil.copytree(
                path, copy_to, ignore=lambda d, names: _skip(d, names) | _EXPERIENCE_CACHES
            )
        rows[name] = len(loaded.experience[name])
    for name, store in loaded.experience.items():
        if name not in files:  # a pool experience: the skill carries a file copy of its rows
            copy_to = snapshot(store, destination / "experience" / name)
            for cache in _EXPERIENCE_CACHES:
                (copy_to / cache).unlink(missing_ok=True)
            spec.setdefault("experience", {})[name] = f"experience/{name}"
            moved = True
            rows[name] = len(store)
    if moved:
        spec_path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    readme = destination / "README.md"
    if not readme.exists():
        readme.write_text(render_module_readme(spec, rows), encoding="utf-8")
    return rows


def _redact_copy(staged: Path, module_copy: Path) -> None:
    """Redact secrets in the skill's text files (SKILL.md, the launcher, module.json and any
    other module file) before they leave; experience copies were redacted when stored."""
    spec = json.loads((module_copy / "module.json").read_text(encoding="utf-8"))
    experience = [module_copy / str(p) for p in spec.get("experience", {}).values()]
    for path in staged.rglob("*"):
        if not path.is_file() or any(path.is_relative_to(e) for e in experience):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        clean = redact(text)
        if clean != text:
            path.write_text(clean, encoding="utf-8")


# ---- SKILL.md ------------------------------------------------------------------------------------
def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def _option_inputs(spec: dict[str, Any]) -> list[str]:
    """Module inputs the launcher offers as `--NAME VALUE` (others go through `--input`)."""
    return [
        n for n in spec.get("inputs", {}) if _OPTION_NAME.match(n) and n.lower() not in _RESERVED
    ]


def _metavar(input_name: str) -> str:
    return {"workdir": "DIR", "check": "CMD", "task": "TEXT"}.get(input_name, "VALUE")


def usage_line(spec: dict[str, Any]) -> str:
    """`scripts/run.sh "<task>" --check "<command>" [--workdir DIR]` for this module's inputs."""
    options = _option_inputs(spec)
    parts = ["scripts/run.sh"]
    if "task" in options:
        parts.append('"<task>"')
    for input_name in options:
        if input_name == "check":
            parts.append('--check "<command>"')
        elif input_name not in ("task", "workdir"):
            parts.append(f"--{input_name} VALUE")
    if "workdir" in options:
        parts.append("[--workdir DIR]")
    return " ".join(parts)


def build_description(spec: dict[str, Any], name: str, rows: dict[str, int]) -> str:
    """What the module does and when to use it, within DESCRIPTION_LIMIT characters."""
    what = _one_line(spec.get("description")) or f"Runs the mcp-harness module {name!r}."
    if not what.endswith((".", "!", "?")):
        what += "."
    learned = ", ".join(f"{k} {v} rows" for k, v in rows.items())
    about = "An mcp-harness module" + (f" (experience: {learned})." if learned else ".")
    inputs = set(spec.get("inputs", {}))
    if "check" in inputs:
        when = (
            "Use when you have a task whose completion a shell command can check and want this "
            "module to work it in its own terminal with what it has learned"
        )
    else:
        when = "Use when a task fits what this module does and you want it worked by the module"
    tail = f" {about} {when}: run {usage_line(spec)}."
    room = DESCRIPTION_LIMIT - len(tail)
    if len(what) > room:
        what = what[: max(room - 1, 0)].rstrip() + "…"
    return what + tail


def validate_frontmatter(fields: dict[str, Any]) -> None:
    """The checks Claude Code's listing and the Skills API impose on what we write."""
    name = str(fields.get("name", ""))
    check_name(name, given=False)
    description = _one_line(fields.get("description"))
    if not description:
        raise HarnessError(
            "a skill needs a description", "describe what it does and when to use it"
        )
    total = len(description) + len(_one_line(fields.get("when_to_use")))
    if total > DESCRIPTION_LIMIT:
        raise HarnessError(
            f"skill {name!r}: description + when_to_use is {total} characters, over the "
            f"{DESCRIPTION_LIMIT} Claude Code lists",
            "shorten the module's description in module.json",
        )


def validate_body(body: str) -> None:
    lines = body.count("\n") + 1
    if lines >= BODY_LINE_LIMIT:
        raise HarnessError(
            f"SKILL.md body has {lines} lines (keep it under {BODY_LINE_LIMIT})",
            "shorten the module description or its inputs",
        )


def render_frontmatter(fields: dict[str, str]) -> str:
    """YAML frontmatter; every value a double-quoted scalar (JSON strings are valid YAML, and a
    name like `yes` or `1e3` stays a string)."""
    lines = ["---"]
    lines += [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in fields.items()]
    lines.append("---")
    return "\n".join(lines) + "\n"


def _input_help(input_name: str) -> str:
    return _KNOWN_INPUTS.get(input_name, f"the module's `{input_name}` input")


def render_body(
    spec: dict[str, Any], name: str, rows: dict[str, int], nodes: list[dict[str, Any]]
) -> str:
    what = textwrap.fill(_one_line(spec.get("description")) or "(no description)", 96)
    inputs = list(spec.get("inputs", {}))
    options = _option_inputs(spec)
    run = "${CLAUDE_SKILL_DIR}/" + usage_line(spec)
    example = "${CLAUDE_SKILL_DIR}/scripts/run.sh"
    if "task" in options:
        example += ' "Make run.sh executable"'
    if "check" in options:
        example += ' --check "test -x run.sh"'
    table = ["| option | module input | meaning |", "|---|---|---|"]
    for input_name in inputs:
        if input_name == "task" and "task" in options:
            option = "`TASK` (the words) or `--task TEXT`"
        elif input_name in options:
            option = f"`--{input_name} {_metavar(input_name)}`"
        else:
            option = f"`--input {input_name}=VALUE`"
        table.append(f"| {option} | `{input_name}` | {_input_help(input_name)} |")
    experience = (
        "\n".join(f"- `module/experience/{k}`: {v} rows" for k, v in rows.items())
        or "- (no experience)"
    )
    graph = textwrap.fill(
        "`module/module.json`: the graph; nodes "
        + ", ".join(f"`{n['id']}` ({n['op']})" for n in nodes),
        96,
        initial_indent="- ",
        subsequent_indent="  ",
        break_on_hyphens=False,
    )
    return fill_template(
        "SKILL.md",
        NAME=name,
        WHAT=what,
        RUN=run,
        EXAMPLE=example,
        TABLE="\n".join(table),
        GRAPH=graph,
        EXPERIENCE=experience,
    )


def render_module_readme(spec: dict[str, Any], rows: dict[str, int]) -> str:
    name = spec.get("name", "module")
    what = textwrap.fill(_one_line(spec.get("description")) or "(no description)", 96)
    inputs = "\n".join(
        f"- `{n}`: {_input_help(n).replace(' (default: the current directory)', '')}"
        for n in spec.get("inputs", {})
    )
    experience = "\n".join(f"- `experience/{k}/`: {v} rows" for k, v in rows.items())
    flags = " ".join(f'--input {n}="…"' for n in spec.get("inputs", {}))
    return fill_template(
        "module-README.md",
        NAME=str(name),
        WHAT=what,
        FLAGS=flags,
        INPUTS=inputs or "- (none)",
        EXPERIENCE=experience or "- (none)",
    )


# ---- scripts/run.sh ----------------------------------------------------------------------------
def render_launcher(spec: dict[str, Any], name: str) -> str:
    """A bash launcher: options -> `--input NAME=VALUE`, then exec `mcp-harness module run`."""
    options = _option_inputs(spec)
    all_inputs = list(spec.get("inputs", {}))
    has_task = "task" in options
    var = {n: f"v{i}" for i, n in enumerate(options)}
    given = {n: f"s{i}" for i, n in enumerate(options)}
    init = []
    for n in options:
        if n == "workdir":
            init.append(f'{var[n]}="$PWD"; {given[n]}=1  # workdir defaults to the current dir')
        else:
            init.append(f'{var[n]}=""; {given[n]}=0')
    set_cases = (
        "\n".join(f'    {n}) {var[n]}="$2"; {given[n]}=1 ;;' for n in options) or '    "") ;;'
    )
    option_pattern = "|".join(f"--{n}" for n in options)
    option_arms = ""
    if options:
        eq_pattern = "|".join(f"--{n}=*" for n in options)
        option_arms = f"""    {option_pattern})
      [ $# -ge 2 ] || die "$1 needs a value" "see: $me --help"
      set_input "${{1#--}}" "$2"; shift 2 ;;
    {eq_pattern})
      opt="${{1%%=*}}"; set_input "${{opt#--}}" "${{1#*=}}"; shift ;;
"""
    pass_pattern = "|".join(f"--{o}" for o in _RUN_OPTIONS if o != "input")
    pass_eq = "|".join(f"--{o}=*" for o in _RUN_OPTIONS if o != "input")
    words = "if [ ${#words[@]} -gt 0 ]; then\n"
    if has_task:
        task_var, task_given = var["task"], given["task"]
        words += (
            f'  [ "${{{task_given}}}" = 1 ] && die "the task is given twice (--task and words)" '
            f'"give it once"\n  {task_var}="${{words[*]}}"; {task_given}=1\nfi\n'
        )
    else:
        words += (
            '  die "unexpected argument: ${words[0]}" '
            '"this module takes no task words; see: $me --help"\nfi\n'
        )
    missing = "\n".join(
        f'[ "${{{given[n]}}}" = 1 ] || missing+=('
        + shlex.quote(f"{'TASK' if n == 'task' else '--' + n}: {_input_help(n)}")
        + ")"
        for n in options
        if n != "workdir"
    )
    build = "\n".join(f'args+=(--input "{n}=${{{var[n]}}}")' for n in options)
    help_inputs = "\n".join(
        f"  {('TASK... | --task TEXT' if n == 'task' else '--' + n + ' VALUE'):24} {_input_help(n)}"
        for n in options
    )
    other = [n for n in all_inputs if n not in options]
    if other:
        help_inputs += "\n" + "\n".join(
            f"  --input {n}=VALUE{'':8} the module's `{n}` input" for n in other
        )
    what = textwrap.fill(
        _one_line(spec.get("description")), 90, initial_indent="  ", subsequent_indent="  "
    )
    return fill_template(
        "run.sh",
        NAME=name,
        MODULE_DIR=MODULE_DIR,
        USAGE=usage_line(spec).replace("scripts/run.sh", "run.sh"),
        WHAT=what,
        HELP_INPUTS=help_inputs,
        INIT="\n".join(init) + "\n",
        SET_CASES=set_cases + "\n",
        OPTION_ARMS=option_arms,
        PASS_PATTERN=pass_pattern,
        PASS_EQ=pass_eq,
        WORDS=words,
        MISSING=missing + "\n",
        BUILD=build + "\n",
    )
