"""One search straight from `index.bin`, with the standard library only: what a new process does.

A new process that asks one question should not pay for numpy's import or for loading a whole
index. `search` reads the file (checksum and label as `Experience.open` checks them), the
postings of the query's terms and the 16-odd rows it returns. It runs the same exact MaxScore
as `RetrievalIndex._score` (groups rarest first, more groups only while the k-th best score
does not beat what a row of the remaining groups could reach, bounded with the file's
`bounds`), and the same arithmetic: numpy's float32 steps are done in double and rounded to
float32, which gives the same bits for + - * / of float32 values, so scores and the row-index
tie-break are those of the in-memory index (`tests/test_retrieval_exact.py`).

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
from collections.abc import Sequence
from pathlib import Path

from mcp_harness.errors import HarnessError
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
        start, end = self.inv_ptr[term], self.inv_ptr[term + 1]
        if not 0 <= start <= end <= len(self.inv_slots):
            raise UnusableIndex("corrupt postings")
        found = self.inv_slots[start:end]
        if found and not 0 <= min(found) <= max(found) < self.rows:
            raise UnusableIndex("postings out of range")
        return found

    def doc_len(self, row: int) -> int:
        length = self.fwd_ptr[row + 1] - self.fwd_ptr[row]
        if length < 0:
            raise UnusableIndex("corrupt row pointers")
        return length


def search(path: Path, text: str, k: int, method: str) -> tuple[list[Hit], int] | None:
    """(the top-`k` hits for `text`, the row count) as `Experience.search` would give them,
    or None when only opening the experience can answer (see the module docstring)."""
    if k < 1 or method not in ("jaccard", "bm25") or (path / TXN_DIR).exists():
        return None
    try:
        stamp = sidecar_stamp(path)
        shape = layout.read_shape(path)
        label = Label(read_generation(path), shape[0], *(stamp[1:] if stamp else (0, 0)))
        if len(shape) != 2 or shape[1] != 3:
            return None
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
    """(row, score) of the top `k`, score desc then row asc, as `RetrievalIndex.search`."""
    if arrays.rows == 0:
        return []
    query = list(dict.fromkeys((w,) if isinstance(w, str) else tuple(w) for w in keywords))
    groups: list[list[memoryview]] = []
    for group in query:
        ids = [arrays.term(w) for w in group]
        found = [arrays.postings(t) for t in ids if t is not None]
        if found:
            groups.append(found)
    if not groups:
        return []
    scorer = _Scorer(arrays, groups, len(query), method)
    sizes = [sum(map(len, members)) for members in groups]
    by_size = sorted(range(len(groups)), key=sizes.__getitem__)
    taken = 1
    while True:
        scores = scorer.scores(by_size[:taken], by_size[taken:])
        if taken == len(groups):
            break
        positive = [s for s in scores.values() if s > 0]
        if len(positive) < k:
            need = len(groups)
        else:
            kth = heapq.nlargest(k, positive)[-1]
            need = taken
            while need < len(groups) and not scorer.reach(by_size[need:]) * (1 + 1e-6) < kth:
                need += 1
        if need == taken:
            break
        taken = need
    best = heapq.nsmallest(k, ((-s, row) for row, s in scores.items() if s > 0))
    return [(row, -negative) for negative, row in best]


class _Scorer:
    """Scores of rows in the dense formulas' arithmetic (see `RetrievalIndex._score`)."""

    def __init__(
        self, arrays: Arrays, groups: list[list[memoryview]], q_len: int, method: str
    ) -> None:
        self.arrays, self.groups, self.q_len = arrays, groups, q_len
        n_live = arrays.rows
        self.avg_len = max(arrays.fwd_ptr[-1] / n_live, 1e-9)
        self.w_max, self.d_min = arrays.bounds
        self.idf: list[float] | None = None
        if method == "bm25":
            dfs = [len(set().union(*m)) if len(m) > 1 else len(m[0]) for m in groups]
            self.idf = [math.log1p((n_live - df + 0.5) / (df + 0.5)) for df in dfs]
        self._norms: dict[int, float] = {}

    def scores(self, taken: list[int], rest: list[int]) -> dict[int, float]:
        """Every row in the postings of groups `taken`, scored over all groups."""
        rows: set[int] = set()
        held: dict[int, set[int]] = {}
        for g in taken:
            held[g] = set().union(*self.groups[g])
            rows |= held[g]
        weight, doc_len = self.arrays.weight, self.arrays.doc_len
        order = range(len(self.groups))
        out = {}
        for row in rows:
            member = [row in held[g] if g in held else self._has(g, row) for g in order]
            if self.idf is None:
                inter = sum(member)
                sim = f32(inter / (self.q_len + doc_len(row) - inter))
            else:
                idf_sum = 0.0
                for g in order:  # in group order, as the dense sum adds them
                    if member[g]:
                        idf_sum += self.idf[g]
                sim = f32(idf_sum * self._norm(doc_len(row)))
            out[row] = f32(sim * weight[row])
        return out

    def _has(self, g: int, row: int) -> bool:
        for postings in self.groups[g]:
            at = bisect.bisect_left(postings, row)
            if at < len(postings) and postings[at] == row:
                return True
        return False

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

    def reach(self, rest: list[int]) -> float:
        """The highest score a row holding only groups `rest` could have."""
        if self.idf is None:
            m = len(rest)
            return self.w_max * m / (self.q_len + max(self.d_min, m) - m)
        return self.w_max * self._norm_bound() * sum(self.idf[g] for g in rest)

    def _norm_bound(self) -> float:
        return (_K1 + 1) / (1 + _K1 * (1 - _B + _B * self.d_min / self.avg_len))


def search_named(name: str, text: str, k: int, method: str) -> tuple[list[Hit], int] | None:
    """`search` on the experience a CLI argument names; None for a pool or anything unusual."""
    from mcp_harness.experience.backend import resolve_store

    where = resolve_store(name)
    return search(where, text, k, method) if isinstance(where, Path) else None
