"""The MCP server: everything mcp-harness does, as tools for Claude Code or any MCP client.

`app.build_server()` makes the `MCPServer` with the chosen `toolsets`: each `tools_*.py` module
registers one family of tools with `declare.tool`, `tools_ops` a tool per ft_* op and
`module_tools` a tool per module (kept in line with the modules dir, `module_catalog`);
`runs` starts module runs as jobs; `resources` and `prompts` are the URIs and slash commands.
`state` holds what lives as long as the server (jobs, training, terminal locks, the
`experience_cache`, client connections); `notify` sends progress, log messages and
list_changed; `errors` turns HarnessError into a tool error the model can read and redacts
every result; `confine` holds the path rules; `http` the token and Host/Origin checks of
`serve --http`; `output` keeps results under Claude Code's tool-output limit by saving the
full text to a file (and resource) the result points at. `declare` registers each tool as a
`DeferredTool` (listed at once, its SDK `Tool` built on first call), its schemas from
`schema_cache` (kept between starts under a fingerprint of the sources); `tools` lists a family
from that cache as `declare.ListedTool`s and imports its module on the first use of one.
"""

# First, before any tool module: the schema cache's fingerprint of the sources (see there).
from mcp_harness.server import schema_cache  # noqa: F401
