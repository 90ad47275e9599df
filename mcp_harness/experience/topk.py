"""Exact top-k of one query over the in-memory index's postings (MaxScore), for `index`.

Query groups are taken rarest first, and the slots of the groups taken so far are scored
exactly (membership in the other groups by binary search or by marking, whichever touches
less). Groups are added only while the k-th best exact score does not beat `reach`: the
highest score a slot holding only the groups not taken could have. A slot holding j of them
has at least as many terms as the j-th smallest of their `shortest` (each group's fewest terms
of a row holding it, a lower bound kept by the index), which is what makes the Jaccard bound
prune. The arithmetic is the dense formulas' own, in their dtypes and order, so scores and the
row-index tie-break are bit for bit those of scoring every row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcp_harness.experience.bounds import Bound

BM25_K1 = 1.2
BM25_B = 0.75
_SORT_AT_MOST = 4096  # `kth_largest` sorts arrays this short
ONE_PASS_AT_MOST = 1024  # an index of this many slots is scored in one pass: see `score`
_MASK_DTYPES = (np.uint8, np.uint16, np.uint32, np.uint32) + (np.uint64,) * 4  # by (groups-1)//8


@dataclass(frozen=True)
class Live:
    """What scoring reads of the index's slots; the index keeps one until it changes."""

    alive: np.ndarray  # bool per slot
    count: int  # live slots
    doc_len: np.ndarray  # float32 per slot
    weight: np.ndarray  # float32 per slot
    w_max: float  # highest weight of a live slot
    d_min: float  # fewest terms of a live slot
    avg_len: float


def contains(members: list[np.ndarray], slots: np.ndarray, n_slots: int) -> np.ndarray:
    """Which of `slots` (ascending) are in any of the sorted posting arrays `members`: by
    binary search when the postings are many more than the slots, else by marking them."""
    found = np.zeros(len(slots), dtype=np.bool_)
    for postings in members:
        if len(postings) > 16 * len(slots):
            at = np.searchsorted(postings, slots)
            found |= postings[np.minimum(at, len(postings) - 1)] == slots
        elif len(postings):
            marks = np.zeros(n_slots, dtype=np.bool_)
            marks[postings] = True
            found |= marks[slots]
    return found


def group_df(live: Live, members: list[np.ndarray]) -> int:
    """How many live slots hold a member of the group."""
    dead = len(live.alive) > live.count
    if len(members) == 1:
        only = members[0]
        return int(np.count_nonzero(live.alive[only])) if dead else len(only)
    if len(members) == 2 and not dead:
        small, large = sorted(members, key=len)
        both = int(np.count_nonzero(contains([large], small, len(live.alive))))
        return len(small) + len(large) - both
    union = np.unique(np.concatenate(members))
    return int(np.count_nonzero(live.alive[union]))


def bm25_norm(doc_len: np.ndarray | float, avg_len: float) -> np.ndarray | float:
    """BM25's length normalisation, (k1 + 1) / (k1 (1 - b + b dl / avgdl) + 1)."""
    return (BM25_K1 + 1) / (1 + BM25_K1 * (1 - BM25_B + BM25_B * doc_len / avg_len))


def score(
    live: Live,
    groups: list[list[np.ndarray]],
    shortest: list[int],
    bound: Bound,
    idf: np.ndarray | None,
    k: int | None,
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(live slots, score x weight, their k-th best score) of every slot that can be among the
    top `k`: Jaccard when `idf` is None, else BM25. With `k` None, every slot in the query's
    postings, and no k-th score; so too for an index of at most ONE_PASS_AT_MOST slots, where
    a pass over every group costs less than the passes that would prune some."""
    n_slots = len(live.alive)
    sizes = [sum(len(p) for p in members) for members in groups]
    by_size = sorted(range(len(groups)), key=sizes.__getitem__)
    taken = 1 if k is not None and n_slots > ONE_PASS_AT_MOST else len(groups)
    if n_slots <= ONE_PASS_AT_MOST:  # short postings: as int32 each use as an index converts
        groups = [[p.astype(np.intp) for p in members] for members in groups]
    while True:
        slots, member = _candidates(live, groups, by_size[:taken])
        for g in by_size[taken:]:
            member[g] = contains(groups[g], slots, n_slots)
        doc_len = live.doc_len[slots]
        if idf is None:
            inter = np.zeros(len(slots), dtype=np.int64)
            for held in member.values():
                inter += held
            sim = (inter / (bound.q_len + doc_len - inter)).astype(np.float32)
        else:
            idf_sum = np.zeros(len(slots), dtype=np.float64)
            for g in range(len(groups)):  # in group order, as a per-row sum adds them
                idf_sum += member[g] * idf[g]
            sim = (idf_sum * bm25_norm(doc_len, live.avg_len)).astype(np.float32)
        values = sim * live.weight[slots]
        if k is None or taken == len(groups):
            return slots, values, None
        positive = values[values > 0]
        if len(positive) < k:
            need = len(groups)
        else:
            kth = kth_largest(positive, k)
            need = taken
            while need < len(groups) and not (
                reach(live, by_size[need:], shortest, bound, idf) * (1 + 1e-6) < kth
            ):
                need += 1
        if need == taken:
            keep = values >= kth  # the top k are among these
            return slots[keep], values[keep], kth
        taken = need


def kth_largest(values: np.ndarray, k: int) -> float:
    """The `k`-th largest of `values` (at least `k` of them). A short array is sorted: numpy's
    partition runs ten times slower when most values are equal, as Jaccard scores often are,
    and sorting a few thousand costs no more than partitioning them."""
    at = len(values) - k
    if len(values) <= _SORT_AT_MOST:
        return float(np.sort(values)[at])
    return float(np.partition(values, at)[at])


def reach(
    live: Live, rest: list[int], shortest: list[int], bound: Bound, idf: np.ndarray | None
) -> float:
    """The highest score a slot holding only groups `rest` could have: over j, a slot holding
    j of them has at least max(d_min, the j-th smallest of their `shortest`) terms, and for
    BM25 at most the j highest idfs."""
    fewest = sorted(shortest[g] for g in rest)
    if idf is None:
        best = max(bound.jaccard(j, max(live.d_min, d)) for j, d in enumerate(fewest, 1))
    else:
        gains = np.cumsum(np.sort(idf[rest])[::-1]).tolist()
        best = max(
            float(bm25_norm(max(live.d_min, d), live.avg_len)) * gain
            for d, gain in zip(fewest, gains, strict=True)
        )
    return live.w_max * best


def _candidates(
    live: Live, groups: list[list[np.ndarray]], taken: list[int]
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The live slots in the postings of groups `taken`, and which of those groups hold
    each (one bit per group, so a slot in two members of a group counts once)."""
    n_slots = len(live.alive)
    dead = n_slots > live.count
    if len(taken) == 1 and len(groups[taken[0]]) == 1:  # one term: its postings, once each
        slots = groups[taken[0]][0]
        slots = slots[live.alive[slots]] if dead else slots
        return slots, {taken[0]: np.ones(len(slots), dtype=np.bool_)}
    words = (len(taken) + 63) // 64
    dtype = np.uint64 if words > 1 else _MASK_DTYPES[(len(taken) - 1) // 8]
    masks = [np.zeros(n_slots, dtype=dtype) for _ in range(words)]
    arrays = []
    for i, g in enumerate(taken):
        bit = dtype(1) << dtype(i % 64)
        for postings in groups[g]:
            masks[i // 64][postings] |= bit
            arrays.append(postings)
    hits = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    if len(arrays) == 1:
        slots = hits  # one term's postings hold each slot once
    elif 8 * len(hits) < n_slots:  # few hits: keep one of each without scanning every slot
        first = np.empty(n_slots, dtype=np.int64)
        order = np.arange(len(hits))
        first[hits] = order
        slots = np.sort(hits[first[hits] == order])
    else:
        slots = np.flatnonzero(np.bitwise_or.reduce(masks) if words > 1 else masks[0])
    slots = slots[live.alive[slots]] if dead else slots
    bits = [mask[slots] for mask in masks]
    member = {
        g: ((bits[i // 64] >> dtype(i % 64)) & dtype(1)).astype(np.bool_)
        for i, g in enumerate(taken)
    }
    return slots, member


def best(
    slots: np.ndarray,
    values: np.ndarray,
    kth: float | None,
    slot_row: np.ndarray,
    ordered: bool,
    k: int,
) -> list[tuple[int, float]]:
    """The `k` best (score desc, row asc) of the slots (ascending) scoring above 0, as
    (row, score); `kth` is their k-th best score when known, `ordered` says rows ascend with
    slots. Of the slots tied at the k-th score only the lowest rows are sorted (Jaccard scores
    tie by the thousand)."""
    if kth is None:
        positive = values > 0
        slots, values = slots[positive], values[positive]
        if len(slots) > k:
            kth = kth_largest(values, k)
    if kth is not None:
        above = np.flatnonzero(values > kth)
        tied = np.flatnonzero(values == kth)
        need = k - len(above)
        if len(tied) > need:
            lowest = slice(need) if ordered else np.argpartition(slot_row[slots[tied]], need - 1)
            tied = tied[lowest][:need]
        pick = np.concatenate([above, tied])
        slots, values = slots[pick], values[pick]
    rows = slot_row[slots]
    order = np.lexsort((rows, -values))[:k]
    return [(int(rows[i]), float(values[i])) for i in order]
