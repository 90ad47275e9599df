"""The MCP server: everything mcp-harness does, as tools for Claude Code or any MCP client.

`app.build_server()` makes the `MCPServer`; each `tools_*.py` module registers one family of
tools; `state` holds what lives as long as the server (terminals, background jobs); `errors`
turns HarnessError into a tool error the model can read; `output` keeps results under Claude
Code's tool-output limit by saving the full text to a file the result points at.
"""
