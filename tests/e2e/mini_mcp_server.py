"""A tiny stdio MCP server (stdlib only) with one tool, `echo`, for the end-to-end tests.

Speaks newline-delimited JSON-RPC 2.0: answers `initialize`, `tools/list`, `tools/call` and
`ping`, ignores notifications, and exits on stdin EOF. If `MINI_MCP_PIDFILE` is set it appends
its pid there at start-up, so a test can reap it. The echo result is `echo:<text>|via=<$_>`:
bash sets `_` to the path of each program it execs, so (when the test starts Claude Code without
`_` in its environment) a non-empty value shows that a shell - the prefix wrapper's `bash -c` -
launched this server rather than Claude Code itself.
"""

from __future__ import annotations

import json
import os
import sys


def _reply(request_id: object, result: dict) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + "\n")
    sys.stdout.flush()


def _error(request_id: object, code: int, message: str) -> None:
    error = {"code": code, "message": message}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}) + "\n")
    sys.stdout.flush()


TOOL = {
    "name": "echo",
    "description": "Echo the given text back.",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}


def main() -> int:
    pidfile = os.environ.get("MINI_MCP_PIDFILE")
    if pidfile:
        with open(pidfile, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    for line in sys.stdin:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(message, dict) or "id" not in message:
            continue  # a notification
        method, request_id = message.get("method"), message["id"]
        params = message.get("params") or {}
        if method == "initialize":
            _reply(
                request_id,
                {
                    "protocolVersion": params.get("protocolVersion", "2025-06-18"),
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "mini", "version": "0.1"},
                },
            )
        elif method == "tools/list":
            _reply(request_id, {"tools": [TOOL]})
        elif method == "tools/call":
            text = str((params.get("arguments") or {}).get("text", ""))
            via = os.environ.get("_", "")
            content = [{"type": "text", "text": f"echo:{text}|via={via}"}]
            _reply(request_id, {"content": content, "isError": False})
        elif method == "ping":
            _reply(request_id, {})
        else:
            _error(request_id, -32601, f"method not found: {method}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
