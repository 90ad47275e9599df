"""Which store an experience argument names, and opening it: the backend seam.

An experience argument is one of
- a pool address, `postgresql://USER@HOST:PORT/DBNAME#EXPERIENCE` (a libpq URI, `postgres://`
  too; the fragment names the experience inside the database),
- a name listed in the `[stores]` table of `<data home>/config.toml` (`team = "postgresql://…"`),
- else a name under `<home>/experience/` or a path (`paths.resolve_experience`); inside a
  module (`base`: its directory) a path relative to the module, as `module.json` names its
  experience.

Passwords never appear in an address: libpq takes them from `PGPASSWORD`, `~/.pgpass` or a
service file (`PGSERVICE`), and TLS from `PGSSLMODE` and friends. An address holding one is
refused (shown with the password hidden), so the tool never stores or echoes it. The pool
store and psycopg are imported only when a pool address is opened.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qsl, urlsplit

from mcp_harness.errors import HarnessError
from mcp_harness.paths import data_home, resolve_experience

if TYPE_CHECKING:
    from mcp_harness.experience.pg_store import PoolExperience
    from mcp_harness.experience.store import Experience

Store: TypeAlias = "Experience | PoolExperience"  # an open experience of either backend
SCHEMES = ("postgresql", "postgres")
STORES = "stores"
POOL = "pool"
_SECRET_PARAMS = {"password", "sslpassword"}
_NAME = re.compile(r"^[^\x00-\x1f\x7f/]{1,255}$")
_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*):[^@\s]*@")


@dataclass(frozen=True)
class PoolAddress:
    """A database (`conninfo`, a libpq URI without password) and an experience in it."""

    conninfo: str
    experience: str

    @property
    def display(self) -> str:
        return f"{self.conninfo}#{self.experience}"


def is_pool_address(text: str) -> bool:
    return text.split("://", 1)[0].lower() in SCHEMES and "://" in text


def hide_passwords(text: str) -> str:
    """`text` with the password of any PostgreSQL URI in it replaced by `***`."""
    text = _URI_PASSWORD.sub(r"\1:***@", text)
    return re.sub(r"((?:ssl)?password=)[^&\s#]*", r"\1***", text)


def parse_database(text: str) -> str:
    """A pool database URI (no fragment, no password), checked; returns it unchanged."""
    parts = urlsplit(text)
    shown = hide_passwords(text)
    if parts.scheme.lower() not in SCHEMES:
        raise HarnessError(
            f"{shown!r} is not a PostgreSQL address",
            "write postgresql://USER@HOST:PORT/DBNAME",
        )
    secret = parts.password is not None or any(
        name in _SECRET_PARAMS for name, _ in parse_qsl(parts.query)
    )
    if secret:
        raise HarnessError(
            f"{shown}: the address holds a password, which mcp-harness never stores or passes on",
            "remove it from the address and give it to libpq instead: PGPASSWORD, a line in "
            "~/.pgpass, or a service file (PGSERVICE)",
        )
    return text


def parse_pool_address(text: str) -> PoolAddress:
    """Split `postgresql://…#EXPERIENCE` into database and experience name."""
    base, sep, fragment = text.partition("#")
    database = parse_database(base)
    if not sep or not _NAME.match(fragment):
        raise HarnessError(
            f"{hide_passwords(text)}: no experience name after '#'"
            if not fragment
            else f"{hide_passwords(text)}: experience name {fragment!r} is not usable",
            "end the address with #NAME (1-255 characters, no '/' or control characters), "
            "e.g. postgresql://me@db:5432/team#shell",
        )
    return PoolAddress(database, fragment)


def config() -> dict[str, Any]:
    """`<data home>/config.toml` (empty when there is none)."""
    path = data_home() / "config.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise HarnessError(f"cannot read {path}: {exc}", "fix or move the file") from None


def _table(name: str) -> dict[str, Any]:
    table = config().get(name, {})
    if not isinstance(table, dict):
        raise HarnessError(
            f"{data_home() / 'config.toml'}: [{name}] must be a table", f"write [{name}]"
        )
    return table


def pool_settings() -> tuple[str | None, float]:
    """The `[pool]` table: `uri` (where harvest pushes by default) and `others_weight` (the
    factor on other users' rows in search: 1 = as one's own, 0 = hidden)."""
    table = _table(POOL)
    uri = table.get("uri")
    weight = table.get("others_weight", 1.0)
    where = f"{data_home() / 'config.toml'} [{POOL}]"
    if uri is not None and not isinstance(uri, str):
        raise HarnessError(f"{where}: uri must be a string", 'write uri = "postgresql://…"')
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise HarnessError(f"{where}: others_weight must be a number from 0 to 1", "write e.g. 0.5")
    return (parse_database(uri) if uri else None), float(weight)


def is_store_name(name_or_path: str) -> bool:
    """Whether an argument has the form of a `[stores]` name (no path separator, no dot)."""
    return "/" not in name_or_path and not name_or_path.startswith(".")


def resolve_store(name_or_path: str, base: Path | None = None) -> Path | PoolAddress:
    """The store an experience argument names (see the module docstring for the rules);
    `base`: the module directory relative paths start from."""
    if is_pool_address(name_or_path):
        return parse_pool_address(name_or_path)
    if is_store_name(name_or_path):
        named = _table(STORES).get(name_or_path)
        if isinstance(named, str):
            return parse_pool_address(named)
        if named is not None:
            raise HarnessError(
                f"[{STORES}] {name_or_path} in {data_home() / 'config.toml'} is not a string",
                f'write {name_or_path} = "postgresql://USER@HOST:PORT/DBNAME#EXPERIENCE"',
            )
    if base is not None:
        return (base / Path(name_or_path).expanduser()).absolute()
    return resolve_experience(name_or_path)


OPEN, NEW, ENSURE = "open", "new", "ensure"  # ways to open: existing, a new one, either


def open_store(
    name_or_path: str, mode: str = OPEN, *, others_weight: float | None = None
) -> Experience | PoolExperience:
    """Open the experience an argument names (`NEW`: create it, `ENSURE`: create it when
    missing); a pool store holds a connection: close it (`close_store`, or use `opened`)."""
    return open_at(resolve_store(name_or_path), mode, others_weight=others_weight)


def open_at(
    where: Path | PoolAddress, mode: str = OPEN, *, others_weight: float | None = None
) -> Experience | PoolExperience:
    """`open_store` for a store `resolve_store` has found."""
    if isinstance(where, PoolAddress):
        from mcp_harness.experience.pg_store import PoolExperience

        if others_weight is None:
            others_weight = pool_settings()[1]
        return PoolExperience.open(where, mode, others_weight=others_weight)
    from mcp_harness.experience.store import Experience

    if mode == NEW or (mode == ENSURE and not (where / "shape").is_file()):
        return Experience.create(where)
    return Experience.open(where)


def close_store(store: Experience | PoolExperience) -> None:
    """Close a pool store's connection (a file store holds nothing open)."""
    close = getattr(store, "close", None)
    if close is not None:
        close()


@contextlib.contextmanager
def opened(
    name_or_path: str, mode: str = OPEN, *, others_weight: float | None = None
) -> Iterator[Experience | PoolExperience]:
    """`open_store` for the length of a `with` block (a pool store's connection is closed)."""
    store = open_store(name_or_path, mode, others_weight=others_weight)
    try:
        yield store
    finally:
        close_store(store)
