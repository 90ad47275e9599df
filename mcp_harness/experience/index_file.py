"""The retrieval index persisted beside an experience, so a new process need not read every row.

One file, read in one go: an 8-byte magic, the header length (u32), a JSON header, then named
numpy arrays, each 8-byte aligned. The header holds the label of the rows the index was built
from (`Label`), the keyword vocabulary its terms were made with, every array's dtype, offset
and length, and a CRC-32 of all bytes after the header. The caller compares the label with the
experience's current one: a different label or vocabulary means stale, and a bad magic, header,
size or checksum means corrupt; either way it rebuilds from the rows, so the file can only ever
save time, never change a result. Writes are atomic (temp file and rename) but not fsynced:
after a power cut the checksum catches a torn file.

Besides the index (`RetrievalIndex.to_arrays`) the file holds `meta_offsets`, where each row's
provenance line starts in `rows.jsonl`, so a cold open reads only the lines of the rows it shows,
`bounds` (float64: the highest row weight and the fewest terms of a row) and `min_len` (int32:
per term, the fewest terms of a row holding it), which `cold` prunes with. Reading the bytes and
checking them is `index_bytes`, which needs no numpy.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mcp_harness.experience.index import RetrievalIndex
from mcp_harness.experience.index_bytes import ALIGN, HEAD, MAGIC, Label, UnusableIndex, read
from mcp_harness.experience.keywords import VOCABULARY
from mcp_harness.storage.atomic import atomic_write

__all__ = ["Label", "UnusableIndex", "line_offsets", "load", "load_index", "save"]


def save(path: Path, label: Label, arrays: dict[str, np.ndarray]) -> None:
    """Write `arrays` (1-d, any numeric dtype) labelled with `label`."""
    layout: dict[str, list] = {}
    chunks: list[bytes] = []
    offset = 0
    for name, array in arrays.items():
        raw = np.ascontiguousarray(array).tobytes()
        layout[name] = [array.dtype.str, offset, len(array)]
        pad = -len(raw) % ALIGN
        chunks.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    payload = b"".join(chunks)
    header = {
        "label": asdict(label),
        "vocabulary": VOCABULARY,
        "arrays": layout,
        "crc32": zlib.crc32(payload),
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-(len(head) + HEAD.size) % ALIGN)
    # readable like rows.jsonl, so whoever may read the rows can use the index
    atomic_write(path, HEAD.pack(MAGIC, len(head)) + head + payload, durable=False, mode=0o644)


def load(path: Path, label: Label) -> dict[str, np.ndarray]:
    """The arrays of the index at `path` if it was built from `label`'s rows and is intact;
    raises `UnusableIndex` otherwise. The arrays are writable views of one buffer."""
    payload, layout = read(path, label)
    arrays = {}
    for name, (dtype, offset, count) in layout.items():
        try:
            kind = np.dtype(dtype)
            if offset < 0 or count < 0 or offset + count * kind.itemsize > len(payload):
                raise ValueError
            arrays[name] = np.frombuffer(payload, kind, count, offset)
        except (ValueError, TypeError):
            raise UnusableIndex(f"corrupt array {name!r}") from None
    return arrays


def load_index(path: Path, label: Label) -> tuple[RetrievalIndex, np.ndarray]:
    """The persisted index and provenance line offsets, if they are of `label`'s rows; raises
    `UnusableIndex` otherwise (forged arrays included: nothing here can fail later)."""
    arrays = load(path, label)
    offsets = arrays.pop("meta_offsets", None)
    for name in ("bounds", "min_len"):  # for `cold`; this index finds its own
        arrays.pop(name, None)
    try:
        index = RetrievalIndex.from_arrays(arrays)
    except (KeyError, ValueError, UnicodeDecodeError):
        raise UnusableIndex("corrupt arrays") from None
    if (
        len(index) != label.rows
        or offsets is None
        or offsets.dtype != np.int64
        or not 1 <= len(offsets) <= label.rows + 1
        or offsets[0] != 0
        or offsets[-1] > label.rows_size
        or np.any(np.diff(offsets) <= 0)
    ):
        raise UnusableIndex("corrupt provenance offsets")
    return index, offsets


def line_offsets(lengths: list[int], before: np.ndarray | None = None) -> np.ndarray:
    """Line start offsets (and the end) for lines of `lengths` bytes, after the lines whose
    offsets are `before`."""
    start = 0 if before is None else int(before[-1])
    offsets = np.empty(len(lengths) + 1, dtype=np.int64)
    offsets[0] = start
    np.cumsum(lengths, out=offsets[1:])
    offsets[1:] += start
    head = before[:-1] if before is not None else before
    return offsets if head is None else np.concatenate([head, offsets])
