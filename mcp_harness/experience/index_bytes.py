"""The bytes of `index.bin` without numpy: header, label and checksum (`index_file` holds the
format's description and turns these bytes into numpy arrays; `cold` reads them as they are)."""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from mcp_harness.experience.keywords import VOCABULARY

MAGIC = b"MHXIDX02"
HEAD = struct.Struct("<8sI")
ALIGN = 8
Layout = dict[str, tuple[str, int, int]]  # name -> (dtype string, byte offset, item count)


@dataclass(frozen=True)
class Label:
    """What the index was built from: the experience's commit generation, its row count, and
    the size and modification time of `rows.jsonl` (which every commit rewrites or appends)."""

    generation: int
    rows: int
    rows_size: int
    rows_mtime_ns: int


class UnusableIndex(Exception):
    """The index file is missing, stale or corrupt; the message says which and why."""


def read(path: Path, label: Label) -> tuple[memoryview, Layout]:
    """The payload (after the header) and array layout of the index at `path`, if it was built
    from `label`'s rows and its checksum holds; raises `UnusableIndex` otherwise. Offsets and
    counts are not checked against the payload here."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            buf = bytearray(size)
            got = handle.readinto(buf)
    except FileNotFoundError:
        raise UnusableIndex("no index file") from None
    except OSError as exc:
        raise UnusableIndex(f"unreadable ({exc.strerror})") from None
    if got != size or size < HEAD.size:
        raise UnusableIndex("truncated")
    magic, head_len = HEAD.unpack_from(buf)
    if magic != MAGIC:
        raise UnusableIndex("not an index file of this version")
    start = HEAD.size + head_len
    if start > size:
        raise UnusableIndex("truncated header")
    try:
        header = json.loads(bytes(buf[HEAD.size : start]))
        stored = Label(**header["label"])
        layout = {name: (str(d), int(o), int(n)) for name, (d, o, n) in header["arrays"].items()}
        crc = int(header["crc32"])
        vocabulary = header.get("vocabulary")
    except (ValueError, TypeError, KeyError, AttributeError):
        raise UnusableIndex("corrupt header") from None
    if vocabulary != VOCABULARY:
        raise UnusableIndex(f"built with vocabulary {vocabulary}, this version uses {VOCABULARY}")
    if stored != label:
        raise UnusableIndex(f"stale (built from {_describe(stored)}, rows now {_describe(label)})")
    payload = memoryview(buf)[start:]
    if zlib.crc32(payload) != crc:
        raise UnusableIndex("checksum mismatch")
    return payload, layout


def _describe(label: Label) -> str:
    return (
        f"generation {label.generation}, {label.rows} rows, rows.jsonl of {label.rows_size} "
        f"bytes at mtime {label.rows_mtime_ns}"
    )
