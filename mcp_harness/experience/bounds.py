"""Score bounds that top-k pruning relies on, shared by the in-memory index and `cold`.

A bound must hold for every row the pruning skips, or a result changes: groups of a query can
share a term (two file names both match `<file>`), so a row may hold more groups than it has
terms, and the Jaccard bound counts that in.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass


def shared_terms(groups: Iterable[Iterable[Hashable]]) -> int:
    """How many fewer terms than groups a row may need to hold groups: a term in c groups (two
    file names share `<file>`) holds them all, saving c - 1."""
    counts: dict[Hashable, int] = {}
    for words in groups:
        for word in words:
            counts[word] = counts.get(word, 0) + 1
    return sum(c - 1 for c in counts.values())


@dataclass(frozen=True)
class Bound:
    """What the Jaccard bound knows of the query: its group count and `shared_terms`."""

    q_len: int
    shared: int

    def jaccard(self, m: int, d_min: float) -> float:
        """The highest |Q ∩ R| / |Q ∪ R| (as scored) of a row holding `m` groups, or fewer:
        it has at least max(d_min, m - shared, 1) terms."""
        return m / (self.q_len + max(d_min, m - self.shared, 1) - m)
