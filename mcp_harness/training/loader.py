"""Batches of run inputs from the files of a directory (the seed's data loader).

`DirectoryLoader(root, batch_size)` yields `{"path": [...], "text": [...]}` batches — relative
paths and UTF-8 texts of the files matching `pattern`, sorted, or shuffled by `seed` — ready to
be a module's run inputs (`Session(inputs=batch)`). Hidden files and symlinks are skipped.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from mcp_harness.errors import HarnessError


class DirectoryLoader:
    def __init__(
        self,
        root: Path | str,
        batch_size: int = 1,
        pattern: str = "*",
        seed: int | None = None,
        drop_last: bool = False,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise HarnessError(f"{self.root}: not a directory", "point the loader at a folder")
        if batch_size < 1:
            raise HarnessError(f"batch_size {batch_size} is below 1", "use batch_size >= 1")
        self.batch_size, self.seed, self.drop_last = batch_size, seed, drop_last
        self.files = sorted(
            p.relative_to(self.root)
            for p in self.root.rglob(pattern)
            if p.is_file()
            and not p.is_symlink()
            and not any(part.startswith(".") for part in p.relative_to(self.root).parts)
        )
        if not self.files:
            raise HarnessError(
                f"{self.root}: no files match {pattern!r}", "check the directory and pattern"
            )

    def __len__(self) -> int:
        full, rest = divmod(len(self.files), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[dict[str, list[str]]]:
        order = list(self.files)
        if self.seed is not None:
            random.Random(self.seed).shuffle(order)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            if self.drop_last and len(chunk) < self.batch_size:
                return
            yield {
                "path": [str(p) for p in chunk],
                "text": [
                    (self.root / p).read_text(encoding="utf-8", errors="replace") for p in chunk
                ],
            }
