"""Export: a harness module becomes something an agent can use without mcp-harness's MCP server.

`skill.export_skill` writes a Claude Code skill (`<dir>/<name>/SKILL.md`, the module's data under
`module/`, and a launcher `scripts/run.sh` that runs it with `mcp-harness module run`).
"""

from mcp_harness.export.skill import ExportedSkill, default_target, export_skill

__all__ = ["ExportedSkill", "default_target", "export_skill"]
