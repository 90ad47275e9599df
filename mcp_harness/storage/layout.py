"""The seed's tensor directory layout, read and written exactly.

`<root>/<uid>/shape` holds a JSON list; element `i` (row-major flat index) lives at
`<root>/<uid>/storage/<decimal digits of i, one directory each>/data`, so 12 -> `storage/1/2/data`.
A missing element file means the element is absent. `stride` (a JSON list) is written beside
`shape` as the seed's `dump_tensor` writes it, so the seed's `load_tensor` reads tensors made
here; tensors here are always row-major (contiguous), and a seed dump of a non-contiguous view
is refused with the fix rather than read in the wrong order. Anything else in the directory is
a sidecar that the layout ignores.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path

from mcp_harness.errors import CorruptTensorError, HarnessError
from mcp_harness.storage.atomic import atomic_write

SHAPE_FILE = "shape"
# Non-contiguous seed dumps read in this process: directory -> (shape, stride).
_STRIDED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
STRIDE_FILE = "stride"
STORAGE_DIR = "storage"
DATA_FILE = "data"


def element_relpath(flat_index: int) -> str:
    """`storage/1/2/data` for flat index 12."""
    if flat_index < 0:
        raise ValueError(f"flat index must be >= 0, got {flat_index}")
    return "/".join((STORAGE_DIR, *str(flat_index), DATA_FILE))


def element_path(tensor_dir: Path, flat_index: int) -> Path:
    return tensor_dir / element_relpath(flat_index)


def numel(shape: tuple[int, ...] | list[int]) -> int:
    return math.prod(shape)


def flat_index(shape: tuple[int, ...], coords: tuple[int, ...]) -> int:
    """Row-major flat index of `coords` (the only way flat indices are computed)."""
    if len(coords) != len(shape):
        raise HarnessError(
            f"coordinates {list(coords)} have {len(coords)} dims but the tensor has shape "
            f"{list(shape)}",
            "give one index per dimension",
        )
    index = 0
    for size, coord in zip(shape, coords, strict=True):
        if not 0 <= coord < size:
            raise HarnessError(
                f"coordinates {list(coords)} are out of range for shape {list(shape)}",
                "use indices 0 <= i < size in each dimension",
            )
        index = index * size + coord
    return index


def read_shape(tensor_dir: Path) -> tuple[int, ...]:
    """Read and validate `<dir>/shape` (and `stride`, when there is one)."""
    path = tensor_dir / SHAPE_FILE
    if not tensor_dir.is_dir():
        raise HarnessError(
            f"{tensor_dir}: no such tensor directory",
            "check the path; a tensor directory holds a 'shape' file and a 'storage/' folder",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorruptTensorError(
            f"{tensor_dir}: missing shape file {path.name!r}",
            "this is not a tensor directory, or it was damaged; restore the shape file "
            "(a JSON list such as [2, 3])",
        ) from None
    except UnicodeDecodeError:
        raise CorruptTensorError(
            f"{path}: shape file is not UTF-8 text", "write a JSON list"
        ) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptTensorError(
            f"{path}: shape is not valid JSON ({exc.msg})", "write a JSON list such as [2, 3]"
        ) from None
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise CorruptTensorError(
            f"{path}: shape must be a JSON list of non-negative integers, got {text.strip()!r}",
            "write a JSON list such as [2, 3]",
        )
    shape = tuple(value)
    stride = read_stride(tensor_dir, shape)
    if stride == tuple(contiguous_stride(shape)):
        _STRIDED.pop(str(tensor_dir), None)
    else:
        _STRIDED[str(tensor_dir)] = (shape, stride)
    return shape


def contiguous_stride(shape: tuple[int, ...] | list[int]) -> list[int]:
    """Row-major strides, as torch gives them for a contiguous tensor of `shape`."""
    stride, step = [], 1
    for size in reversed(shape):
        stride.append(step)
        step *= max(size, 1)
    return stride[::-1]


def write_shape(tensor_dir: Path, shape: tuple[int, ...], *, durable: bool = True) -> None:
    """`stride` first, then `shape`: a reader that sees the new shape also sees its stride."""
    _writable(tensor_dir)
    atomic_write(tensor_dir / STRIDE_FILE, json.dumps(contiguous_stride(shape)), durable=durable)
    atomic_write(tensor_dir / SHAPE_FILE, json.dumps(list(shape)), durable=durable)


def read_stride(tensor_dir: Path, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The tensor's stride: its `stride` file, or row-major when there is none. A size-1
    dimension is never stepped over, so its stride is normalised to the row-major one."""
    path = tensor_dir / STRIDE_FILE
    contiguous = contiguous_stride(shape)
    try:
        stride = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return tuple(contiguous)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptTensorError(
            f"{path}: stride is not a JSON list", "write the JSON list torch's stride() gives"
        ) from None
    if (
        not isinstance(stride, list)
        or len(stride) != len(shape)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in stride)
    ):
        raise CorruptTensorError(
            f"{path}: stride {stride!r} does not match shape {list(shape)}",
            "write one non-negative stride per dimension, or remove the stride file",
        )
    return tuple(
        step if size > 1 else fixed
        for step, fixed, size in zip(stride, contiguous, shape, strict=True)
    )


def storage_index(shape: tuple[int, ...], stride: tuple[int, ...], flat: int) -> int:
    """Where the element at row-major index `flat` is stored in a strided dump."""
    offset = 0
    for size, step in zip(reversed(shape), reversed(stride), strict=True):
        flat, coord = divmod(flat, size) if size else (flat, 0)
        offset += coord * step
    return offset


def _stored(tensor_dir: Path, flat: int) -> int:
    strided = _STRIDED.get(str(tensor_dir))
    return flat if strided is None else storage_index(*strided, flat)


def _writable(tensor_dir: Path) -> None:
    if str(tensor_dir) in _STRIDED:
        shape, stride = _STRIDED[str(tensor_dir)]
        raise HarnessError(
            f"{tensor_dir}: a strided view (shape {list(shape)}, stride {list(stride)}) is "
            "read-only here",
            "copy its elements into a tensor of its own (read_element, then write_element) and "
            "write that",
        )


def _flat_from_parts(parts: tuple[str, ...]) -> int | None:
    """Digits path -> flat index, or None if the path is not canonical (e.g. leading zero)."""
    if not parts or not all(len(p) == 1 and p.isdigit() for p in parts):
        return None
    if len(parts) > 1 and parts[0] == "0":
        return None
    return int("".join(parts))


def scan_elements(tensor_dir: Path, shape: tuple[int, ...]) -> set[int]:
    """Flat indices whose element file exists; rejects storage that disagrees with the shape."""
    storage = tensor_dir / STORAGE_DIR
    present: set[int] = set()
    if not storage.exists():
        return present
    strided = _STRIDED.get(str(tensor_dir))
    if strided is not None and strided[0] == tuple(shape):
        # A view: element i is present when the file at its storage offset exists.
        return {
            i
            for i in range(numel(shape))
            if os.path.exists(f"{tensor_dir}/{element_relpath(storage_index(*strided, i))}")
        }
    size = numel(shape)
    for current, _dirs, files in os.walk(storage, followlinks=False):
        rel = Path(current).relative_to(storage).parts
        if DATA_FILE not in files:
            continue
        index = _flat_from_parts(rel)
        if index is None:
            raise CorruptTensorError(
                f"{storage / Path(*rel) / DATA_FILE}: element path is not a canonical flat index",
                "element files live at storage/<decimal digits>/data without leading zeros",
            )
        if index >= size:
            raise CorruptTensorError(
                f"{tensor_dir}: shape {list(shape)} has {size} elements but storage holds "
                f"element {index} ({element_relpath(index)})",
                "fix the shape file or remove the extra element files",
            )
        if os.path.exists(os.path.join(current, DATA_FILE)):
            present.add(index)
    return present


def read_element(tensor_dir: Path, flat: int) -> str | None:
    """The element's text, or None when absent (a dangling view link counts as absent)."""
    path = f"{tensor_dir}/{element_relpath(_stored(tensor_dir, flat))}"  # runs per row on load
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptTensorError(
            f"{path}: element {flat} is not UTF-8 text (byte {exc.start})",
            "tensor elements are UTF-8 text files; re-encode or remove the file",
        ) from None


def write_element(tensor_dir: Path, flat: int, content: str, *, durable: bool = True) -> None:
    _writable(tensor_dir)
    atomic_write(element_path(tensor_dir, flat), content, durable=durable)


def write_fresh_elements(tensor_dir: Path, items: dict[int, str]) -> None:
    """Write many elements of a tensor no one else writes (a run's trace): each file is still
    replaced atomically, but without the per-file temp-name search and fsync."""
    for flat, text in items.items():
        path = f"{tensor_dir}/{element_relpath(flat)}"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "wb") as handle:
            handle.write(text.encode("utf-8"))
        os.replace(path + ".tmp", path)


def remove_element(tensor_dir: Path, flat: int) -> None:
    _writable(tensor_dir)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(element_path(tensor_dir, flat))
