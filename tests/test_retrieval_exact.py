"""The pruned top-k search gives exactly the scores and order of scoring every row densely, in
memory, after a reload, and straight from the index file without numpy (`cold`)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from mcp_harness.experience import cold, index_file, topk
from mcp_harness.experience.index import RetrievalIndex
from mcp_harness.experience.index_bytes import Label, read


def dense_top_k(
    rows: list[list[str]], weights: list[float], query: list[tuple[str, ...]], k: int, method: str
) -> list[tuple[int, float]]:
    """Score every row with the documented formulas, in the dtypes the index has always used
    (float32 row lengths and weights, float64 ratios and idf sums rounded to float32), then
    sort by score desc, row asc."""
    q_len = len(query)
    sets = [set(r) for r in rows]
    member = np.array([[any(w in s for w in group) for group in query] for s in sets], dtype=bool)
    member = member.reshape(len(rows), q_len)
    doc_len = np.array([len(s) for s in sets], dtype=np.float32)
    weight = np.array(weights, dtype=np.float32)
    scores = np.zeros(len(rows), dtype=np.float32)
    if method == "jaccard":
        inter = member.sum(axis=1).astype(np.int64)
        hit = inter > 0
        scores[hit] = inter[hit] / (q_len + doc_len[hit] - inter[hit])
    else:
        n_live = max(len(rows), 1)
        avg_len = max(float(doc_len.sum()) / n_live, 1e-9)
        df = member.sum(axis=0).astype(np.float64)
        idf = [math.log1p((n_live - d + 0.5) / (d + 0.5)) for d in df]
        idf_sum = np.zeros(len(rows), dtype=np.float64)
        for g in range(q_len):
            idf_sum[member[:, g]] += idf[g]
        norm = (1.2 + 1) / (1 + 1.2 * (1 - 0.75 + 0.75 * doc_len / avg_len))
        hit = member.any(axis=1)
        scores[hit] = idf_sum[hit] * norm[hit]
    scores *= weight
    ranked = sorted((-float(s), row) for row, s in enumerate(scores) if s > 0)
    return [(row, -score) for score, row in ranked[:k]]


def random_terms(rng: random.Random, vocab: list[str]) -> list[str]:
    count = rng.randint(1, 12)
    return list(dict.fromkeys(rng.choices(vocab, weights=ZIPF[: len(vocab)], k=count)))


ZIPF = [1 / (r + 1) for r in range(1000)]


def random_query(rng: random.Random, vocab: list[str]) -> list[tuple[str, ...]]:
    size = rng.choice([1, 2, 3, 5, 8, 9, 17, 40, 70])
    groups = []
    for word in rng.sample([*vocab, "never-seen"], min(size, len(vocab))):
        groups.append((word, "<file>") if rng.random() < 0.2 else (word,))
    return list(dict.fromkeys(groups))


def from_file(index: RetrievalIndex, path: Path) -> cold.Arrays:
    """The index as `cold` reads it from a saved file."""
    arrays = index.to_arrays()
    arrays["meta_offsets"] = np.zeros(1, dtype=np.int64)
    label = Label(0, len(index), 0, 0)
    index_file.save(path, label, arrays)
    return cold.Arrays(*read(path, label))


@pytest.fixture(params=["one pass", "pruned"])
def passes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small indexes are scored in one pass (`topk.ONE_PASS_AT_MOST`); "pruned" makes the
    small indexes of a test go through the pruning passes that large ones take."""
    if request.param == "pruned":
        monkeypatch.setattr(topk, "ONE_PASS_AT_MOST", 0)


@pytest.mark.parametrize("seed", range(6))
def test_sparse_scores_equal_dense_scores_through_every_change(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(rng.choice([20, 150, 400]))] + ["<file>", "<num>"]
    index = RetrievalIndex()
    rows: list[list[str]] = []
    weights: list[float] = []
    for step in range(45):
        op = rng.random()
        if op < 0.5 or len(rows) < 10:
            new = [random_terms(rng, vocab) for _ in range(rng.randint(1, 300))]
            ws = [rng.choice([0.0, 0.5, 1.0, 1.0, 1.0, rng.uniform(0, 3)]) for _ in new]
            index.append(new, ws)
            rows += new
            weights += ws
        elif op < 0.7:
            row = rng.randrange(len(rows))
            rows[row], weights[row] = random_terms(rng, vocab), rng.uniform(0, 2)
            index.replace(row, rows[row], weights[row])
        elif op < 0.8:
            row = rng.randrange(len(rows))
            weights[row] = rng.uniform(0, 2)
            index.set_weight(row, weights[row])
        else:
            doomed = set(rng.sample(range(len(rows)), rng.randint(1, 5)))
            index.delete(doomed)
            rows = [r for i, r in enumerate(rows) if i not in doomed]
            weights = [w for i, w in enumerate(weights) if i not in doomed]
        if step % 3 == 0:
            loaded = RetrievalIndex.from_arrays(index.to_arrays())  # as a new process has it
            stored = from_file(index, tmp_path / "index.bin")
            for _ in range(8):
                query, k = random_query(rng, vocab), rng.choice([1, 5, 16, 50])
                for method in ("jaccard", "bm25"):
                    expected = dense_top_k(rows, weights, query, k, method)
                    for searched in (index, loaded):
                        got = [(m.row, m.score) for m in searched.search(query, k, method)]
                        assert got == expected, (query, method)
                    assert cold.top_k(stored, query, k, method) == expected, (query, method)


def test_groups_sharing_a_term_are_not_pruned_away(passes: None, tmp_path: Path) -> None:
    """Two file names share `<file>`: a one-term row holds both groups and outscores rows the
    first groups found, so the bound must count a row holding more groups than terms."""
    rows = [["z", "<file>", "w", "v"]] * 20 + [["<file>"]] * 5
    weights = [1.0] * len(rows)
    index = RetrievalIndex()
    index.append(rows, weights)
    query = [("z",), ("x.py", "<file>"), ("y.py", "<file>")]
    expected = dense_top_k(rows, weights, query, 20, "jaccard")
    assert [row for row, _ in expected[:5]] == [20, 21, 22, 23, 24]
    assert [(m.row, m.score) for m in index.search(query, 20, "jaccard")] == expected
    assert cold.top_k(from_file(index, tmp_path / "index.bin"), query, 20, "jaccard") == expected


def test_pruning_keeps_rows_that_belong_in_the_top_k_through_every_change(
    passes: None, tmp_path: Path
) -> None:
    """Rows holding only the common group `b` are pruned by the fewest terms a row holding `b`
    has (`min_len`) and by the highest weight: a short `b` row appended, put in by `replace`,
    or raised by `set_weight` must still be found, and rows tied at the k-th score must keep
    the row-index tie-break after a `replace` moved a row to a new slot."""
    long_b = [["b", *(f"f{i}-{j}" for j in range(9))] for i in range(40)]
    rows: list[list[str]] = [["a", "x1", "x2", "x3", "x4", "x5"]] * 8 + long_b
    weights = [1.0] * len(rows)
    index = RetrievalIndex()
    index.append(rows, weights)
    index.rebuild()  # the bulk postings; later appends wait in the delta
    query = [("a",), ("b",)]

    def check(k: int = 5) -> None:
        expected = dense_top_k(rows, weights, query, k, "jaccard")
        stored = from_file(index, tmp_path / "index.bin")
        for searched in (index, RetrievalIndex.from_arrays(index.to_arrays())):
            assert [(m.row, m.score) for m in searched.search(query, k)] == expected
        assert cold.top_k(stored, query, k, "jaccard") == expected

    check()
    weights[20] = 9.0  # a long `b` row outscores every `a` row
    index.set_weight(20, 9.0)
    check()
    rows.append(["b"])  # 1/2: above every `a` row (1/7)
    weights.append(1.0)
    index.append([["b"]], [1.0])
    check()
    assert len(rows) - 1 in [m.row for m in index.search(query, 5)]
    rows[3] = ["b", "y"]  # a new slot for row 3, shorter than the `b` rows before
    index.replace(3, rows[3], 1.0)
    check()
    doomed = {len(rows) - 1, 20}
    index.delete(doomed)
    rows = [r for i, r in enumerate(rows) if i not in doomed]
    weights = [w for i, w in enumerate(weights) if i not in doomed]
    check()
    index.rebuild()
    check()

    tied = RetrievalIndex()  # every row scores 1: the top k are the lowest rows
    tied.append([["a", "b"]] * 30, [1.0] * 30)
    tied.replace(2, ["a", "b"], 1.0)
    assert [m.row for m in tied.search(query, 5)] == [0, 1, 2, 3, 4]
