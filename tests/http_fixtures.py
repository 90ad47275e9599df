"""A real `mcp-harness serve --http` process for tests, and MCP clients that send its token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

CLI = Path(sys.executable).parent / "mcp-harness"
START_DEADLINE_S = 30.0


@dataclass
class Served:
    url: str
    port: int
    token: str
    log: Path

    def client(self, mode: str = "legacy", token: str | None = None, **headers: str) -> Client:
        """An MCP client of this server sending `token` (default: the right one)."""
        sent = {"Authorization": f"Bearer {self.token if token is None else token}", **headers}
        http = httpx2.AsyncClient(headers=sent, timeout=httpx2.Timeout(30, read=300))
        return Client(streamable_http_client(self.url, http_client=http), mode=mode)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(proc: subprocess.Popen[bytes], port: int, host: str = "127.0.0.1") -> None:
    """Poll connect() until the server accepts, with a bounded deadline; between attempts wait
    briefly for the other event that ends the wait: the server exiting."""
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            pass
        try:
            code = proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"the server exited with {code} before listening")
    raise AssertionError(f"the server did not listen on port {port} within {START_DEADLINE_S} s")


@contextmanager
def serve_http(
    home: Path, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """Run `mcp-harness serve --http --port P ARGS` until the block ends; the token is the
    one it generated into the data dir (or the --token-file given)."""
    port = free_port()
    log = cwd / f"server-{port}.log"
    given = list(args)
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(CLI), "serve", "--http", "--port", str(port), *given],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "MCP_HARNESS_HOME": str(home), **(env or {})},
            cwd=cwd,
        )
    try:
        wait_for_port(proc, port)
        token_file = (
            Path(given[given.index("--token-file") + 1])
            if "--token-file" in given
            else home / "server" / "http-token"
        )
        token = token_file.read_text().strip()
        yield Served(f"http://127.0.0.1:{port}/mcp", port, token, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
