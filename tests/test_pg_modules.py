"""A module's experience and graph_run's in a PostgreSQL pool: the same rows and scores as the
file copy, training written to the pool, and bad addresses named (real PostgreSQL, the CLI and
a real MCP client)."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from pathlib import Path

import pytest
from mcp import Client

from mcp_harness.cli.main import main
from mcp_harness.experience.backend import NEW, opened
from mcp_harness.experience.store import Experience
from mcp_harness.experience.transfer import as_row
from mcp_harness.kernels.offline import OfflineKernel
from mcp_harness.runtime import module as modules
from mcp_harness.server.app import build_server
from tests.pg_fixtures import PgServer

CHAIN = {
    "dims": {"batch": 1},
    "inputs": {"task": ["batch"]},
    "nodes": [
        {"id": "task", "op": "ft_input", "args": {"input": "task", "shape": ["batch"]}},
        *(
            {"id": name, "op": "ft_expert", "inputs": [upstream], "args": {"experience": name}}
            for name, upstream in (("decision", "task"), ("command", "decision"))
        ),
    ],
    "output": "command",
}
TASKS = [
    "Show which files changed in the git working tree",
    "see the last commits on this branch",
    "create a branch called feature",
    "quantum flux capacitor",
]
TRAIN = {
    "inputs": {"task": "Make a directory named dist"},
    "targets": {"decision": "Create the dist directory", "command": "mkdir -p dist"},
}
VAL = {
    "inputs": {"task": "Make a directory called dist"},
    "targets": {"decision": "Create the dist directory", "command": "mkdir -p dist"},
}


def write_module(root: Path, name: str, experience: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    spec = {"name": name, **CHAIN, "experience": experience}
    (root / modules.SPEC).write_text(json.dumps(spec, indent=2))
    return root


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def twins(tmp_path: Path, pg_server: PgServer, harness_home: Path) -> tuple[Path, Path]:
    """The coder's seed experience as files in one module, and copied into the pool for
    another that names `decision` by its address and `command` by a `[stores]` name."""
    files = modules.new("files", template="coder", target=tmp_path / "files")
    write_module(files, "files", {n: f"experience/{n}" for n in ("decision", "command")})
    uris = {name: pg_server.uri("m" + uuid.uuid4().hex[:12]) for name in ("decision", "command")}
    for name, uri in uris.items():
        with opened(uri, NEW) as pool:
            pool.append(as_row(r) for r in Experience.open(files / "experience" / name).rows())
    harness_home.mkdir(parents=True, exist_ok=True)
    (harness_home / "config.toml").write_text(f'[stores]\nteam_command = "{uris["command"]}"\n')
    pooled = write_module(
        tmp_path / "pooled", "pooled", {"decision": uris["decision"], "command": "team_command"}
    )
    return files, pooled


def elements(module: modules.Module, run_dir: Path) -> list[tuple]:
    report = asyncio.run(
        modules.run(module, {"task": TASKS}, kernel=OfflineKernel(), run_dir=run_dir)
    )
    return [(e.text, str(e.status), e.meta.get("rows")) for e in report.elements]


def test_a_module_on_the_pool_retrieves_what_its_file_copy_does(twins, tmp_path: Path) -> None:
    files, pooled = twins
    on_files, on_pool = modules.load(str(files)), modules.load(str(pooled))
    try:
        assert on_pool.summary()["experience"]["decision"]["path"].startswith("postgresql://")
        for name in ("decision", "command"):
            rows = list(on_files.experience[name].rows())
            assert len(on_pool.experience[name]) == len(rows) == 42
            for query in [*TASKS, *(r.key for r in rows[::5])]:
                for method in ("jaccard", "bm25"):
                    hits = [
                        [(h.row.index, h.score, h.row.value) for h in m.experience[name].search(
                            query, k=4, method=method)]
                        for m in (on_files, on_pool)
                    ]  # fmt: skip
                    assert hits[0] == hits[1]
        ran = elements(on_files, tmp_path / "run-files")
        assert ran == elements(on_pool, tmp_path / "run-pool")
        assert sum(status.startswith("confidence") for _, status, _ in ran) >= 3
    finally:
        on_files.close()
        on_pool.close()


def _learnt(module_dir: Path) -> list[tuple]:
    loaded = modules.load(str(module_dir))
    try:
        return [
            (name, r.query, r.key, r.value, round(r.weight, 6), r.provenance["source"])
            for name, store in loaded.experience.items()
            for r in store.rows()
        ]
    finally:
        loaded.close()


def test_training_writes_to_the_pool_as_to_files(capsys, twins, tmp_path: Path) -> None:
    files, pooled = twins
    data, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    data.write_text(json.dumps(TRAIN) + "\n")
    val.write_text(json.dumps(VAL) + "\n")
    results = []
    for module_dir in (files, pooled):
        out = tmp_path / f"train-{module_dir.name}"
        code, stdout, err = run_cli(
            capsys, "train", str(module_dir), "--data", str(data), "--val", str(val),
            "--epochs", "2", "--batch", "1", "--out", str(out), "--json",
        )  # fmt: skip
        assert code == 0, err
        results.append(json.loads(stdout))
        assert not (out / "pending-step.json").exists()  # every step committed whole
        for epoch in (0, 1, 2):  # checkpoints are file copies, of the pool's rows too
            copy = Experience.open(out / f"epoch-{epoch}" / "experience" / "command")
            assert len(copy) >= 42
    assert [e["steps_accepted"] for e in results[1]["epochs"]] == [
        e["steps_accepted"] for e in results[0]["epochs"]
    ]
    assert results[1]["epochs"][0]["steps_accepted"] >= 1
    learnt = _learnt(pooled)
    assert learnt == _learnt(files)
    trained = [row for row in learnt if row[5] == "training"]
    assert ("command", "Create the dist directory", "mkdir -p dist") in {
        (name, key, value) for name, _, key, value, _, _ in trained
    }
    out = tmp_path / "train-pooled"
    checkpoint = Experience.open(out / "epoch-2" / "experience" / "command")
    address = json.loads((out / "train.json").read_text())["experience"]["command"]
    with opened(address) as pool:
        assert [r.value for r in checkpoint.rows()] == [r.value for r in pool.rows()]
        pool.append([as_row(checkpoint.row(0), note="written by someone else meanwhile")])
        count = len(pool)
    code, stdout, err = run_cli(capsys, "train", "--resume", str(out), "--epochs", "3")
    assert code == 0, err
    assert "from checkpoint epoch-2: epoch 3" in stdout
    with opened(address) as pool:  # the pool went on as it was, never rewound
        assert len(pool) >= count and pool.row(count - 1).provenance["note"]


# ---- bad input ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe closes


def test_bad_pool_addresses_in_a_module_are_named(
    capsys, tmp_path: Path, pg_server: PgServer, harness_home: Path
) -> None:
    port = _free_port()
    unreachable = write_module(
        tmp_path / "far", "far", {"decision": f"postgresql://me@127.0.0.1:{port}/db#d",
                                  "command": "experience/command"},
    )  # fmt: skip
    code, _, err = run_cli(capsys, "module", "show", str(unreachable))
    assert code == 2 and "Traceback" not in err
    assert f"module 'far': experience 'decision': postgresql://me@127.0.0.1:{port}/db#d: " in err
    assert "cannot reach the PostgreSQL server" in err and "fix: check the host and port" in err

    unknown = write_module(tmp_path / "typo", "typo", {"decision": "teem", "command": "teem"})
    code, _, err = run_cli(capsys, "module", "run", str(unknown), "--input", "task=x")
    assert code == 2 and "Traceback" not in err
    assert "experience 'decision': 'teem' is neither a store in [stores]" in err
    assert 'fix: name a pool store: add teem = "postgresql://' in err

    pg_server.sql("CREATE DATABASE modfuture", database="postgres")
    future = pg_server.uri("d", database="modfuture")
    with opened(future, NEW):
        pass
    pg_server.sql("UPDATE mcp_harness.meta SET value = '99'", database="modfuture")
    old = write_module(tmp_path / "old", "old", {"decision": future, "command": future})
    code, _, err = run_cli(capsys, "module", "validate", str(old))
    assert code == 2 and "Traceback" not in err
    assert f"experience 'decision': {future}: the pool's schema is version 99" in err
    assert "fix: use an mcp-harness release that speaks that version" in err

    harness_home.mkdir(parents=True, exist_ok=True)
    (harness_home / "config.toml").write_text("[stores]\nteem = 3\n")
    code, _, err = run_cli(capsys, "module", "show", str(unknown))
    assert code == 2 and "experience 'decision': [stores] teem in" in err


# ---- the MCP tools --------------------------------------------------------------------------
async def test_graph_run_and_module_show_take_pool_experience(
    twins, harness_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, pooled = twins
    monkeypatch.chdir(tmp_path)  # the modules are inside the server's allowed roots
    spec = {"name": "chain", **CHAIN, "experience": {"decision": "x", "command": "y"}}
    async with Client(build_server(), mode="legacy") as client:

        async def graph_run(experience: dict[str, str]) -> list[tuple]:
            result = await client.call_tool(
                "graph_run", {"spec": spec, "inputs": {"task": TASKS}, "experience": experience}
            )
            assert not result.is_error, result.content[0].text
            out = result.structured_content["elements"]
            return [(e["text"], e["status"], e["meta"].get("rows")) for e in out]

        decision = json.loads((pooled / modules.SPEC).read_text())["experience"]["decision"]
        on_files = await graph_run(
            {n: str(files / "experience" / n) for n in ("decision", "command")}
        )
        assert on_files == await graph_run({"decision": decision, "command": "team_command"})

        shown = await client.call_tool("module_show", {"module": str(pooled)})
        assert not shown.is_error, shown.content[0].text
        paths = {e["name"]: e["path"] for e in shown.structured_content["experience"]}
        assert paths["decision"] == decision and paths["command"].startswith("postgresql://")

        failed = await client.call_tool(
            "graph_run", {"spec": spec, "inputs": {"task": ["x"]},
                          "experience": {"decision": "teem", "command": "teem"}},
        )  # fmt: skip
        text = failed.content[0].text
        assert failed.is_error and "Traceback" not in text
        assert "graph experience 'decision': no experience at" in text and "[stores]" in text

        far = f"postgresql://me@127.0.0.1:{_free_port()}/db#d"
        failed = await client.call_tool(
            "graph_run", {"spec": spec, "inputs": {"task": ["x"]},
                          "experience": {"decision": far, "command": far}},
        )  # fmt: skip
        text = failed.content[0].text
        assert failed.is_error and "Traceback" not in text
        assert f"graph experience 'decision': {far}: cannot reach the PostgreSQL server" in text
