"""A real PostgreSQL server for the tests: one per session, on a private port and data dir.

The server runs from the distribution's binaries (`/usr/lib/postgresql/<version>/bin`, or
`initdb` on PATH). initdb refuses to run as root, so under root the data dir belongs to
`nobody` and the server runs as that user (`runuser`). Clients authenticate over TCP with a
password read from a private pgpass file (`PGPASSFILE`), the standard libpq way, so the URIs
the tests use carry no password and subprocesses inherit the credentials.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ADMIN = "harness_admin"
PASSWORD = "test-" + uuid.uuid4().hex


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    return versions[0].parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PgServer:
    host: str
    port: int
    database: str

    def uri(self, experience: str, user: str = ADMIN, database: str | None = None) -> str:
        return (
            f"postgresql://{user}@{self.host}:{self.port}/{database or self.database}#{experience}"
        )

    def sql(self, statement: str, database: str | None = None) -> None:
        """Run one statement as the superuser (autocommit: CREATE DATABASE works)."""
        import psycopg

        conninfo = (
            f"host={self.host} port={self.port} user={ADMIN} dbname={database or self.database}"
        )
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(statement)


@contextlib.contextmanager
def private_server() -> Iterator[PgServer]:
    """A PostgreSQL server on a free loopback port with database `harness`, stopped at exit;
    `PGPASSFILE` points at its credentials meanwhile."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL is not installed: run scripts/setup.sh --test (apt-get postgresql)"
        )
    root = Path(tempfile.mkdtemp(prefix="mh-pg-", dir="/tmp"))
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    as_user: list[str] = []
    if os.getuid() == 0:  # initdb refuses root: the cluster belongs to nobody
        nobody = pwd.getpwnam("nobody")
        os.chmod(root, 0o755)
        os.chown(pwfile, nobody.pw_uid, nobody.pw_gid)
        data.mkdir()
        os.chown(data, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    port = _free_port()
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", ADMIN, f"--pwfile={pwfile}"]
    auth = ["--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8"]
    subprocess.run(
        [*as_user, *initdb, *auth, "--no-locale"], check=True, capture_output=True, cwd=root
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-o", options, "-w", "start"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        cwd=root,
    )
    passfile = root / "pgpass"
    passfile.write_text(f"127.0.0.1:{port}:*:*:{PASSWORD}\n")
    os.chmod(passfile, 0o600)
    old = os.environ.get("PGPASSFILE")
    os.environ["PGPASSFILE"] = str(passfile)
    server = PgServer("127.0.0.1", port, "harness")
    try:
        server.sql("CREATE DATABASE harness", database="postgres")
        yield server
    finally:
        if old is None:
            os.environ.pop("PGPASSFILE", None)
        else:
            os.environ["PGPASSFILE"] = old
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True, cwd=root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with private_server() as server:
        yield server


@pytest.fixture
def pg_uri(pg_server: PgServer) -> str:
    """A fresh experience name in the shared test database."""
    return pg_server.uri("t" + uuid.uuid4().hex[:12])


class Stores:
    """Makes empty experiences of one backend (`file` or `pool`) and reopens them as another
    process would; closes every pool connection it opened."""

    def __init__(self, kind: str, root: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self._root = root
        self._request = request
        self._opened: list = []

    def address(self) -> str:
        if self.kind == "file":
            return str(self._root / uuid.uuid4().hex[:8])
        return self._request.getfixturevalue("pg_server").uri("t" + uuid.uuid4().hex[:12])

    def new(self, address: str | None = None):
        from mcp_harness.experience.backend import open_store

        store = open_store(address or self.address(), "new")
        self._opened.append(store)
        return store

    def open(self, address: str):
        from mcp_harness.experience.backend import open_store

        store = open_store(address)
        self._opened.append(store)
        return store

    def reopen(self, store):
        return self.open(str(store.path))

    def close(self) -> None:
        for store in self._opened:
            close = getattr(store, "close", None)
            if close is not None:
                close()


@pytest.fixture(params=["file", "pool"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Run a test on both backends."""
    made = Stores(request.param, tmp_path / "stores", request)
    yield made
    made.close()
