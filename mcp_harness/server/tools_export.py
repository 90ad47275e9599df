"""Export tools: a module becomes a Claude Code skill (`export_skill`).

Paths a client gives follow the server's one rule (`confine.allowed_path`: the data
home, the server's working directory, `MCP_HARNESS_ALLOWED_DIRS`); the personal skills dir
(`~/.claude/skills`, or `$CLAUDE_CONFIG_DIR/skills`) is allowed as a target too, since that is
where Claude Code looks for a user's skills.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_harness.server import notify
from mcp_harness.server.declare import Result, tool


class SkillExport(Result):
    name: str = Field(description="the skill name (its directory; invoke it as /<name>)")
    skill_dir: str
    skill_md: str = Field(description="the SKILL.md written")
    launcher: str = Field(description="scripts/run.sh: runs the module with mcp-harness")
    module: str = Field(description="the module directory that was exported")
    description: str = Field(description="the description Claude Code lists the skill by")
    replaced: bool = Field(description="an earlier export of this skill was replaced")
    experience: dict[str, int] = Field(description="experience rows copied, per tensor")
    files: int
    next: str = Field(description="how to use the skill")


def _personal_skills() -> Path:
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    root = Path(config).expanduser() if config else Path.home() / ".claude"
    return (root / "skills").absolute().resolve()


def _target(to: str | None) -> Path | None:
    if to is None:
        return None
    raw = Path(to).expanduser()
    real = (raw if raw.is_absolute() else Path.cwd() / raw).resolve()
    if real.is_relative_to(_personal_skills()):
        return real
    from mcp_harness.server.confine import allowed_path

    return allowed_path(real)


def export(module: str, to: str | None = None, name: str | None = None) -> SkillExport:
    from mcp_harness.export.skill import check_name, export_skill
    from mcp_harness.server.runs import confined_module

    if name is not None:
        check_name(name)
    done = export_skill(confined_module(module), _target(to), name)
    return SkillExport(
        **done.to_json(),
        next=(
            f"Invoke it with the Skill tool (skill {done.name!r}) or /{done.name}. Claude Code "
            f"watches {done.skill_dir.parent} if it existed when the session started (the skill "
            "shows up within a few seconds); otherwise it is found from the next session on. "
            f"Launcher help: {done.launcher} --help"
        ),
    )


def register(server: MCPServer) -> None:
    @tool(
        server,
        title="Export a module as a Claude Code skill",
        annotations=ToolAnnotations(
            destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def export_skill(
        ctx: Context,
        module: Annotated[
            str,
            Field(
                description="a module name (built-in such as 'coder', or one under the data dir) "
                "or a path to a module directory"
            ),
        ],
        to: Annotated[
            str | None,
            Field(
                description="the skills directory to write <to>/<name>/ in (relative: to the "
                "server's working directory). Default: ./.claude/skills if the working "
                "directory has a .claude dir, else ~/.claude/skills"
            ),
        ] = None,
        name: Annotated[
            str | None,
            Field(
                description="the skill name, ^[a-z0-9-]{1,64}$ (default: the module's name)",
            ),
        ] = None,
    ) -> SkillExport:
        """Export a harness module as a Claude Code skill: <to>/<name>/SKILL.md (what it does,
        when to use it, how to run it), a copy of the module (graph and experience) and a
        launcher scripts/run.sh that runs it with `mcp-harness module run`. Exporting again
        replaces the skill in one step; a directory that is not a skill is never overwritten."""
        async with notify.ticking(ctx, "exporting"):
            return await anyio.to_thread.run_sync(export, module, to, name)
