"""A bounded memo of an experience's search answers, keyed on the index version read.

Why: a forward pass asks an experience the same question many times (a loop's iterations over
one input, inputs that repeat across a batch), and each ask is a retrieval. An answer is kept
under (text, k, method, `RetrievalIndex.version`); the version changes with every change of the
index (a commit, or a reload after another process committed), so a kept answer is never stale
and the answers of older versions age out of the memo. Exploration noise is never memoised.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp_harness.experience.index import Match

ENTRIES = 256  # answers kept, least recently used dropped first
LONGEST_TEXT = 4096  # longer query texts are not kept (they would dominate the memory)
MOST_ROWS = 256  # answers asking for more rows are not kept


class SearchCache:
    """Least-recently-used answers of `RetrievalIndex.search` by (text, k, method, version)."""

    def __init__(self, entries: int = ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, tuple[Match, ...]] = OrderedDict()
        self._size = entries
        self._lock = threading.Lock()

    @staticmethod
    def key(text: str, k: int, method: str, version: int) -> Hashable | None:
        """The memo key of a search, or None when its answer is not to be kept."""
        if len(text) > LONGEST_TEXT or k > MOST_ROWS:
            return None
        return (text, k, method, version)

    def get(self, key: Hashable) -> list[Match] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
        return list(found)

    def put(self, key: Hashable, matches: Sequence[Match]) -> None:
        with self._lock:
            self._entries[key] = tuple(matches)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
