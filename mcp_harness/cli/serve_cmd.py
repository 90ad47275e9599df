"""`mcp-harness serve`: run the MCP server on stdio (default) or streamable HTTP.

On stdio, stdout is the wire: nothing here writes to it, messages go to stderr, and the server
exits when its client closes stdin (end of file).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from mcp_harness.errors import HarnessError

HTTP_PATH = "/mcp"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the MCP server (stdio for Claude Code; --http for a shared server)",
        description="Run the mcp-harness MCP server. stdio by default (register it with "
        "`claude mcp add harness -- mcp-harness serve`); --http serves streamable HTTP at "
        f"http://HOST:PORT{HTTP_PATH}.",
    )
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP, not stdio")
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"HTTP address to bind (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})"
    )
    parser.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from mcp_harness.server.app import build_server

    if not args.http:
        server = build_server()
        try:
            server.run()  # stdio; returns when the client closes stdin
        finally:
            # The SDK points fd 1 back at the wire when it stops; anything a library left in
            # sys.stdout's buffer must still not reach it.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
                sys.stdout.flush()
        return 0
    if not 0 < args.port < 65536:
        raise HarnessError(f"--port {args.port} is not a TCP port", "use 1-65535, e.g. 8765")
    _check_port(args.host, args.port)
    if not _loopback(args.host):
        print(
            f"mcp-harness: warning: serving on {args.host} without authentication; anyone who "
            "can reach this port can run commands as you",
            file=sys.stderr,
        )
    print(
        f"mcp-harness: MCP server at http://{args.host}:{args.port}{HTTP_PATH}",
        file=sys.stderr,
        flush=True,
    )
    server = build_server()
    server.run(
        transport="streamable-http",
        host=args.host,
        port=args.port,
        streamable_http_path=HTTP_PATH,
    )
    return 0


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    """Fail with a clear message (not a server traceback) when the address is unusable."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HarnessError(f"--host {host!r}: {exc.strerror}", "use e.g. 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise HarnessError(
                f"cannot listen on {host}:{port}: {exc.strerror}",
                "pass a free port with --port N, or stop the process using this one",
            ) from None
