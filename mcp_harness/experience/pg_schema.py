"""The pool's tables in PostgreSQL, connecting to it, and its errors in words a user can act on.

Schema `mcp_harness`, version `SCHEMA_VERSION` (kept in `meta`), made on first use:
- `experiences`: one row per experience name;
- `rows`: every experience row; `id` orders an experience's rows (row index = rank by id),
  `author` is the database role that inserted it (a default no client can set: the insert grant
  leaves the column out), `digest` makes a pushed row unique per experience, `changed` and
  `terms_changed` are the change numbers of the row's last write and of its last retrieval
  terms change;
- `changes`: one line per committed change of an experience (its number, kind, and the ids it
  deleted). The highest number is the experience's change counter: a process whose index is at
  that number is current, else it reads only what changed since.
Writers of one experience take a transaction-level advisory lock on its name, so changes are
numbered without gaps and ids grow in commit order. Access control is the database's: see the
setup SQL in README.md (users INSERT and SELECT, maintainers also UPDATE and DELETE).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mcp_harness.errors import HarnessError
from mcp_harness.experience.backend import hide_passwords

if TYPE_CHECKING:
    import psycopg

SCHEMA = "mcp_harness"
SCHEMA_VERSION = "1"
_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE {SCHEMA}.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE {SCHEMA}.experiences (
    name text PRIMARY KEY,
    created_by text NOT NULL DEFAULT current_user,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {SCHEMA}.rows (
    id bigserial PRIMARY KEY,
    experience text NOT NULL REFERENCES {SCHEMA}.experiences (name),
    query text NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    weight double precision NOT NULL CHECK (weight >= 0 AND weight <= 1e6),
    meta json NOT NULL,
    author text NOT NULL DEFAULT current_user,
    digest text,
    changed bigint NOT NULL,
    terms_changed bigint NOT NULL
);
CREATE INDEX rows_order ON {SCHEMA}.rows (experience, id);
CREATE INDEX rows_changed ON {SCHEMA}.rows (experience, changed);
CREATE UNIQUE INDEX rows_digest ON {SCHEMA}.rows (experience, digest) WHERE digest IS NOT NULL;
CREATE TABLE {SCHEMA}.changes (
    experience text NOT NULL REFERENCES {SCHEMA}.experiences (name),
    change bigint NOT NULL,
    kind text NOT NULL,
    ids bigint[],
    author text NOT NULL DEFAULT current_user,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experience, change)
);
INSERT INTO {SCHEMA}.meta VALUES ('schema_version', '{SCHEMA_VERSION}');
"""
_SCHEMA_LOCK = 0x6D63_7068_6172_6E73  # advisory lock key while the schema is being made
_CREDENTIALS = "set PGPASSWORD, add a line to ~/.pgpass, or name a service file (PGSERVICE)"


def import_psycopg():  # -> the psycopg module
    """psycopg, or the error that says which extra installs it."""
    try:
        import psycopg
    except ImportError:
        raise HarnessError(
            "a PostgreSQL experience needs psycopg, which is not installed",
            "install the pool extra: pip install 'mcp-harness[pool]'",
        ) from None
    return psycopg


def connect(conninfo: str, where: str) -> psycopg.Connection:
    """An autocommit connection (transactions are explicit) with the schema checked or made."""
    psycopg = import_psycopg()
    timeout = {} if os.environ.get("PGCONNECT_TIMEOUT") else {"connect_timeout": 10}
    try:
        conn = psycopg.connect(conninfo, autocommit=True, application_name="mcp-harness", **timeout)
    except psycopg.OperationalError as exc:
        raise connect_error(exc, where) from None
    except psycopg.ProgrammingError as exc:
        raise HarnessError(
            f"{where}: not a usable PostgreSQL address ({hide_passwords(str(exc))})",
            "write postgresql://USER@HOST:PORT/DBNAME#EXPERIENCE",
        ) from None
    try:
        ensure_schema(conn, where)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_error(exc: Exception, where: str) -> HarnessError:
    text = hide_passwords(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    lowered = text.lower()
    if "password" in lowered or "authentication" in lowered:
        return HarnessError(f"{where}: wrong or missing credentials ({text})", _CREDENTIALS)
    if "does not exist" in lowered and "database" in lowered:
        return HarnessError(
            f"{where}: {text}", "create the database (createdb DBNAME) or fix the address"
        )
    if "role" in lowered and "does not exist" in lowered:
        return HarnessError(
            f"{where}: {text}",
            "ask a maintainer to create your role (README: the pool's setup SQL)",
        )
    return HarnessError(
        f"{where}: cannot reach the PostgreSQL server ({text})",
        "check the host and port, that the server runs and accepts TCP connections from here, "
        "and TLS settings (PGSSLMODE)",
    )


def ensure_schema(conn: psycopg.Connection, where: str) -> None:
    """Check the schema version; make the schema when the database has none."""
    psycopg = import_psycopg()
    found = conn.execute(f"SELECT to_regclass('{SCHEMA}.meta') IS NOT NULL").fetchone()
    if not (found and found[0]):
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                made = conn.execute(f"SELECT to_regclass('{SCHEMA}.meta') IS NOT NULL")
                if not made.fetchone()[0]:
                    conn.execute(_DDL)
        except psycopg.errors.InsufficientPrivilege:
            raise HarnessError(
                f"{where}: the database has no mcp-harness schema and this role may not make it",
                "connect once as the maintainer role (or run the setup SQL in README.md)",
            ) from None
    try:
        row = conn.execute(
            f"SELECT value FROM {SCHEMA}.meta WHERE key = 'schema_version'"
        ).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        raise no_rights(where, "read the pool") from None
    version = row[0] if row else None
    if version != SCHEMA_VERSION:
        raise HarnessError(
            f"{where}: the pool's schema is version {version}, this mcp-harness uses "
            f"version {SCHEMA_VERSION}",
            "use an mcp-harness release that speaks that version, or another database",
        )


@contextlib.contextmanager
def database_errors(where: str, what: str) -> Iterator[None]:
    """Database errors inside the block as HarnessErrors naming the store `where`."""
    psycopg = import_psycopg()
    try:
        yield
    except psycopg.errors.InsufficientPrivilege:
        raise no_rights(where, what) from None
    except psycopg.OperationalError as exc:
        raise HarnessError(
            f"{where}: lost the connection to the server ({hide_passwords(str(exc).strip())})",
            "check that the server runs, then retry (a change under way was not stored)",
        ) from None
    except psycopg.DataError as exc:
        raise HarnessError(
            f"{where}: the server refused a row ({hide_passwords(str(exc).strip())})",
            "fix the row; nothing of this change was stored",
        ) from None


def row_digest(query: str, key: str, value: str) -> str:
    """A row's identity in a pool: pushing the same row twice stores it once."""
    return hashlib.sha256(json.dumps([query, key, value]).encode("utf-8")).hexdigest()


def no_rights(where: str, what: str) -> HarnessError:
    return HarnessError(
        f"{where}: your database role may not {what} (permission denied)",
        "ask a maintainer: users may add and read rows, the maintainer role may edit and "
        "delete (README: the pool's setup SQL)",
    )
