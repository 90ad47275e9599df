"""The PostgreSQL pool from the command line: addresses, named stores, push / pull, harvest --to,
other users' rows, access control the database enforces, and bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_harness.cli.main import main
from mcp_harness.errors import HarnessError
from mcp_harness.experience.backend import ENSURE, NEW, open_store, opened
from mcp_harness.experience.keywords import keywords_text
from mcp_harness.experience.store import Experience, Row
from tests.pg_fixtures import PASSWORD, PgServer
from tests.test_harvest import scenario, write


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def row(key: str, value: str, **meta) -> Row:
    return Row(keywords_text(key), key, value, **meta)


def test_cli_works_on_a_pool_address(capsys, pg_uri: str) -> None:
    assert run(capsys, "experience", "new", pg_uri)[0] == 0
    cli_json(capsys, "experience", "add", pg_uri, "list files with sizes", "ls -la")
    cli_json(capsys, "experience", "add", pg_uri, "show git status", "git status")
    hits = cli_json(capsys, "experience", "search", pg_uri, "git status")["hits"]
    assert [h["value"] for h in hits] == ["git status"]
    assert hits[0]["provenance"]["author"] == "harness_admin"
    assert cli_json(capsys, "experience", "stats", pg_uri)["rows"] == 2
    edited = cli_json(capsys, "experience", "edit", pg_uri, "0", "--weight", "0.5")
    assert edited["weight"] == 0.5
    assert run(capsys, "experience", "delete", pg_uri, "1")[0] == 0
    shown = cli_json(capsys, "experience", "show", pg_uri)
    assert [r["value"] for r in shown] == ["ls -la"]
    code, _, err = run(capsys, "experience", "new", pg_uri)
    assert code == 2 and "already exists" in err


def test_a_named_store_in_config(capsys, pg_uri: str, harness_home: Path) -> None:
    harness_home.mkdir(parents=True, exist_ok=True)
    (harness_home / "config.toml").write_text(f'[stores]\nteam = "{pg_uri}"\n')
    assert run(capsys, "experience", "new", "team")[0] == 0
    cli_json(capsys, "experience", "add", "team", "disk usage", "df -h")
    with opened(pg_uri) as pool:
        assert [r.value for r in pool.rows()] == ["df -h"]
    assert not (harness_home / "experience" / "team").exists()


def test_push_and_pull_copy_rows_with_provenance_once(capsys, pg_uri: str, tmp_path) -> None:
    local = Experience.create(tmp_path / "mine")
    local.append([row("build it", "make", source="harvest", fields={"session_id": "s1"})])
    local.append([row("test it", "make test", weight=0.5)])
    pushed = cli_json(capsys, "experience", "push", str(local.path), pg_uri)
    assert (pushed["added"], pushed["skipped"], pushed["rows"]) == (2, 0, 2)
    again = cli_json(capsys, "experience", "push", str(local.path), pg_uri)
    assert (again["added"], again["skipped"]) == (0, 2)
    with opened(pg_uri) as pool:
        first = pool.row(0)
        assert (first.value, first.provenance["source"], first.provenance["session_id"]) == (
            "make",
            "harvest",
            "s1",
        )
        assert first.provenance["user"] and first.provenance["host"]
        assert first.provenance["ts"] == local.row(0).provenance["ts"]
        assert pool.row(1).weight == 0.5
    other = tmp_path / "theirs"
    pulled = cli_json(capsys, "experience", "pull", pg_uri, str(other))
    assert (pulled["added"], pulled["rows"]) == (2, 2)
    copy = Experience.open(other)
    assert copy.row(0).provenance["author"] == "harness_admin"
    assert copy.row(0).provenance["pool"] == pg_uri
    assert copy.row(0).provenance["slots"] == local.row(0).provenance["slots"]
    assert cli_json(capsys, "experience", "pull", pg_uri, str(other))["added"] == 0


def test_harvest_to_a_pool_pushes_redacted_rows_with_provenance(
    capsys, pg_server: PgServer, harness_home: Path
) -> None:
    hooks, wrappers, transcripts = scenario()
    secret = "ghp_" + "A1b2C3d4E5" * 4
    hooks[2]["description"] = f"Build the project with GITHUB_TOKEN={secret}"
    write(hooks, wrappers, transcripts)
    database = pg_server.uri("x", database="harvest").split("#")[0]
    pg_server.sql("CREATE DATABASE harvest", database="postgres")
    harness_home.mkdir(parents=True, exist_ok=True)
    (harness_home / "config.toml").write_text(f'[pool]\nuri = "{database}"\n')
    report = cli_json(capsys, "harvest", "--no-transcripts")
    pushed = report["pushed"]
    assert pushed[f"{database}#src-shop.command"]["added"] > 0
    with opened(f"{database}#src-shop.command") as pool:
        rows = list(pool.rows())
    local = Experience.open(harness_home / "experience" / "src-shop.command")
    assert [r.value for r in rows] == [r.value for r in local.rows()]
    meta = rows[0].provenance
    assert meta["project"] == "src-shop" and meta["session_id"] == "sess-shop"
    assert meta["user"] and meta["host"] and meta["author"] == "harness_admin"
    everything = json.dumps([r.to_json() for r in rows])
    assert secret not in everything and "[REDACTED]" in everything
    again = cli_json(capsys, "harvest", "--no-transcripts", "--to", database)
    assert all(t["added"] == 0 for t in again["pushed"].values())
    code, _, err = run(capsys, "harvest", "--no-transcripts", "--to", database + "#x")
    assert code == 2 and "drop the #NAME part" in err


def _setup_sql(server: PgServer, database: str = "harness") -> None:
    """Run the README's access-control SQL (the documented setup, not a copy of it)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("**Access control**") :]
    block = re.search(r"```sql\n(.*?)```", section, re.S)
    assert block is not None
    sql = block.group(1).replace("DATABASE team", f"DATABASE {database}")
    for statement in sql.split(";"):
        statement = "\n".join(
            line.split("--")[0] for line in statement.splitlines() if line.split("--")[0].strip()
        )
        if statement.strip():
            server.sql(statement, database=database)
    for role in ("alice", "maxine"):
        server.sql(f"ALTER ROLE {role} PASSWORD '{PASSWORD}'", database=database)


@pytest.fixture(scope="module")
def roles(pg_server: PgServer) -> PgServer:
    pg_server.sql("CREATE DATABASE roles", database="postgres")
    with opened(pg_server.uri("seed", database="roles"), ENSURE):
        pass  # the maintainer's first use makes the schema
    _setup_sql(pg_server, "roles")
    return pg_server


def test_the_database_enforces_who_may_add_and_delete(roles: PgServer) -> None:
    import psycopg

    shared = roles.uri("shared", user="maxine", database="roles")
    with opened(shared, NEW) as maintainer:
        maintainer.append([row("show disk usage", "df -h")])
    alice_uri = roles.uri("shared", user="alice", database="roles")
    with opened(alice_uri) as alice:
        alice.append([row("list open ports", "ss -tlnp")])
        assert [r.provenance["author"] for r in alice.rows()] == ["maxine", "alice"]
        with pytest.raises(HarnessError, match="may not delete rows") as info:
            alice.delete([0])
        assert "maintainer" in str(info.value)
        with pytest.raises(HarnessError, match="may not edit rows"):
            alice.patch(0, weight=0.0)
        assert len(alice) == 2 and alice.row(0).weight == 1.0
        alice.append([row("after a refusal", "true")])  # the connection still works
    conninfo = f"host={roles.host} port={roles.port} user=alice dbname=roles"
    with psycopg.connect(conninfo) as raw, pytest.raises(psycopg.errors.InsufficientPrivilege):
        raw.execute(  # a client cannot claim another author
            "INSERT INTO mcp_harness.rows (experience, query, key, value, weight, meta, author,"
            " changed, terms_changed) VALUES ('shared', 'q', 'k', 'v', 1, '{}', 'maxine', 0, 0)"
        )
    with opened(shared) as maintainer:
        assert maintainer.delete([0]) == 1
        assert [r.value for r in maintainer.rows()] == ["ss -tlnp", "true"]


def test_other_users_rows_are_marked_and_down_weighted(roles: PgServer) -> None:
    name = "weights"
    with opened(roles.uri(name, user="maxine", database="roles"), NEW) as maxine:
        maxine.append([row("restart the web server", "systemctl restart nginx")])
    alice_uri = roles.uri(name, user="alice", database="roles")
    with opened(alice_uri) as alice:
        alice.append([row("restart the web server", "sudo systemctl restart nginx")])
        full = alice.search("restart web server")
    with opened(alice_uri, others_weight=0.5) as alice:
        half = alice.search("restart web server")
    with opened(alice_uri, others_weight=0.0) as alice:
        hidden = alice.search("restart web server")
    assert [h.row.index for h in full] == [0, 1] and full[0].score == full[1].score
    assert [h.row.provenance["author"] for h in half] == ["alice", "maxine"]
    assert half[1].score == pytest.approx(full[0].score / 2)
    assert [h.row.value for h in hidden] == ["sudo systemctl restart nginx"]


def test_a_plain_user_cannot_make_the_schema(pg_server: PgServer) -> None:
    pg_server.sql("CREATE DATABASE empty", database="postgres")
    pg_server.sql(f"CREATE ROLE carol LOGIN PASSWORD '{PASSWORD}'", database="postgres")
    pg_server.sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC", database="empty")
    pg_server.sql("REVOKE CREATE ON DATABASE empty FROM PUBLIC", database="empty")
    with pytest.raises(HarnessError, match="may not make it") as info:
        open_store(pg_server.uri("x", user="carol", database="empty"), NEW)
    assert "maintainer" in str(info.value)


# ---- bad input ------------------------------------------------------------------------------
def test_unreachable_server_is_named(capsys) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once the probe closes
    uri = f"postgresql://me@127.0.0.1:{port}/db#shell"
    code, _, err = run(capsys, "experience", "stats", uri)
    assert code == 2
    assert f"127.0.0.1:{port}/db#shell: cannot reach the PostgreSQL server" in err
    assert "fix:" in err and "Traceback" not in err


def test_wrong_credentials_are_named(capsys, pg_uri: str, monkeypatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    code, _, err = run(capsys, "experience", "new", pg_uri)
    assert code == 2 and "wrong or missing credentials" in err
    assert "PGPASSWORD" in err and "not-the-password" not in err


def test_a_password_in_the_address_is_refused_and_never_echoed(capsys, pg_server) -> None:
    uri = f"postgresql://harness_admin:hunter2secret@{pg_server.host}:{pg_server.port}/harness#x"
    code, _, err = run(capsys, "experience", "new", uri)
    assert code == 2 and "hunter2secret" not in err
    assert "harness_admin:***@" in err and "~/.pgpass" in err
    code, _, err = run(capsys, "experience", "new", uri.replace("#x", "?password=hunter2secret#x"))
    assert code == 2 and "hunter2secret" not in err


def test_address_without_experience_name(capsys, pg_server) -> None:
    code, _, err = run(capsys, "experience", "new", pg_server.uri("x").split("#")[0])
    assert code == 2 and "no experience name after '#'" in err


def test_missing_experience_names_the_fix(pg_uri: str) -> None:
    with pytest.raises(HarnessError, match="no experience of that name") as info:
        open_store(pg_uri)
    assert "mcp-harness experience new" in str(info.value)


def test_another_schema_version_is_refused(pg_server: PgServer) -> None:
    pg_server.sql("CREATE DATABASE future", database="postgres")
    uri = pg_server.uri("x", database="future")
    open_store(uri, NEW).close()
    pg_server.sql("UPDATE mcp_harness.meta SET value = '99'", database="future")
    with pytest.raises(HarnessError, match="schema is version 99, this mcp-harness uses") as info:
        open_store(uri)
    assert "future#x" in str(info.value)


def test_a_row_that_fails_validation_stores_nothing(pg_uri: str) -> None:
    with opened(pg_uri, NEW) as pool:
        pool.append([row("keep me", "true")])
        with pytest.raises(HarnessError, match=r"row 1 has a NUL character in its value"):
            pool.append([row("fine", "ok"), row("bad", "a\x00b")])
        with pytest.raises(HarnessError, match="row weight must be a number"):
            pool.push([row("fine", "ok"), row("negative", "x", weight=-1.0)])
        with pytest.raises(HarnessError, match="NUL character in its provenance"):
            pool.update({0: {"fields": {"note": "x\x00"}}})
        assert [r.value for r in pool.rows()] == ["true"]
    with opened(pg_uri) as fresh:
        assert [r.value for r in fresh.rows()] == ["true"]


def test_pool_commands_without_psycopg_name_the_extra(harness_home: Path) -> None:
    probe = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from mcp_harness.cli.main import main\n"
        "sys.exit(main(['experience', 'stats', 'postgresql://me@127.0.0.1:1/db#x']))"
    )
    env = {**os.environ, "MCP_HARNESS_HOME": str(harness_home)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "pip install 'mcp-harness[pool]'" in done.stderr


def test_file_commands_never_import_psycopg(harness_home: Path) -> None:
    probe = (
        "import sys; from mcp_harness.cli.main import main\n"
        "try: main(['--help'])\n"
        "except SystemExit: pass\n"
        "main(['experience', 'new', 'local']); main(['experience', 'search', 'local', 'git'])\n"
        "print('psycopg' in sys.modules)"
    )
    env = {**os.environ, "MCP_HARNESS_HOME": str(harness_home)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_missing_database_names_createdb(capsys, pg_server: PgServer) -> None:
    code, _, err = run(capsys, "experience", "new", pg_server.uri("x", database="nowhere"))
    assert code == 2 and 'database "nowhere" does not exist' in err and "createdb" in err


def test_bad_pool_settings_are_named(capsys, pg_uri: str, harness_home: Path) -> None:
    harness_home.mkdir(parents=True, exist_ok=True)
    (harness_home / "config.toml").write_text("[pool]\nothers_weight = 3\n")
    code, _, err = run(capsys, "experience", "stats", pg_uri)
    assert code == 2 and "others_weight must be a number from 0 to 1" in err


def test_training_refuses_a_role_that_may_not_edit(capsys, roles: PgServer, tmp_path) -> None:
    from tests.test_pg_modules import TRAIN, write_module

    with opened(roles.uri("trained", user="maxine", database="roles"), NEW) as maintainer:
        maintainer.append([row("Create the dist directory", "mkdir -p dist")])
    alice = roles.uri("trained", user="alice", database="roles")
    module = write_module(tmp_path / "mod", "mod", {"decision": alice, "command": alice})
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps(TRAIN) + "\n")
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", str(module), "--data", str(data), "--out", str(out))
    assert code == 2 and "Traceback" not in err
    assert f"{alice}: your database role may not edit rows, which every training step" in err
    assert "fix: ask a maintainer" in err and "mcp-harness experience pull" in err
    assert not out.exists()  # refused before anything was written
