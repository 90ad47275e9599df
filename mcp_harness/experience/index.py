"""In-memory retrieval index over the query column: built once, updated incrementally.

Rows are stored in *slots*. A forward index (slot -> keyword ids, CSR) is the source of truth;
an inverted index (keyword id -> slots, CSR) is rebuilt from it in bulk, and postings added since
the last rebuild wait in a small delta map. Patching a row retires its slot and takes a new one;
deleting rows retires slots and renumbers rows. So a query touches only the postings of its own
keywords, never every row and never a file.

Scores (each multiplied by the row weight):
- `jaccard`: |Q ∩ R| / |Q ∪ R| over keyword sets (the seed's default, on normalised keywords).
- `bm25`: Okapi BM25 (k1=1.2, b=0.75) with the row's keywords as its terms.
Ties are broken by row index, ascending, so results are deterministic. Rows scoring 0 are not
returned. Exploration noise (`noise > 0`) needs an explicit seed: every live row gets
`noise * U[0, 1)` added from `numpy.random.default_rng(seed)`, so a rerun with the same seed gives
the same rows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mcp_harness.errors import HarnessError
from mcp_harness.experience import topk
from mcp_harness.experience.bounds import Bound, shared_terms

METHODS = ("jaccard", "bm25")
_NO_ROW = np.iinfo(np.int32).max  # `min_len` of a term no row holds
_VERSIONS = itertools.count()  # `RetrievalIndex.version`s, unique across indexes


class _Growable:
    """A numpy array with amortised O(1) append."""

    def __init__(self, dtype: type, fill: float | int = 0) -> None:
        self._buf = np.full(16, fill, dtype=dtype)
        self._fill = fill
        self.size = 0

    def extend(self, values: np.ndarray | Sequence[float]) -> None:
        values = np.asarray(values, dtype=self._buf.dtype)
        need = self.size + len(values)
        if need > len(self._buf):
            grown = np.full(max(need, 2 * len(self._buf)), self._fill, dtype=self._buf.dtype)
            grown[: self.size] = self._buf[: self.size]
            self._buf = grown
        self._buf[self.size : need] = values
        self.size = need

    @classmethod
    def wrap(cls, array: np.ndarray, fill: float | int = 0) -> _Growable:
        """Take over `array` (writable) as the first `len(array)` values."""
        grown = cls.__new__(cls)
        grown._buf, grown._fill, grown.size = array, fill, len(array)
        return grown

    @property
    def view(self) -> np.ndarray:
        return self._buf[: self.size]

    def nbytes(self) -> int:
        return self._buf.nbytes


@dataclass(frozen=True)
class Match:
    row: int
    score: float


class RetrievalIndex:
    """Keyword index over rows `0..n-1`; see the module docstring for scoring."""

    def __init__(self) -> None:
        self._vocab: dict[str, int] = {}
        self._fwd_terms = _Growable(np.int32)
        self._fwd_ptr = _Growable(np.int64)
        self._fwd_ptr.extend([0])
        self._doc_len = _Growable(np.float32)
        self._weight = _Growable(np.float32)
        self._alive = _Growable(np.bool_)
        self._slot_row = _Growable(np.int64, fill=-1)
        self._row_slot = _Growable(np.int64)
        self._inv_ptr = np.zeros(1, dtype=np.int64)
        self._inv_slots = np.zeros(0, dtype=np.int32)
        self._delta: dict[int, list[int]] = {}
        self._delta_count = 0
        self._live_terms = 0.0
        self._cached: topk.Live | None = None  # until the next change
        self._ordered = True  # rows ascend with slots (until a `replace`)
        self._min_len = _Growable(np.int32, fill=_NO_ROW)  # per term, a lower bound: see `topk`
        # What a search can answer changes only with the version: a fresh one (no other index
        # has had it) is taken at the end of every change, so an answer read from one version
        # holds for as long as the index has it (`search_cache`).
        self.version = next(_VERSIONS)

    # ---- updates --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._row_slot.size

    def append(self, keyword_lists: Iterable[Sequence[str]], weights: Sequence[float]) -> None:
        """Add rows at the end, in order."""
        slots = self._new_slots(list(keyword_lists), weights)
        first_row = len(self)
        self._row_slot.extend(slots)
        self._slot_row.view[slots] = np.arange(first_row, len(self))
        self.version = next(_VERSIONS)

    def replace(self, row: int, keywords: Sequence[str], weight: float) -> None:
        """Re-index one row after its query text or weight changed."""
        self._retire(int(self._row_slot.view[row]))
        self._ordered = False
        slot = int(self._new_slots([keywords], [weight])[0])
        self._row_slot.view[row] = slot
        self._slot_row.view[slot] = row
        self.version = next(_VERSIONS)

    def set_weight(self, row: int, weight: float) -> None:
        self._weight.view[self._row_slot.view[row]] = weight
        self._cached = None
        self.version = next(_VERSIONS)

    def delete(self, rows: Iterable[int]) -> None:
        """Remove rows; later rows move up, as in `del list[i]`."""
        doomed = sorted(set(rows))
        for row in doomed:
            self._retire(int(self._row_slot.view[row]))
        kept = np.delete(self._row_slot.view, doomed)
        self._row_slot = _Growable(np.int64)
        self._row_slot.extend(kept)
        self._slot_row.view[kept] = np.arange(len(kept))
        self.version = next(_VERSIONS)

    def _new_slots(
        self, keyword_lists: list[Sequence[str]], weights: Sequence[float]
    ) -> np.ndarray:
        if len(keyword_lists) != len(weights):
            raise ValueError("one weight per row")
        vocab = self._vocab
        ids: list[int] = []
        lengths: list[int] = []
        for words in keyword_lists:
            row_ids = [vocab.setdefault(w, len(vocab)) for w in dict.fromkeys(words)]
            ids.extend(row_ids)
            lengths.append(len(row_ids))
        first = self._alive.size
        count = len(keyword_lists)
        slots = np.arange(first, first + count, dtype=np.int64)
        self._fwd_terms.extend(ids)
        self._fwd_ptr.extend(self._fwd_terms.size - len(ids) + np.cumsum(lengths, dtype=np.int64))
        self._doc_len.extend(lengths)
        self._weight.extend(weights)
        self._alive.extend(np.ones(count, dtype=np.bool_))
        self._slot_row.extend(np.full(count, -1))
        self._live_terms += len(ids)
        self._cached = None
        self._min_len.extend(np.full(len(vocab) - self._min_len.size, _NO_ROW))
        if self._delta_count + len(ids) > max(4096, len(self._inv_slots) // 4):
            self.rebuild()
        else:
            held = np.repeat(np.array(lengths, dtype=np.int32), lengths)
            np.minimum.at(self._min_len.view, np.array(ids, dtype=np.int64), held)
            position = 0
            for slot, length in zip(slots.tolist(), lengths, strict=True):
                for term in ids[position : position + length]:
                    self._delta.setdefault(term, []).append(slot)
                position += length
            self._delta_count += len(ids)
        return slots

    def _retire(self, slot: int) -> None:
        """Mark `slot` dead (its terms' `min_len` stays a lower bound until `rebuild`)."""
        if self._alive.view[slot]:
            self._alive.view[slot] = False
            self._slot_row.view[slot] = -1
            self._live_terms -= float(self._doc_len.view[slot])
            self._cached = None

    def rebuild(self) -> None:
        """Fold the delta into the CSR inverted index, dropping retired slots, and make
        `min_len` exact again."""
        ptr = self._fwd_ptr.view
        counts = np.diff(ptr)
        slots = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        terms = self._fwd_terms.view
        keep = self._alive.view[slots]
        slots, terms = slots[keep], terms[keep]
        order = np.argsort(terms, kind="stable")
        self._inv_slots = slots[order]
        self._inv_ptr = np.zeros(len(self._vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms, minlength=len(self._vocab)), out=self._inv_ptr[1:])
        self._delta = {}
        self._delta_count = 0
        lengths = self._doc_len.view.astype(np.int32)
        self._min_len = _Growable.wrap(_fewest(self._inv_ptr, self._inv_slots, lengths), _NO_ROW)

    # ---- queries --------------------------------------------------------------------------
    def postings(self, term: int) -> np.ndarray:
        base = (
            self._inv_slots[self._inv_ptr[term] : self._inv_ptr[term + 1]]
            if term + 1 < len(self._inv_ptr)
            else self._inv_slots[:0]
        )
        extra = self._delta.get(term)
        return np.concatenate([base, np.asarray(extra, dtype=np.int32)]) if extra else base

    def search(
        self,
        keywords: Sequence[str | tuple[str, ...]],
        k: int = 16,
        method: str = "jaccard",
        noise: float = 0.0,
        seed: int | None = None,
    ) -> list[Match]:
        """Top-`k` rows for the query keywords; [] when nothing matches or the index is empty.

        A keyword may be a group of alternatives (a file name and its placeholder): the group
        is one term whose postings are the union of its members'."""
        if method not in METHODS:
            raise HarnessError(
                f"unknown retrieval method {method!r}", f"use one of: {', '.join(METHODS)}"
            )
        if k < 1:
            raise HarnessError(f"k must be at least 1, got {k}", "ask for k >= 1 rows")
        if noise and seed is None:
            raise HarnessError(
                "exploration noise needs an explicit seed", "pass seed=<int> with noise"
            )
        if len(self) == 0:
            return []
        query = list(dict.fromkeys((w,) if isinstance(w, str) else tuple(w) for w in keywords))
        vocab, min_len = self._vocab, self._min_len.view
        groups, known, shortest = [], [], []
        for group in query:
            ids = [vocab[w] for w in group if w in vocab]
            if ids:
                groups.append([self.postings(t) for t in ids])
                known.append(ids)
                shortest.append(int(min(min_len[t] for t in ids)))
        slots, values, kth = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), None
        if groups:
            live = self._live()
            idf = None
            if method == "bm25":
                n_live = max(len(self), 1)
                dfs = [topk.group_df(live, members) for members in groups]
                # math.log1p, not numpy's (whose SIMD loop may round differently): `cold` uses it
                idf = np.array([math.log1p((n_live - df + 0.5) / (df + 0.5)) for df in dfs])
            bound = Bound(len(query), shared_terms(known))
            k_or_all = None if noise else k
            slots, values, kth = topk.score(live, groups, shortest, bound, idf, k_or_all)
        if noise:
            n_slots = self._alive.size
            scores = np.zeros(n_slots, dtype=np.float32)
            scores[slots] = values
            rng = np.random.default_rng(seed)
            scores += noise * rng.random(n_slots, dtype=np.float32) * self._alive.view
            slots = np.flatnonzero(scores > 0)
            values = scores[slots]
        best = topk.best(slots, values, kth, self._slot_row.view, self._ordered, k)
        return [Match(row, score) for row, score in best]

    def _live(self) -> topk.Live:
        """What scoring reads of the slots, with the highest weight and fewest terms of a
        live row; kept until the next change."""
        if self._cached is None:
            live = self._row_slot.view
            self._cached = topk.Live(
                self._alive.view,
                len(self),
                self._doc_len.view,
                self._weight.view,
                float(self._weight.view[live].max()),
                float(self._doc_len.view[live].min()),
                max(self._live_terms / max(len(self), 1), 1e-9),
            )
        return self._cached

    # ---- persistence ----------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray] | None:
        """The index as flat arrays with rows as slots (what a fresh build of the same rows holds,
        up to term ids and posting order), `bounds` (highest weight, fewest terms) and `min_len`
        (each term's fewest terms of a row holding it, for `cold`); None if a
        term holds a newline, which the vocabulary encoding (newline-joined UTF-8) cannot
        carry. Linear in the postings: no sort."""
        words = list(self._vocab)
        if any("\n" in w for w in words):
            return None
        slots = self._row_slot.view
        bounds = (self._live().w_max, self._live().d_min) if len(slots) else (0.0, 0.0)
        starts = self._fwd_ptr.view[slots]
        lengths = self._fwd_ptr.view[slots + 1] - starts
        fwd_ptr = np.zeros(len(slots) + 1, dtype=np.int64)
        np.cumsum(lengths, out=fwd_ptr[1:])
        gather = np.repeat(starts - fwd_ptr[:-1], lengths) + np.arange(fwd_ptr[-1])
        inv_ptr, inv_rows = self._live_postings()
        return {
            "vocab": np.frombuffer("\n".join(words).encode("utf-8"), dtype=np.uint8),
            "fwd_ptr": fwd_ptr,
            "fwd_terms": self._fwd_terms.view[gather],
            "weight": self._weight.view[slots],
            "inv_ptr": inv_ptr,
            "inv_slots": inv_rows,
            "bounds": np.array(bounds, dtype=np.float64),
            "min_len": _fewest(inv_ptr, inv_rows, lengths.astype(np.int32)),
        }

    def _live_postings(self) -> tuple[np.ndarray, np.ndarray]:
        """Every term's postings (bulk and delta) of live slots, as ascending rows: (ptr, rows)."""
        n_terms = len(self._vocab)
        ptr = np.full(n_terms + 1, self._inv_ptr[-1], dtype=np.int64)
        ptr[: len(self._inv_ptr)] = self._inv_ptr
        slots = self._inv_slots
        counts = np.diff(ptr)
        if self._delta:
            terms = np.repeat(
                np.fromiter(self._delta, np.int64, len(self._delta)),
                [len(v) for v in self._delta.values()],
            )
            extra = np.concatenate([np.asarray(v, dtype=np.int32) for v in self._delta.values()])
            order = np.argsort(terms, kind="stable")  # only the delta: small
            slots = np.insert(slots, ptr[terms[order] + 1], extra[order])
            counts = counts + np.bincount(terms, minlength=n_terms)
        keep = self._alive.view[slots]
        rows = self._slot_row.view[slots[keep]].astype(np.int32)
        terms = np.repeat(np.arange(n_terms), counts)[keep]
        if np.any((np.diff(rows) < 0) & (terms[1:] == terms[:-1])):  # a patched row moved
            rows = rows[np.lexsort((rows, terms))]
        live = np.bincount(terms, minlength=n_terms)
        out = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(live, out=out[1:])
        return out, rows

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> RetrievalIndex:
        """The index `to_arrays` gave (arrays may be views of one buffer; they are kept)."""
        text = arrays["vocab"].tobytes().decode("utf-8")
        words = text.split("\n") if text else []
        index = cls()
        index._vocab = dict(zip(words, range(len(words)), strict=True))
        _check_arrays(arrays, len(words))
        fwd_ptr, n = arrays["fwd_ptr"], len(arrays["weight"])
        index._fwd_terms = _Growable.wrap(arrays["fwd_terms"])
        index._fwd_ptr = _Growable.wrap(fwd_ptr)
        index._doc_len = _Growable.wrap(np.diff(fwd_ptr).astype(np.float32))
        index._weight = _Growable.wrap(arrays["weight"])
        index._alive = _Growable.wrap(np.ones(n, dtype=np.bool_))
        index._slot_row = _Growable.wrap(np.arange(n, dtype=np.int64), fill=-1)
        index._row_slot = _Growable.wrap(np.arange(n, dtype=np.int64))
        index._inv_ptr = arrays["inv_ptr"]
        index._inv_slots = arrays["inv_slots"]
        index._live_terms = float(fwd_ptr[-1])
        lengths = np.diff(fwd_ptr).astype(np.int32)  # not the file's `min_len`: it needs no trust
        index._min_len = _Growable.wrap(_fewest(index._inv_ptr, index._inv_slots, lengths), _NO_ROW)
        return index

    def vocabulary_size(self) -> int:
        return len(self._vocab)

    def memory_bytes(self) -> int:
        """Approximate resident size of the index, for the benchmark's per-row budget."""
        arrays = (self._fwd_terms, self._fwd_ptr, self._doc_len, self._weight, self._alive)
        arrays += (self._min_len,)
        total = sum(a.nbytes() for a in arrays) + self._slot_row.nbytes()
        total += self._row_slot.nbytes() + self._inv_ptr.nbytes + self._inv_slots.nbytes
        total += sum(len(w) + 100 for w in self._vocab)  # str object + dict entry, roughly
        total += sum(56 + 8 * len(v) for v in self._delta.values())
        return total


def _fewest(ptr: np.ndarray, postings: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each term's fewest terms of a row holding it (`_NO_ROW` if none), from its postings
    `postings[ptr[t]:ptr[t + 1]]` and the rows' term counts `lengths` (int32)."""
    fewest = np.full(len(ptr) - 1, _NO_ROW, dtype=np.int32)
    held = np.diff(ptr) > 0
    if held.any():
        fewest[held] = np.minimum.reduceat(lengths[postings], ptr[:-1][held])
    return fewest


_DTYPES = {
    "vocab": np.uint8,
    "fwd_ptr": np.int64,
    "fwd_terms": np.int32,
    "weight": np.float32,
    "inv_ptr": np.int64,
    "inv_slots": np.int32,
}


def _check_arrays(arrays: dict[str, np.ndarray], n_terms: int) -> None:
    """Raise ValueError unless the arrays form an index `search` can run on without an
    out-of-range read (the file's checksum covers bit rot; this covers a forged file)."""
    if any(arrays.get(name) is None or arrays[name].dtype != t for name, t in _DTYPES.items()):
        raise ValueError("index arrays are missing or of the wrong type")
    n = len(arrays["weight"])
    for ptr, items, bound, count in (
        (arrays["fwd_ptr"], arrays["fwd_terms"], n_terms, n),
        (arrays["inv_ptr"], arrays["inv_slots"], n, n_terms),
    ):
        if len(ptr) != count + 1 or ptr[0] != 0 or ptr[-1] != len(items):
            raise ValueError("index pointers disagree with their arrays")
        if np.any(np.diff(ptr) < 0) or (len(items) and not 0 <= items.min() <= items.max() < bound):
            raise ValueError("index entries out of range")
    if not np.all(np.isfinite(arrays["weight"])):
        raise ValueError("index weights are not finite")
