"""One search straight from `index.bin`, with the standard library only: what a new process does.

A new process that asks one question should not pay for numpy's import or for loading a whole
index. `search` reads the file (checksum and label as `Experience.open` checks them), the
postings of the query's terms and the 16-odd rows it returns. Its top-k is exact, by levels
(`top_k`, pruned with the file's `bounds` and `bounds.Bound`), in the in-memory index's
arithmetic: numpy's float32 steps are done in double and rounded to float32, which gives the
same bits for + - * / of float32 values, so scores and the row-index tie-break are those of
`RetrievalIndex.search` (`tests/test_retrieval_exact.py`).

It answers None whenever it cannot be sure, and the caller opens the experience instead (which
rebuilds a missing, stale or damaged index and logs it): no index or a stale or corrupt one,
an unfinished commit, noise, a change while it read, an entry out of range.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from mcp_harness.errors import HarnessError
from mcp_harness.experience.bounds import Bound, shared_terms
from mcp_harness.experience.index_bytes import Label, Layout, UnusableIndex, read
from mcp_harness.experience.keywords import extract_keywords
from mcp_harness.experience.rows import Hit, StoredRow
from mcp_harness.experience.sidecar import ROWS_FILE, read_generation, sidecar_stamp
from mcp_harness.experience.slots import query_keywords
from mcp_harness.storage import layout
from mcp_harness.storage.transaction import TXN_DIR

INDEX_FILE = "index.bin"
_F32 = struct.Struct("<f")
_K1, _B = 1.2, 0.75  # as in `index`
_TYPES = {  # array -> (dtype string in the header, memoryview format)
    "vocab": ("|u1", "B"),
    "fwd_ptr": ("<i8", "q"),
    "weight": ("<f4", "f"),
    "inv_ptr": ("<i8", "q"),
    "inv_slots": ("<i4", "i"),
    "meta_offsets": ("<i8", "q"),
    "bounds": ("<f8", "d"),
    "min_len": ("<i4", "i"),
}


def f32(x: float) -> float:
    """`x` rounded to float32."""
    return _F32.unpack(_F32.pack(x))[0]


class Arrays:
    """The arrays of one index file as typed memoryviews."""

    def __init__(self, payload: memoryview, where: Layout) -> None:
        for name, (dtype, fmt) in _TYPES.items():
            if name not in where or where[name][0] != dtype:
                raise UnusableIndex(f"array {name!r} missing or of another type")
            _, offset, count = where[name]
            size = count * struct.calcsize(fmt)
            if offset < 0 or count < 0 or offset % 8 or offset + size > len(payload):
                raise UnusableIndex(f"corrupt array {name!r}")
            setattr(self, name, payload[offset : offset + size].cast(fmt))
        self.vocab: memoryview
        self.fwd_ptr: memoryview
        self.weight: memoryview
        self.inv_ptr: memoryview
        self.inv_slots: memoryview
        self.meta_offsets: memoryview
        self.bounds: memoryview
        self.min_len: memoryview
        self.rows = len(self.weight)
        text = bytes(self.vocab)
        self.terms = text.count(b"\n") + 1 if text else 0
        self._padded = b"\n" + text + b"\n"
        if (
            len(self.fwd_ptr) != self.rows + 1
            or len(self.inv_ptr) != self.terms + 1
            or self.inv_ptr[0] != 0
            or self.inv_ptr[-1] != len(self.inv_slots)
            or self.fwd_ptr[0] != 0
            or len(self.bounds) != 2
            or len(self.min_len) != self.terms
            or not all(map(math.isfinite, self.bounds))
        ):
            raise UnusableIndex("corrupt arrays")

    def term(self, word: str) -> int | None:
        """The id of `word` (its last place in the vocabulary, as a dict built from it keeps)."""
        if not word or "\n" in word:
            return None
        at = self._padded.rfind(b"\n" + word.encode("utf-8") + b"\n")
        return None if at < 0 else self._padded.count(b"\n", 0, at)

    def postings(self, term: int) -> memoryview:
        """The rows holding `term`, ascending. Rows are not range-checked here (that would
        read every posting): a row past the end fails its first lookup, and `_row` refuses a
        negative one before it is shown."""
        start, end = self.inv_ptr[term], self.inv_ptr[term + 1]
        if not 0 <= start <= end <= len(self.inv_slots):
            raise UnusableIndex("corrupt postings")
        return self.inv_slots[start:end]


def search(path: Path, text: str, k: int, method: str) -> tuple[list[Hit], int] | None:
    """(the top-`k` hits for `text`, the row count) as `Experience.search` would give them,
    or None when only opening the experience can answer (see the module docstring)."""
    if k < 1 or method not in ("jaccard", "bm25") or (path / TXN_DIR).exists():
        return None
    try:
        stamp = sidecar_stamp(path)
        shape = layout.read_shape(path)
        if len(shape) != 2 or shape[1] != 3:
            return None
        label = Label(read_generation(path), shape[0], *(stamp[1:] if stamp else (0, 0)))
        arrays = Arrays(*read(path / INDEX_FILE, label))
        if arrays.rows != label.rows:
            return None
        ranked = top_k(arrays, query_keywords(extract_keywords(text)), k, method)
        hits = [Hit(score, _row(path, arrays, row)) for row, score in ranked]
    except (UnusableIndex, HarnessError, OSError, ValueError, IndexError, KeyError):
        return None  # opening the experience rebuilds, or says what is wrong
    if (path / TXN_DIR).exists() or sidecar_stamp(path) != stamp:
        return None  # a commit ran while we read
    return hits, label.rows


def _row(path: Path, arrays: Arrays, row: int) -> StoredRow:
    if not 0 <= row < arrays.rows:
        raise UnusableIndex("postings out of range")
    cells = [layout.read_element(path, 3 * row + c) or "" for c in range(3)]
    offsets = arrays.meta_offsets
    if row + 1 < len(offsets):
        start, end = offsets[row], offsets[row + 1]
        if not 0 <= start < end:
            raise UnusableIndex("corrupt provenance offsets")
        with open(path / ROWS_FILE, "rb") as handle:
            handle.seek(start)
            meta = json.loads(handle.read(end - start))
        if not isinstance(meta, dict):
            raise ValueError("provenance line is not a JSON object")
    else:
        meta = {"w": 1.0, "source": "unknown"}
    weight = float(meta.pop("w", 1.0))
    return StoredRow(row, cells[0], cells[1], cells[2], weight, meta)


def top_k(
    arrays: Arrays, keywords: Sequence[str | tuple[str, ...]], k: int, method: str
) -> list[tuple[int, float]]:
    """(row, score) of the top `k`, score desc then row asc, as `RetrievalIndex.search`.

    Rows are scored level by level, most groups held first, each level by ascending row. A
    level ends when the best score a row of it could have (`_Scorer.cap`), with the row's
    index, cannot beat the k-th best so far, and no lower level is looked at once every lower
    level's cap is below the k-th best score. The rows holding every group (a set
    intersection) often settle it; otherwise the rows are counted over all postings."""
    if arrays.rows == 0:
        return []
    query = list(dict.fromkeys((w,) if isinstance(w, str) else tuple(w) for w in keywords))
    groups: list[Sequence[int]] = []
    known: list[list[int]] = []
    for group in query:
        ids = [t for t in map(arrays.term, group) if t is not None]
        if ids:
            found = [arrays.postings(t) for t in ids]
            groups.append(found[0] if len(found) == 1 else set().union(*found))
            known.append(ids)
    if not groups:
        return []
    scorer = _Scorer(arrays, groups, known, len(query), method)
    by_size = sorted(groups, key=len)
    every = set(by_size[0])
    for rows in by_size[1:]:  # a few rows are looked up, many are intersected in C
        every = (
            {r for r in every if _holds(rows, r)}
            if 64 * len(every) < len(rows)
            else every.intersection(rows)
        )
    best = _levels(scorer, {len(groups): every}, k)
    if len(best) == k and scorer.cap_below(len(groups)) < best[0][0]:
        return _ranked(best)
    counts: Counter[int] = Counter()
    for rows in groups:
        counts.update(rows)
    levels: dict[int, list[int]] = {}
    for row, held in counts.items():
        levels.setdefault(held, []).append(row)
    return _ranked(_levels(scorer, levels, k))


def _holds(rows: Sequence[int], row: int) -> bool:
    """Whether `rows` (a set, or ascending) holds `row`."""
    if isinstance(rows, set):
        return row in rows
    at = bisect.bisect_left(rows, row)
    return at < len(rows) and rows[at] == row


def _levels(scorer: _Scorer, levels: dict[int, Iterable[int]], k: int) -> list[tuple[float, int]]:
    """The best `k` of the rows in `levels` (groups held -> rows), as a min-heap of
    (score, -row): the worst of the best first."""
    best: list[tuple[float, int]] = []
    for held in sorted(levels, reverse=True):
        if len(best) == k and scorer.cap_below(held + 1) < best[0][0]:
            break
        cap = scorer.cap(held)
        for row in sorted(levels[held]):
            if len(best) == k and (cap, -row) <= best[0]:
                break  # neither this row nor a later one (a higher index) can enter
            score = scorer.score(row, held)
            if score <= 0:
                continue
            if len(best) < k:
                heapq.heappush(best, (score, -row))
            elif (score, -row) > best[0]:
                heapq.heapreplace(best, (score, -row))
    return best


def _ranked(best: list[tuple[float, int]]) -> list[tuple[int, float]]:
    return [(-negative, score) for score, negative in sorted(best, reverse=True)]


class _Scorer:
    """Scores of rows in the dense formulas' arithmetic (see `topk.score`), and
    caps on them: a row holding m groups has at least max(fewest terms of a row,
    `Bound.jaccard`'s m - shared, the m-th smallest fewest terms of a row of one group) terms."""

    def __init__(
        self,
        arrays: Arrays,
        groups: list[Sequence[int]],
        known: list[list[int]],
        q_len: int,
        method: str,
    ) -> None:
        self.fwd_ptr, self.weight = arrays.fwd_ptr, arrays.weight
        self.q_len = q_len
        n_live = arrays.rows
        self.avg_len = max(arrays.fwd_ptr[-1] / n_live, 1e-9)
        w_max, d_min = arrays.bounds
        bound = Bound(q_len, shared_terms(known))
        shortest = sorted(min(arrays.min_len[t] for t in ids) for ids in known)
        self.sets: list[set[int]] = []
        idf: list[float] = []
        if method == "bm25":
            self.sets = [rows if isinstance(rows, set) else set(rows) for rows in groups]
            idf = [math.log1p((n_live - len(s) + 0.5) / (len(s) + 0.5)) for s in self.sets]
        self.idf = idf if method == "bm25" else None
        top_idf = sorted(idf, reverse=True)
        self.caps = [0.0]  # by groups held
        for m in range(1, len(groups) + 1):
            fewest = max(d_min, shortest[m - 1], m - bound.shared, 1)
            if self.idf is None:  # exact: the score of the best row that could hold m groups
                self.caps.append(f32(f32(m / (q_len + fewest - m)) * w_max))
            else:
                norm = (_K1 + 1) / (1 + _K1 * (1 - _B + _B * fewest / self.avg_len))
                self.caps.append(w_max * norm * sum(top_idf[:m]) * (1 + 1e-6))
        self._below = [max(self.caps[:m], default=0.0) for m in range(len(self.caps) + 1)]
        self._norms: dict[int, float] = {}

    def cap(self, held: int) -> float:
        """The highest score a row holding `held` groups could have (exact for Jaccard, with
        room for rounding for BM25)."""
        return self.caps[held]

    def cap_below(self, held: int) -> float:
        """The highest score a row holding fewer than `held` groups could have."""
        return self._below[held]

    def score(self, row: int, held: int) -> float:
        """The score of `row`, which holds `held` of the query's groups."""
        doc_len = self.fwd_ptr[row + 1] - self.fwd_ptr[row]
        if doc_len < 1:
            raise UnusableIndex("corrupt row pointers")
        if self.idf is None:
            sim = f32(held / (self.q_len + doc_len - held))
        else:
            idf_sum = 0.0
            for members, idf in zip(self.sets, self.idf, strict=True):  # in group order
                if row in members:
                    idf_sum += idf
            sim = f32(idf_sum * self._norm(doc_len))
        return f32(sim * self.weight[row])

    def _norm(self, dl: int) -> float:
        """BM25's length norm in float32 steps, as numpy computes it over float32 lengths."""
        norm = self._norms.get(dl)
        if norm is None:
            x = f32(f32(_B) * dl)
            x = f32(x / f32(self.avg_len))
            x = f32(f32(1 - _B) + x)
            x = f32(1 + f32(f32(_K1) * x))
            norm = self._norms[dl] = f32(f32(_K1 + 1) / x)
        return norm


def search_named(name: str, text: str, k: int, method: str) -> tuple[list[Hit], int] | None:
    """`search` on the experience a CLI argument names; None for a pool or anything unusual."""
    from mcp_harness.experience.backend import resolve_store

    where = resolve_store(name)
    return search(where, text, k, method) if isinstance(where, Path) else None
