"""HTTP security of `mcp-harness serve --http`: bearer token on every request, Host and Origin
checked on every bind, no non-loopback bind without --allow-remote (real server processes,
a real MCP client and raw HTTP requests)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import httpx2
import pytest
from mcp import MCPError

from mcp_harness.server.http import allowed_hosts
from tests.http_fixtures import CLI, Served, free_port, serve_http

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}
JSON = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def _post(served: Served, **headers: str) -> httpx2.Response:
    with httpx2.Client(timeout=30) as http:
        return http.post(served.url, json=INITIALIZE, headers={**JSON, **headers})


def _refused(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "serve", "--http", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MCP_HARNESS_HOME": str(home)},
    )


def test_requests_without_the_token_get_401(harness_home: Path, tmp_path: Path) -> None:
    with serve_http(harness_home, tmp_path) as served:
        assert _post(served).status_code == 401
        assert _post(served, Authorization="Bearer wrong-token").status_code == 401
        assert _post(served, Authorization=served.token).status_code == 401  # no scheme
        assert _post(served, Authorization=f"Basic {served.token}").status_code == 401
        missing = _post(served)
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in missing.text
        assert _post(served, Authorization=f"Bearer {served.token}").status_code == 200
        assert _post(served, Authorization=f"bearer {served.token}").status_code == 200
    log = served.log.read_text()
    assert log.count(served.token) == 1  # only in the `claude mcp add` line


async def test_mcp_client_needs_the_token(harness_home: Path, tmp_path: Path) -> None:
    with serve_http(harness_home, tmp_path) as served:
        async with served.client() as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "terminal_run" in names
        with pytest.raises((MCPError, httpx2.HTTPStatusError, ExceptionGroup)):
            async with served.client(token="not-the-token") as client:
                await client.list_tools()


def test_rebinding_host_and_foreign_origin_are_refused_with_the_token(
    harness_home: Path, tmp_path: Path
) -> None:
    with serve_http(harness_home, tmp_path) as served:
        auth = {"Authorization": f"Bearer {served.token}"}
        assert _post(served, Host=f"attacker.example:{served.port}", **auth).status_code == 421
        assert _post(served, Host="127.0.0.1:1", **auth).status_code == 421
        assert _post(served, Origin="http://attacker.example", **auth).status_code == 403
        assert _post(served, Host=f"localhost:{served.port}", **auth).status_code == 200
        local = f"http://127.0.0.1:{served.port}"
        assert _post(served, Origin=local, **auth).status_code == 200


def test_allowed_host_adds_a_name(harness_home: Path, tmp_path: Path) -> None:
    with serve_http(harness_home, tmp_path, "--allowed-host", "box.lan") as served:
        auth = {"Authorization": f"Bearer {served.token}"}
        assert _post(served, Host=f"box.lan:{served.port}", **auth).status_code == 200
        assert _post(served, Host=f"other.lan:{served.port}", **auth).status_code == 421


def test_generated_token_is_private_and_reused(harness_home: Path, tmp_path: Path) -> None:
    with serve_http(harness_home, tmp_path) as first:
        pass
    path = harness_home / "server" / "http-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.token) >= 32
    with serve_http(harness_home, tmp_path) as second:
        assert second.token == first.token
        assert _post(second, Authorization=f"Bearer {first.token}").status_code == 200


def test_token_file_is_used_and_must_be_private(harness_home: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("a-token-of-my-own-0123456789\n")
    token_file.chmod(0o644)
    refused = _refused(harness_home, "--token-file", str(token_file))
    assert refused.returncode == 2
    assert "mode 0644" in refused.stderr and f"chmod 600 {token_file}" in refused.stderr
    token_file.chmod(0o600)
    with serve_http(harness_home, tmp_path, "--token-file", str(token_file)) as served:
        assert served.token == "a-token-of-my-own-0123456789"
        assert _post(served, Authorization=f"Bearer {served.token}").status_code == 200
    assert not (harness_home / "server" / "http-token").exists()

    link = tmp_path / "link"
    link.symlink_to(token_file)
    refused = _refused(harness_home, "--token-file", str(link))
    assert refused.returncode == 2 and "symlinks are not followed" in refused.stderr
    refused = _refused(harness_home, "--token-file", str(tmp_path / "absent"))
    assert refused.returncode == 2 and "no such file" in refused.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_non_loopback_bind_needs_allow_remote(harness_home: Path, host: str) -> None:
    refused = _refused(harness_home, "--host", host)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "--allow-remote" in refused.stderr and "not a loopback address" in refused.stderr


def test_wildcard_bind_with_allow_remote_checks_host(harness_home: Path, tmp_path: Path) -> None:
    args = ("--host", "0.0.0.0", "--allow-remote", "--allowed-host", "box.lan")
    with serve_http(harness_home, tmp_path, *args) as served:
        auth = {"Authorization": f"Bearer {served.token}"}
        assert _post(served, **auth).status_code == 200  # 127.0.0.1:port
        assert _post(served, Host=f"box.lan:{served.port}", **auth).status_code == 200
        assert _post(served, Host=f"rebound.example:{served.port}", **auth).status_code == 421
        assert _post(served).status_code == 401
    assert "warning" in served.log.read_text()


def test_allowed_hosts_follow_the_bind() -> None:
    assert allowed_hosts("127.0.0.2", 9000, []) == [
        "127.0.0.2:9000",
        "127.0.0.1:9000",
        "localhost:9000",
        "[::1]:9000",
    ]
    assert allowed_hosts("::1", 80, ["box.lan"]) == [
        "[::1]:80",
        "[::1]",
        "127.0.0.1:80",
        "127.0.0.1",
        "localhost:80",
        "localhost",
        "box.lan:80",
        "box.lan",
    ]
    assert allowed_hosts("192.0.2.10", 9000, []) == ["192.0.2.10:9000"]
