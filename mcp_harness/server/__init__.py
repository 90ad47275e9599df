"""The MCP server: everything mcp-harness does, as tools for Claude Code or any MCP client.

`app.build_server()` makes the `MCPServer`; each `tools_*.py` module registers one family of
tools; `state` holds what lives as long as the server (terminals, background jobs); `errors`
turns HarnessError into a tool error the model can read and redacts every result; `confine`
holds the path rules; `http` the token and Host/Origin checks of `serve --http`; `output`
keeps results under Claude Code's tool-output limit by saving the full text to a file the
result points at.
"""
