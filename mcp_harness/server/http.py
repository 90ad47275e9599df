"""Streamable HTTP with a bearer token and Host/Origin checks on every bind.

Anyone who can reach the port could otherwise run shell commands as the server's user
(`terminal_run`), so every request must carry `Authorization: Bearer <token>` (compared in
constant time), and the SDK's transport-security settings refuse a Host or Origin the bind
does not name (DNS rebinding: a web page that resolves its own name to 127.0.0.1).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.paths import data_home

TOKEN_FILE = "http-token"
TOKEN_BYTES = 32
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")


def default_token_path() -> Path:
    return data_home() / "server" / TOKEN_FILE


def _check_private(path: Path, info: os.stat_result, what: str) -> None:
    if info.st_uid != os.getuid():
        raise HarnessError(
            f"{what} {path} is owned by uid {info.st_uid}, not by you (uid {os.getuid()})",
            "use a token file you created yourself",
        )
    if info.st_mode & 0o077:
        raise HarnessError(
            f"{what} {path} has mode {stat.S_IMODE(info.st_mode):04o}: others may read it",
            f"chmod 600 {path}",
        )


def read_token_file(path: Path) -> str:
    """The token in `path`: a regular file of the user's, mode 0600 (no symlink followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY)
    except FileNotFoundError:
        raise HarnessError(
            f"--token-file {path}: no such file",
            f"create it: (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe"
            f"(32))' > {path}), or leave out --token-file to get one generated",
        ) from None
    except OSError as exc:
        raise HarnessError(
            f"--token-file {path}: cannot open it ({exc.strerror}; symlinks are not followed)",
            "name a regular file you own, mode 0600",
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise HarnessError(f"--token-file {path} is not a regular file", "name a file")
        _check_private(path, info, "token file")
        raw = handle.read(4096)
    token = raw.decode("utf-8", "replace").strip()
    if len(token) < 16 or any(ch.isspace() or not ch.isprintable() for ch in token):
        raise HarnessError(
            f"--token-file {path}: the token must be one line of at least 16 printable "
            "characters without spaces",
            "write e.g. the output of "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe())'`",
        )
    return token


def load_or_create_token(path: Path | None) -> tuple[str, Path]:
    """The token of `--token-file path`, or the generated one in the data dir (made 0600 on
    first use, reused afterwards)."""
    if path is not None:
        return read_token_file(path), path
    generated = default_token_path()
    generated.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(generated, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return read_token_file(generated), generated
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(TOKEN_BYTES) + "\n")
    return read_token_file(generated), generated


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def as_host(name: str) -> str:
    """A name as it appears in a Host header (IPv6 literals in brackets)."""
    name = name.strip()
    if ":" in name and not name.startswith("["):
        return f"[{name}]"
    return name


def allowed_hosts(bind: str, port: int, extra: Iterable[str]) -> list[str]:
    """Host header values the server answers: the bind address (loopback names too when it is
    loopback or a wildcard) and every `--allowed-host`, each with the port."""
    names: list[str] = []
    if bind not in WILDCARDS:
        names.append(as_host(bind))
    if is_loopback(bind) or bind in WILDCARDS:
        names += LOOPBACK_NAMES
    names += [as_host(h) for h in extra]
    hosts: list[str] = []
    for name in names:
        for value in (f"{name}:{port}", name) if port == 80 else (f"{name}:{port}",):
            if value not in hosts:
                hosts.append(value)
    return hosts


def transport_security(bind: str, port: int, extra: Iterable[str]) -> Any:
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = allowed_hosts(bind, port, extra)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts],
    )


class BearerTokenMiddleware:
    """ASGI: every HTTP request needs `Authorization: Bearer <token>`, else 401."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"bearer {token}".encode()

    def _authorized(self, scope: dict[str, Any]) -> bool:
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                given = value
                break
        # Only the scheme is case-insensitive; compare_digest takes the same time wherever
        # the first difference is.
        if given[:7].lower() == b"bearer ":
            given = b"bearer " + given[7:].strip()
        return hmac.compare_digest(given, self.expected)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        body = b'{"error": "unauthorized: send the header Authorization: Bearer <token>"}'
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="mcp-harness"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def build_app(
    server: Any, *, host: str, port: int, path: str, token: str, extra_hosts: Iterable[str]
) -> Any:
    """The streamable HTTP app of `server`, behind the token and the Host/Origin checks."""
    from mcp_harness.limits import limits

    app = server.streamable_http_app(
        streamable_http_path=path,
        transport_security=transport_security(host, port, extra_hosts),
        max_request_body_size=limits().request_bytes,
        host=host,
    )
    return BearerTokenMiddleware(app, token)


async def serve(app: Any, host: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()
