"""`mcp-harness serve`: run the MCP server on stdio (default) or streamable HTTP.

On stdio, stdout is the wire: nothing here writes to it, messages go to stderr, and the server
exits when its client closes stdin (end of file).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

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
        "--tools",
        default=None,
        metavar="LIST",
        help="toolsets to offer, comma-separated: experience, modules, ops, jobs, capture, "
        "export, terminal (or all, default); default: $MCP_HARNESS_TOOLS, else all but terminal",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"HTTP address to bind (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help="file holding the bearer token HTTP clients must send (yours, mode 0600); "
        "default: one generated into <data home>/server/http-token",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another Host name clients use to reach the server (repeatable); the bind "
        "address (and localhost for a loopback bind) is always allowed",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow binding a non-loopback address (other machines can then reach the port)",
    )
    parser.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from mcp_harness.server.app import build_server

    if not args.http:
        server = build_server(args.tools)
        try:
            server.run()  # stdio; returns when the client closes stdin
        finally:
            # The SDK points fd 1 back at the wire when it stops; anything a library left in
            # sys.stdout's buffer must still not reach it.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
                sys.stdout.flush()
        return 0
    return _serve_http(args)


def _serve_http(args: argparse.Namespace) -> int:
    import anyio

    from mcp_harness.server import http
    from mcp_harness.server.app import build_server

    if not 0 < args.port < 65536:
        raise HarnessError(f"--port {args.port} is not a TCP port", "use 1-65535, e.g. 8765")
    remote = not http.is_loopback(args.host)
    if remote and not args.allow_remote:
        raise HarnessError(
            f"--host {args.host} is not a loopback address: other machines could reach the "
            "server, which runs shell commands as you",
            "bind 127.0.0.1 (the default), or pass --allow-remote to mean it",
        )
    for name in args.allowed_host:
        if not name or any(ch in name for ch in "/ \t@") or not name.isprintable():
            raise HarnessError(
                f"--allowed-host {name!r} is not a host name", "give a name such as my-box.lan"
            )
    _check_port(args.host, args.port)
    server = build_server(args.tools)
    token, token_path = http.load_or_create_token(args.token_file)
    shown = args.host if args.host not in http.WILDCARDS else "HOST"
    url = f"http://{http.as_host(shown)}:{args.port}{HTTP_PATH}"
    if remote:
        print(
            f"mcp-harness: warning: serving on {args.host}: anyone on the network who has the "
            "token can run commands as you, and plain HTTP sends it unencrypted",
            file=sys.stderr,
        )
    print(
        f"mcp-harness: MCP server at {url} (bearer token in {token_path})\n"
        f"mcp-harness: register it with:\n"
        f'  claude mcp add --transport http harness {url} --header "Authorization: Bearer '
        f'{token}"',
        file=sys.stderr,
        flush=True,
    )
    app = http.build_app(
        server,
        host=args.host,
        port=args.port,
        path=HTTP_PATH,
        token=token,
        extra_hosts=args.allowed_host,
    )
    anyio.run(http.serve, app, args.host, args.port)
    return 0


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
