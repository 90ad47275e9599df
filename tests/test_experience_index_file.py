"""The persisted retrieval index: in step with every commit, and never a different answer."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mcp_harness.experience import cold as cold_path
from mcp_harness.experience import index_bytes, index_file
from mcp_harness.experience.store import GENERATION_FILE, INDEX_FILE, Experience, Row

WORDS = ["git", "status", "push", "pull", "docker", "run", "build", "logs", "pytest", "disk"]
FILES = ["run.sh", "deploy.sh", "src/app.py", "notes.txt", "42", "8080"]
LOGGER = "mcp_harness.experience.store"


def random_row(rng: random.Random) -> Row:
    words = rng.sample(WORDS, rng.randint(1, 5)) + rng.sample(FILES, rng.randint(0, 2))
    key = " ".join(words)
    value = " ".join(rng.sample(words, max(1, len(words) // 2)))
    return Row("\n".join(words), key, value, weight=round(rng.uniform(0.1, 2.0), 2))


def queries(rng: random.Random, n: int = 12) -> list[str]:
    return [" ".join(rng.sample(WORDS + FILES, rng.randint(1, 4))) for _ in range(n)]


def answers(experience: Experience, texts: list[str]) -> list:
    return [
        [(h.row.index, round(h.score, 6), h.row.key, h.row.provenance.get("source")) for h in hits]
        for text in texts
        for method in ("jaccard", "bm25")
        for hits in [experience.search(text, 8, method)]
    ]


def cold_answers(path: Path, texts: list[str]) -> list | None:
    """`answers` as `cold.search` gives them from the index file; None if it declines any."""
    out = []
    for text in texts:
        for method in ("jaccard", "bm25"):
            found = cold_path.search(path, text, 8, method)
            if found is None:
                return None
            out.append(
                [
                    (h.row.index, round(h.score, 6), h.row.key, h.row.provenance.get("source"))
                    for h in found[0]
                ]
            )
    return out


def rebuilt(path: Path) -> Experience:
    """An experience opened with its index rebuilt from the rows (the reference)."""
    scratch = path.parent / f"{path.name}-fresh"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(path, scratch, ignore=shutil.ignore_patterns(INDEX_FILE, ".lock"))
    return Experience.open(scratch)


def opened_from_index(path: Path, caplog: pytest.LogCaptureFixture) -> Experience:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        experience = Experience.open(path)
    assert not [r for r in caplog.records if r.name == LOGGER], caplog.text
    return experience


@pytest.fixture
def filled(tmp_path: Path) -> Experience:
    experience = Experience.create(tmp_path / "e")
    rng = random.Random(1)
    experience.append([random_row(rng) for _ in range(40)])
    return experience


def test_every_kind_of_change_leaves_an_index_a_new_process_uses(
    filled: Experience, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(2)
    texts = queries(rng)
    changes = [
        lambda e: e.append([random_row(rng) for _ in range(5)]),
        lambda e: e.patch(3, query="docker\nlogs\nnotes.txt"),
        lambda e: e.patch(4, key="find grep in src/app.py", value="grep src/app.py"),
        lambda e: e.patch(5, weight=0.0),
        lambda e: e.update({6: {"query": "pytest"}, 7: {"weight": 3.0}}, [random_row(rng)]),
        lambda e: e.set_weights([round(rng.uniform(0, 2), 2) for _ in range(len(e))]),
        lambda e: e.delete([0, 10, len(e) - 1]),
        lambda e: e.append([random_row(rng) for _ in range(3)]),
    ]
    for change in changes:
        change(filled)
        cold = opened_from_index(filled.path, caplog)
        assert len(cold) == len(filled)
        expected = answers(rebuilt(filled.path), texts)
        assert answers(cold, texts) == answers(filled, texts) == expected
        assert cold_answers(filled.path, texts) == expected
        assert [r.to_json() for r in cold.rows()] == [r.to_json() for r in filled.rows()]
        hits, count = cold_path.search(filled.path, texts[0], 8, "jaccard") or ([], 0)
        assert count == len(filled)
        assert [h.to_json() for h in hits] == [h.to_json() for h in filled.search(texts[0], 8)]


def test_cold_open_reads_provenance_lazily_and_fully(
    filled: Experience, caplog: pytest.LogCaptureFixture
) -> None:
    filled.patch(2, fields={"note": "kept"})
    cold = opened_from_index(filled.path, caplog)
    assert cold.row(2).provenance["note"] == "kept"
    assert cold.weights() == filled.weights()
    assert cold.stats()["sources"] == filled.stats()["sources"]
    cold.append([Row("git", "git status", "git status -s", source="late")])
    assert cold.row(len(cold) - 1).provenance["source"] == "late"
    assert opened_from_index(filled.path, caplog).row(len(cold) - 1).value == "git status -s"


def _flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: _flip_byte(p, p.stat().st_size - 3), "checksum mismatch"),
        (lambda p: os.truncate(p, p.stat().st_size // 2), "checksum mismatch"),
        (lambda p: os.truncate(p, 5), "truncated"),
        (lambda p: p.write_bytes(b"not an index at all"), "not an index file"),
        (lambda p: _flip_byte(p, 20), "corrupt header"),
        (lambda p: p.write_bytes(b""), "truncated"),
    ],
    ids=["bit-flip", "half", "short", "garbage", "header", "empty"],
)
def test_damaged_index_is_rebuilt_with_a_note(
    filled: Experience, caplog: pytest.LogCaptureFixture, damage, reason: str
) -> None:
    texts = queries(random.Random(3))
    expected = answers(filled, texts)
    damage(filled.path / INDEX_FILE)
    assert cold_answers(filled.path, texts) is None
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        reopened = Experience.open(filled.path)
    assert any(reason in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert answers(reopened, texts) == expected
    assert answers(opened_from_index(filled.path, caplog), texts) == expected  # saved again


def test_stale_index_is_detected(filled: Experience, caplog: pytest.LogCaptureFixture) -> None:
    texts = queries(random.Random(4))
    old = (filled.path / INDEX_FILE).read_bytes()
    filled.patch(1, query="docker\nbuild")  # same row count; rows.jsonl rewritten
    expected = answers(filled, texts)
    (filled.path / INDEX_FILE).write_bytes(old)
    assert cold_answers(filled.path, texts) is None
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        reopened = Experience.open(filled.path)
    assert any("stale" in r.getMessage() for r in caplog.records)
    assert answers(reopened, texts) == expected


def test_index_of_another_vocabulary_is_stale(
    filled: Experience, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Terms are canonical words: an index saved under another synonym table is not used."""
    texts = queries(random.Random(6))
    expected = answers(filled, texts)
    monkeypatch.setattr(index_bytes, "VOCABULARY", "another")
    assert cold_answers(filled.path, texts) is None
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        reopened = Experience.open(filled.path)
    assert any("vocabulary" in r.getMessage() for r in caplog.records)
    assert answers(reopened, texts) == expected


def test_commit_without_an_index_save_is_stale(filled: Experience) -> None:
    """A crash between a commit and the index save leaves the generation ahead of the index."""
    texts = queries(random.Random(5))
    expected = answers(filled, texts)
    generation = filled.path / GENERATION_FILE
    generation.write_text(str(int(generation.read_text()) + 1))
    assert cold_answers(filled.path, texts) is None
    assert answers(Experience.open(filled.path), texts) == expected
    assert cold_answers(filled.path, texts) == expected  # saved again


def test_rows_added_by_a_seed_writer_are_seen(filled: Experience) -> None:
    """A writer that knows only the seed layout changes the row count, so the index is stale."""
    path = filled.path
    n = len(filled)
    for column, text in enumerate(("kubectl\nrollout", "kubectl rollout", "kubectl rollout")):
        target = path.joinpath("storage", *str(3 * n + column), "data")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (path / "shape").write_text(f"[{n + 1}, 3]")
    assert cold_path.search(path, "kubectl rollout", 1, "jaccard") is None
    hits = Experience.open(path).search("kubectl rollout", 1)
    assert hits[0].row.index == n


def test_forged_index_with_a_valid_checksum_is_rejected(filled: Experience) -> None:
    label = index_file.Label(0, 0, 0, 0)
    arrays = index_file.load(filled.path / INDEX_FILE, _current_label(filled))
    arrays = {k: v.copy() for k, v in arrays.items()}
    arrays["inv_slots"][:] = 10**6  # rows that do not exist
    index_file.save(filled.path / INDEX_FILE, _current_label(filled), arrays)
    texts = queries(random.Random(6))
    assert cold_answers(filled.path, texts) is None
    assert answers(Experience.open(filled.path), texts) == answers(filled, texts)
    with pytest.raises(index_file.UnusableIndex, match="stale"):
        index_file.load(filled.path / INDEX_FILE, label)


def _current_label(experience: Experience) -> index_file.Label:
    st = (experience.path / "rows.jsonl").stat()
    generation = int((experience.path / GENERATION_FILE).read_text())
    return index_file.Label(generation, len(experience), st.st_size, st.st_mtime_ns)


def test_unfinished_commit_is_left_to_the_opener(filled: Experience) -> None:
    texts = queries(random.Random(9))
    (filled.path / ".txn").mkdir()
    assert cold_answers(filled.path, texts) is None


def test_cold_cli_search_answers_without_numpy(filled: Experience) -> None:
    """A new process's search reads index.bin with the standard library only."""
    probe = (
        "import json, sys; from mcp_harness.cli.main import main\n"
        "main(['experience', 'search', sys.argv[1], 'git status', '-k', '8', '--json'])\n"
        "print(json.dumps('numpy' in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    argv = [sys.executable, "-c", probe, str(filled.path)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    printed, numpy_imported = out.rsplit("\n", 2)[0], out.rsplit("\n", 2)[1]
    assert numpy_imported == "false"
    expected = [h.to_json() for h in filled.search("git status", 8)]
    assert json.loads(printed)["hits"] == expected


def test_save_and_load_round_trip_arrays(tmp_path: Path) -> None:
    label = index_file.Label(3, 2, 10, 7)
    arrays = {"a": np.arange(5, dtype=np.int64), "b": np.array([1.5], dtype=np.float32)}
    index_file.save(tmp_path / "i", label, arrays)
    loaded = index_file.load(tmp_path / "i", label)
    assert loaded.keys() == arrays.keys()
    assert all(np.array_equal(loaded[k], arrays[k]) for k in arrays)
    loaded["a"][0] = 9  # writable: the index updates in place
    assert (tmp_path / "i").stat().st_mode & 0o777 == 0o644  # readable like rows.jsonl
    with pytest.raises(index_file.UnusableIndex, match="no index file"):
        index_file.load(tmp_path / "missing", label)


_WORKER = """
import random, sys
from mcp_harness.experience.store import Experience, Row
experience = Experience.open(sys.argv[1])
rng = random.Random(int(sys.argv[2]))
for step in range(15):
    words = rng.sample("git docker pytest logs build disk find grep".split(), 3)
    if step % 5 == 4 and len(experience) > 2:
        experience.patch(rng.randrange(len(experience)), query="\\n".join(words))
    else:
        experience.append([Row("\\n".join(words), " ".join(words), words[0])])
    experience.search(" ".join(words), 4)
"""


def test_concurrent_processes_keep_the_index_in_step(
    filled: Experience, caplog: pytest.LogCaptureFixture
) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(filled.path), str(seed)], env=env)
        for seed in range(3)
    ]
    assert [w.wait(timeout=300) for w in workers] == [0, 0, 0]
    cold = opened_from_index(filled.path, caplog)
    assert len(cold) == 40 + 3 * 12
    texts = queries(random.Random(7))
    assert answers(cold, texts) == answers(rebuilt(filled.path), texts)


def test_read_only_experience_is_searched_in_memory(
    filled: Experience, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A directory that cannot be written: no lock, no index written, same answers."""
    texts = queries(random.Random(8))
    expected = answers(filled, texts)
    (filled.path / INDEX_FILE).unlink()
    (filled.path / ".lock").unlink()
    mount = tmp_path / "ro"
    mount.mkdir()
    bind = ["mount", "--bind", "-o", "ro", str(filled.path), str(mount)]
    made = subprocess.run(bind, check=False, capture_output=True)
    if made.returncode != 0:
        pytest.skip("needs a read-only bind mount (root with mount rights)")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True)
        reopened = Experience.open(mount)
        assert answers(reopened, texts) == expected
        assert not (filled.path / INDEX_FILE).exists()
        assert not (filled.path / ".lock").exists()
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_lazy_provenance_follows_another_writer(
    filled: Experience, caplog: pytest.LogCaptureFixture
) -> None:
    reader = opened_from_index(filled.path, caplog)
    writer = Experience.open(filled.path)
    writer.delete([0])
    writer.patch(0, fields={"note": "after"})
    assert reader.row(0).provenance["note"] == "after"
    assert len(reader) == len(writer)
