"""Experience tensors: rows, provenance, retrieval, persistence, crash safety, concurrency."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mcp_harness.errors import CorruptTensorError, HarnessError
from mcp_harness.experience.index import RetrievalIndex
from mcp_harness.experience.keywords import extract_keywords, keywords_text
from mcp_harness.experience.store import Experience, Row
from mcp_harness.storage import layout
from mcp_harness.storage.transaction import Transaction
from tests.pg_fixtures import Stores


def check_layout(tensor_dir: Path) -> tuple[int, ...]:
    """The directory's shape, after checking that its storage agrees with it."""
    shape = layout.read_shape(tensor_dir)
    layout.scan_elements(tensor_dir, shape)
    return shape


def write_rows(tensor_dir: Path, rows: list[list[str]]) -> None:
    """A tensor written from the layout rules alone (as the seed writes one)."""
    tensor_dir.mkdir(parents=True)
    layout.write_shape(tensor_dir, (len(rows), len(rows[0])))
    for flat, text in enumerate(cell for cells in rows for cell in cells):
        layout.write_element(tensor_dir, flat, text)


def row(key: str, value: str, **meta) -> Row:
    return Row(keywords_text(key), key, value, **meta)


SHELL = [
    row("show git status of the repo", "git status"),
    row("list files with sizes", "ls -la"),
    row("commit staged changes in git", "git commit -m msg"),
    row("run python tests", "python -m pytest -q"),
    row("show disk usage", "df -h"),
]


@pytest.fixture
def file_exp(tmp_path: Path) -> Experience:
    experience = Experience.create(tmp_path / "exp")
    experience.append(SHELL)
    return experience


@pytest.fixture
def exp(stores: Stores) -> Experience:
    """The shell rows, on each backend (tests taking it run on files and on PostgreSQL)."""
    experience = stores.new()
    experience.append(SHELL)
    return experience


def test_new_experience_is_an_empty_seed_tensor(tmp_path: Path) -> None:
    experience = Experience.create(tmp_path / "e")
    assert len(experience) == 0
    assert (tmp_path / "e" / "shape").read_text() == "[0, 3]"
    assert experience.search("anything") == []  # explicit empty, never random rows
    assert check_layout(tmp_path / "e") == (0, 3)


def test_rows_are_seed_layout_with_provenance(file_exp: Experience) -> None:
    exp = file_exp
    assert check_layout(exp.path) == (5, 3)
    cell = {
        col: layout.read_element(exp.path, layout.flat_index((5, 3), (1, col))) for col in range(3)
    }
    assert cell[1] == "list files with sizes"
    assert cell[2] == "ls -la"
    assert cell[0] == "list\nfiles\nsizes"
    stored = exp.row(1)
    assert stored.weight == 1.0
    assert stored.provenance["source"] == "manual"
    assert "ts" in stored.provenance


def test_provenance_fields_are_kept(stores: Stores) -> None:
    experience = stores.new()
    experience.append(
        [row("build it", "make", source="harvest", fields={"session_id": "s1", "exit_code": 0})]
    )
    reopened = stores.reopen(experience)
    meta = reopened.row(0).provenance
    assert (meta["source"], meta["session_id"], meta["exit_code"]) == ("harvest", "s1", 0)


def test_search_ranks_by_jaccard_and_bm25(exp: Experience) -> None:
    jaccard = exp.search("git status", k=3)
    assert [h.row.value for h in jaccard] == ["git status", "git commit -m msg"]
    assert jaccard[0].score == pytest.approx(2 / 4)  # {git, status} vs {show, git, status, repo}
    bm25 = exp.search("git status", k=3, method="bm25")
    assert bm25[0].row.value == "git status"
    assert exp.search("zebra crossing") == []


def test_ties_break_by_row_index(stores: Stores) -> None:
    experience = stores.new()
    experience.append([row("alpha beta", f"v{i}") for i in range(6)])
    assert [h.row.index for h in experience.search("alpha beta", k=4)] == [0, 1, 2, 3]
    experience.patch(4, weight=2.0)
    assert [h.row.index for h in experience.search("alpha", k=2)] == [4, 0]


def test_weight_scales_and_zero_weight_hides(exp: Experience) -> None:
    exp.patch(0, weight=0.0)
    assert [h.row.index for h in exp.search("git status")] == [2]


def test_noise_needs_a_seed_and_is_reproducible(exp: Experience) -> None:
    with pytest.raises(HarnessError, match="needs an explicit seed"):
        exp.search("git", noise=0.5)
    first = [h.row.index for h in exp.search("git", k=5, noise=1.0, seed=7)]
    again = [h.row.index for h in exp.search("git", k=5, noise=1.0, seed=7)]
    assert first == again and len(first) == 5  # noise lets every row be explored


def test_bad_arguments_are_named(exp: Experience) -> None:
    with pytest.raises(HarnessError, match="unknown retrieval method 'cosine'"):
        exp.search("git", method="cosine")
    with pytest.raises(HarnessError, match="k must be at least 1"):
        exp.search("git", k=0)
    with pytest.raises(HarnessError, match=r"row 9 does not exist .* \(5 rows\)"):
        exp.row(9)


def test_wrong_width_row_is_rejected() -> None:
    with pytest.raises(HarnessError, match=r"needs 3 cells \(query, key, value\), got 2"):
        Row.from_list(["a", "b"])
    with pytest.raises(HarnessError, match="must be text"):
        Row.from_list(["a", "b", 3])


def test_unknown_experience_path(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no experience here") as info:
        Experience.open(tmp_path / "nope")
    assert "mcp-harness experience new" in str(info.value)


def test_not_an_experience_shape(tmp_path: Path) -> None:
    write_rows(tmp_path / "t", [["a", "b"]])
    with pytest.raises(CorruptTensorError, match=r"shape \[N, 3\], found \[1, 2\]"):
        Experience.open(tmp_path / "t")


def test_patch_reindexes_and_persists(exp: Experience, stores: Stores) -> None:
    exp.patch(1, query="docker\ncontainers", value="docker ps")
    assert [h.row.value for h in exp.search("docker containers")] == ["docker ps"]
    assert exp.search("list files sizes") == []
    reopened = stores.reopen(exp)
    assert reopened.row(1).value == "docker ps"
    assert [h.row.index for h in reopened.search("docker")] == [1]


def test_delete_shifts_rows_and_keeps_provenance(exp: Experience, stores: Stores) -> None:
    exp.patch(3, fields={"note": "kept"})
    assert exp.delete([0, 2]) == 2
    assert [r.value for r in exp.rows()] == ["ls -la", "python -m pytest -q", "df -h"]
    assert exp.row(1).provenance["note"] == "kept"
    reopened = stores.reopen(exp)
    assert len(reopened) == 3
    assert reopened.row(1).provenance["note"] == "kept"
    assert [h.row.index for h in reopened.search("disk usage")] == [2]
    if stores.kind == "file":
        assert not layout.element_path(exp.path, 9).exists()  # old row 3 files removed
        check_layout(exp.path)  # storage agrees with the shape


def test_secrets_are_redacted_before_writing(stores: Stores, tmp_path: Path) -> None:
    experience = stores.new()
    key = "sk-ant-api03-" + "A1b2C3d4" * 10
    experience.append(
        [
            row(
                "call the api",
                f"ANTHROPIC_API_KEY={key} claude -p hi",
                fields={"env": f"token={key}"},
            )
        ]
    )
    stored = stores.reopen(experience).row(0)
    assert key not in json.dumps(stored.to_json())
    assert "[REDACTED]" in stored.value
    if stores.kind == "file":
        on_disk = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
        assert key.encode() not in on_disk


def test_other_process_changes_are_seen(exp: Experience, stores: Stores) -> None:
    other = stores.reopen(exp)
    other.append([row("restart nginx server", "systemctl restart nginx")])
    other.patch(0, value="git status -sb")
    assert [h.row.value for h in exp.search("restart nginx")] == ["systemctl restart nginx"]
    assert exp.row(0).value == "git status -sb"


def test_a_repeated_search_follows_every_change(exp: Experience, stores: Stores) -> None:
    """The same search asked again after each kind of change (answers are memoised per index
    version) gives what a freshly opened experience gives."""

    def answer(experience: Experience) -> list[tuple[int, float, str]]:
        return [(h.row.index, h.score, h.row.value) for h in experience.search("git status", k=3)]

    changes = [
        lambda: exp.append([row("git status short", "git status -s")]),
        lambda: exp.patch(0, weight=0.5),
        lambda: exp.patch(2, query="git\nstatus\ncommit"),
        lambda: exp.patch(0, value="git status -sb"),
        lambda: exp.set_weights([1.0, 1.0, 3.0, 1.0, 1.0, 1.0]),
        lambda: exp.delete([2]),
        lambda: stores.reopen(exp).append([row("git status", "git status --porcelain")]),
    ]
    assert answer(exp) == answer(exp) == answer(stores.reopen(exp))
    for change in changes:
        before = answer(exp)
        change()
        assert answer(exp) == answer(stores.reopen(exp)), change
        assert answer(exp) != before or change is changes[3]


def test_incremental_index_matches_a_fresh_build(stores: Stores) -> None:
    """Random appends, patches, deletes and weights; the live index equals one built from disk."""
    rng = random.Random(3)
    words = [f"w{i}" for i in range(40)]
    experience = stores.new()
    follower = stores.reopen(experience)  # follows the changes another process makes
    for _ in range(60):
        op = rng.random()
        if op < 0.5 or len(experience) < 3:
            experience.append(
                [
                    Row("\n".join(rng.sample(words, rng.randint(1, 6))), "k", "v")
                    for _ in range(rng.randint(1, 4))
                ]
            )
        elif op < 0.7:
            experience.patch(rng.randrange(len(experience)), query="\n".join(rng.sample(words, 3)))
        elif op < 0.85:
            experience.patch(rng.randrange(len(experience)), weight=rng.choice([0.0, 0.5, 2.0]))
        else:
            experience.delete(rng.sample(range(len(experience)), 2))
        if rng.random() < 0.3:
            follower.search("w1 w2")
    fresh = stores.reopen(experience)
    for _ in range(30):
        query = " ".join(rng.sample(words, 3))
        for method in ("jaccard", "bm25"):
            live = [(h.row.index, round(h.score, 5)) for h in experience.search(query, 8, method)]
            built = [(h.row.index, round(h.score, 5)) for h in fresh.search(query, 8, method)]
            followed = [(h.row.index, round(h.score, 5)) for h in follower.search(query, 8, method)]
            assert live == built == followed


def test_index_rebuild_keeps_results() -> None:
    index = RetrievalIndex()
    index.append([["a", "b"], ["b", "c"], ["c"]], [1.0, 1.0, 1.0])
    before = index.search(["b", "c"], k=3, method="bm25")
    index.rebuild()
    assert index.search(["b", "c"], k=3, method="bm25") == before


def test_committed_journal_is_replayed_on_open(file_exp: Experience) -> None:
    exp = file_exp
    txn = Transaction(exp.path)
    txn.write(layout.element_relpath(2), "new value")
    txn.write(layout.element_relpath(5), "second")
    # Simulate a crash right after the commit point: journal written, nothing applied.
    txn._staging.mkdir(exist_ok=True)
    (txn._staging / "journal.json").write_text(json.dumps(txn._ops))
    reopened = Experience.open(exp.path)
    assert (reopened.row(0).value, reopened.row(1).value) == ("new value", "second")
    assert not (exp.path / ".txn").exists()


def test_uncommitted_staging_is_discarded(file_exp: Experience) -> None:
    exp = file_exp
    txn = Transaction(exp.path)
    txn.write(layout.element_relpath(2), "never committed")
    reopened = Experience.open(exp.path)
    assert reopened.row(0).value == "git status"
    assert not (exp.path / ".txn").exists()


def test_uncommitted_append_is_rolled_back(file_exp: Experience) -> None:
    exp = file_exp
    txn = Transaction(exp.path)
    txn.write_new([(layout.element_relpath(15 + i), f"new {i}") for i in range(3)])
    # Crash before the commit: the new rows' files exist past the committed shape.
    assert layout.element_path(exp.path, 16).exists()
    reopened = Experience.open(exp.path)
    assert len(reopened) == 5
    assert not layout.element_path(exp.path, 16).exists()
    check_layout(exp.path)  # storage agrees with the shape again


def test_corrupt_provenance_is_named(file_exp: Experience) -> None:
    exp = file_exp
    sidecar = exp.path / "rows.jsonl"
    lines = sidecar.read_text().splitlines()
    lines[2] = "{not json"
    sidecar.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptTensorError, match=r"rows.jsonl:3: provenance line"):
        Experience.open(exp.path)


def test_seed_written_experience_without_sidecar_loads(tmp_path: Path) -> None:
    write_rows(tmp_path / "seed", [["echo\nhello", "say hello", "echo hello"]])
    experience = Experience.open(tmp_path / "seed")
    assert experience.row(0).provenance == {"source": "unknown"}
    assert [h.row.value for h in experience.search("echo")] == ["echo hello"]


_WRITER = textwrap.dedent("""
    import sys
    from mcp_harness.experience.backend import open_store
    from mcp_harness.experience.store import Row
    experience = open_store(sys.argv[1])
    tag, batches = sys.argv[2], int(sys.argv[3])
    for b in range(batches):
        experience.append([Row(f"{tag}\\nb{b}", f"{tag}-{b}-{i}", f"{tag}-{b}-{i}")
                           for i in range(20)])
        print(b, flush=True)
""")


def test_concurrent_writers_never_lose_rows(stores: Stores) -> None:
    experience = stores.new()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(experience.path), f"p{n}", "10"],
            stdout=subprocess.DEVNULL,
        )
        for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    final = stores.reopen(experience)
    assert len(final) == 4 * 10 * 20
    keys = {r.key for r in final.rows()}
    assert keys == {f"p{n}-{b}-{i}" for n in range(4) for b in range(10) for i in range(20)}
    assert all(r.key == r.value for r in final.rows())
    if stores.kind == "file":
        check_layout(experience.path)


def test_kill_9_mid_append_leaves_whole_batches(stores: Stores) -> None:
    experience = stores.new()
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(experience.path), "k", "1000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    for _ in range(3):  # wait for real progress (an event), then kill mid-stream
        writer.stdout.readline()
    writer.kill()
    writer.wait(timeout=30)
    final = stores.reopen(experience)
    assert len(final) % 20 == 0 and len(final) >= 60
    for stored in final.rows():
        assert stored.key == stored.value and stored.key.startswith("k-")
        assert stored.provenance["source"] == "manual"
    if stores.kind == "file":
        check_layout(experience.path)
    final.append([row("after crash", "ok")])
    assert stores.reopen(experience).row(len(final) - 1).value == "ok"


def test_keywords_keep_shell_words() -> None:
    assert extract_keywords(
        "Please run `git status --short` in /var/log, then ls -la ~/.bashrc"
    ) == ["run", "git", "status", "--short", "/var/log", "ls", "-la", "~/.bashrc"]
    assert extract_keywords("pytest tests/test_x.py::test_a -k foo") == [
        "pytest",
        "tests/test_x.py::test_a",
        "-k",
        "foo",
    ]
    assert extract_keywords("The THE the") == []
    assert extract_keywords("提示符后面没有其他文字") == ["提示符后面没有其他文字"]
    assert keywords_text("make -j4 && make install") == "make\n-j4\ninstall"


def test_update_patches_and_appends_in_one_commit(exp: Experience, stores: Stores) -> None:
    added = exp.update(
        {0: {"query": "status\nrepo", "weight": 0.5}, 3: {"value": "pytest -x"}},
        [row("compress data with xz", "xz -k data.csv")],
    )
    assert list(added) == [5]
    reopened = stores.reopen(exp)
    assert (reopened.row(0).query, reopened.row(0).weight) == ("status\nrepo", 0.5)
    assert reopened.row(3).value == "pytest -x"
    assert [h.row.value for h in reopened.search("xz compress")] == ["xz -k data.csv"]
    assert [h.row.value for h in exp.search("xz compress")] == ["xz -k data.csv"]
    with pytest.raises(HarnessError, match="row 9 does not exist"):
        exp.update({9: {"value": "x"}}, [row("never", "stored")])
    assert len(stores.reopen(exp)) == 6  # a bad patch stores nothing


_UPDATER = textwrap.dedent("""
    import sys
    from mcp_harness.experience.backend import open_store
    from mcp_harness.experience.store import Row
    experience = open_store(sys.argv[1])
    for step in range(1000):
        weights = {i: {"weight": float(step % 7 + 1)} for i in range(len(experience))}
        experience.update(weights, [Row(f"s{step}", f"step-{step}-{i}", f"step-{step}-{i}",
                                        weight=float(step % 7 + 1)) for i in range(10)])
        print(step, flush=True)
""")


def test_kill_9_mid_update_leaves_old_or_new_state(stores: Stores) -> None:
    experience = stores.new()
    updater = subprocess.Popen(
        [sys.executable, "-c", _UPDATER, str(experience.path)], stdout=subprocess.PIPE, text=True
    )
    assert updater.stdout is not None
    for _ in range(3):
        updater.stdout.readline()
    updater.kill()
    updater.wait(timeout=30)
    final = stores.reopen(experience)
    assert len(final) % 10 == 0 and len(final) >= 30
    steps = len(final) // 10
    weights = {r.weight for r in final.rows()}
    assert len(weights) == 1  # every row got the same step's weights: one commit, all or none
    assert all(r.key == r.value for r in final.rows())
    assert final.row(len(final) - 1).key == f"step-{steps - 1}-9"
    if stores.kind == "file":
        check_layout(experience.path)
