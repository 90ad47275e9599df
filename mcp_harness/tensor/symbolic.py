"""SymbolicTensor: elements are UTF-8 text files in the seed layout; coefficients are torch floats.

Coefficient meaning for a plain tensor: 1.0 = content present, 0.0 = absent. Other kinds
(gradients, statuses, row weights) give coefficients their own meaning; such coefficients are
saved in a `coefficients` sidecar (a JSON list), which is written only when they differ from the
presence rule, so plain tensors stay byte-for-byte in the seed layout.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from mcp_harness.errors import CorruptTensorError, HarnessError
from mcp_harness.storage import layout
from mcp_harness.storage.atomic import atomic_write
from mcp_harness.storage.textdiff import PatchError, apply_patch, unified_diff

COEFFICIENTS_FILE = "coefficients"
Leaf = str | Path | None
Index = int | slice | Sequence[int] | Any


class SymbolicTensor:
    """A tensor whose elements are text files under `root/uid` and whose coefficients are torch."""

    def __init__(self, root: Path, uid: str, shape: tuple[int, ...], coef: torch.Tensor) -> None:
        self.root = Path(root)
        self.uid = uid
        self.shape = tuple(shape)
        self.coef = coef

    # ---- construction -------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.root / self.uid

    @property
    def numel(self) -> int:
        return layout.numel(self.shape)

    @classmethod
    def make(
        cls, nested: Any, root: Path | str, *, symlink: bool = False, uid: str | None = None
    ) -> SymbolicTensor:
        """Build from nested lists of str (content), Path (copied, or linked) and None (absent)."""
        shape = _infer_shape(nested)
        leaves = list(_flatten(nested, shape))
        for flat, leaf in enumerate(leaves):
            if leaf is not None and not isinstance(leaf, (str, Path)):
                raise HarnessError(
                    f"element {flat} is a {type(leaf).__name__}; elements are str, Path or None",
                    "convert the value to text before building the tensor",
                )
        tensor = cls._allocate(Path(root), shape, uid)
        for flat, leaf in enumerate(leaves):
            if isinstance(leaf, Path):
                if not leaf.is_file():
                    continue
                if symlink:
                    tensor._link_element(flat, Path(os.path.realpath(leaf)))
                else:
                    tensor._write(flat, _read_source(leaf))
            elif isinstance(leaf, str):
                tensor._write(flat, leaf)
            else:
                continue
            tensor.coef.view(-1)[flat] = 1.0
        return tensor

    @classmethod
    def none(
        cls, shape: Sequence[int], root: Path | str, *, uid: str | None = None
    ) -> SymbolicTensor:
        """All elements absent (coefficient 0)."""
        return cls._allocate(Path(root), tuple(shape), uid)

    @classmethod
    def _allocate(cls, root: Path, shape: tuple[int, ...], uid: str | None) -> SymbolicTensor:
        uid = uid or uuid.uuid4().hex
        tensor_dir = root / uid
        if (tensor_dir / layout.SHAPE_FILE).exists():
            raise HarnessError(
                f"{tensor_dir}: a tensor already exists here", "choose another uid or directory"
            )
        tensor_dir.mkdir(parents=True, exist_ok=True)
        layout.write_shape(tensor_dir, shape)
        return cls(root, uid, shape, torch.zeros(shape, dtype=torch.float32))

    @classmethod
    def load(cls, tensor_dir: Path | str) -> SymbolicTensor:
        """Load `<root>/<uid>`; coefficients come from the sidecar or from element presence."""
        tensor_dir = Path(tensor_dir).absolute()
        shape = layout.read_shape(tensor_dir)
        present = layout.scan_elements(tensor_dir, shape)
        coef = torch.zeros(layout.numel(shape), dtype=torch.float32)
        if present:
            coef[torch.tensor(sorted(present))] = 1.0
        sidecar = tensor_dir / COEFFICIENTS_FILE
        if sidecar.exists():
            coef = _read_coefficients(sidecar, layout.numel(shape))
        return cls(tensor_dir.parent, tensor_dir.name, shape, coef.reshape(shape))

    def save(self) -> None:
        """Persist shape and coefficients (element files are written as they change)."""
        layout.write_shape(self.path, self.shape)
        sidecar = self.path / COEFFICIENTS_FILE
        presence = torch.tensor(
            [self.has(flat) for flat in range(self.numel)], dtype=torch.float32
        ).reshape(self.shape)
        if torch.equal(self.coef, presence):
            sidecar.unlink(missing_ok=True)
        else:
            atomic_write(sidecar, json.dumps(self.coef.reshape(-1).tolist()))

    # ---- elements -----------------------------------------------------------------------
    def has(self, flat: int) -> bool:
        return layout.element_path(self.path, flat).exists()

    def get(self, coords: Sequence[int]) -> str | None:
        """The element's text, or None when absent."""
        return layout.read_element(self.path, layout.flat_index(self.shape, tuple(coords)))

    def set(
        self, coords: Sequence[int], content: str | None, coefficient: float | None = None
    ) -> None:
        """Write one element atomically (None removes it); coefficient defaults to presence."""
        flat = layout.flat_index(self.shape, tuple(coords))
        if content is None:
            layout.remove_element(self.path, flat)
        else:
            self._write(flat, content)
        default = 0.0 if content is None else 1.0
        self.coef.view(-1)[flat] = default if coefficient is None else coefficient

    def items(self) -> Iterator[tuple[int, str | None]]:
        """(flat index, text or None) for every element in row-major order."""
        for flat in range(self.numel):
            yield flat, layout.read_element(self.path, flat)

    def tolist(self) -> Any:
        """Nested lists of str / None, the inverse of `make`."""
        flat = [text for _, text in self.items()]
        return _unflatten(flat, self.shape)

    # ---- slicing ------------------------------------------------------------------------
    def slice(self, index: Index, root: Path | str | None = None) -> SymbolicTensor:
        """A copy of the selected elements (torch indexing semantics)."""
        return self._select(index, root, link=False)

    def view(self, index: Index, root: Path | str | None = None) -> SymbolicTensor:
        """A view of the selected elements: relative symlinks, so writes go through to `self`."""
        return self._select(index, root, link=True)

    def _select(self, index: Index, root: Path | str | None, *, link: bool) -> SymbolicTensor:
        try:
            picked = torch.arange(self.numel).reshape(self.shape)[index]
        except (IndexError, TypeError) as exc:
            raise HarnessError(
                f"index {index!r} does not fit shape {list(self.shape)}: {exc}",
                "use an int, a slice or a list of ints per dimension",
            ) from None
        out = SymbolicTensor._allocate(Path(root) if root else self.root, tuple(picked.shape), None)
        for dst, src in enumerate(picked.reshape(-1).tolist()):
            if link:
                out._link_element(dst, layout.element_path(self.path, src))
            else:
                text = layout.read_element(self.path, src)
                if text is not None:
                    out._write(dst, text)
        out.coef = self.coef.reshape(-1)[picked.reshape(-1)].reshape(picked.shape).clone()
        return out

    def assign(self, other: SymbolicTensor) -> None:
        """Copy `other`'s contents and coefficients into `self` (same shape)."""
        _require_same_shape(self, other, "assign")
        for flat, text in other.items():
            if text is None:
                layout.remove_element(self.path, flat)
            else:
                self._write(flat, text)
        self.coef = other.coef.clone()

    # ---- symbolic gradients -------------------------------------------------------------
    def diff(self, other: SymbolicTensor, root: Path | str | None = None) -> SymbolicTensor:
        """Element-wise unified diff, always self -> other; coefficient 1 where they differ."""
        _require_same_shape(self, other, "diff")
        out = SymbolicTensor._allocate(Path(root) if root else self.root, self.shape, None)
        for flat in range(self.numel):
            old = layout.read_element(self.path, flat) or ""
            new = layout.read_element(other.path, flat) or ""
            patch = unified_diff(old, new)
            if patch:
                out._write(flat, patch)
                out.coef.view(-1)[flat] = 1.0
        return out

    def patch(self, diffs: SymbolicTensor) -> None:
        """Apply element-wise diffs in place; an absent element is patched from empty (cold start).

        Every element is checked before anything is written, so a diff that no longer applies
        leaves the tensor unchanged.
        """
        _require_same_shape(self, diffs, "patch")
        updates: list[tuple[int, str]] = []
        for flat, patch in diffs.items():
            if not patch:
                continue
            old = layout.read_element(self.path, flat) or ""
            try:
                updates.append((flat, apply_patch(old, patch)))
            except PatchError as exc:
                raise HarnessError(
                    f"{layout.element_path(self.path, flat)}: patch for element {flat} does not "
                    f"apply: {exc}",
                    "recompute the diff against the element's current text",
                ) from None
        for flat, text in updates:
            self._write(flat, text)
            self.coef.view(-1)[flat] = 1.0

    # ---- internals ----------------------------------------------------------------------
    def _write(self, flat: int, text: str) -> None:
        layout.write_element(self.path, flat, text)

    def _link_element(self, flat: int, target: Path) -> None:
        link = layout.element_path(self.path, flat)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        os.symlink(os.path.relpath(target, link.parent), link)

    def __repr__(self) -> str:
        return f"SymbolicTensor(shape={list(self.shape)}, path={str(self.path)!r})"


def _require_same_shape(a: SymbolicTensor, b: SymbolicTensor, what: str) -> None:
    if a.shape != b.shape:
        raise HarnessError(
            f"cannot {what} tensors of shapes {list(a.shape)} ({a.path}) and {list(b.shape)} "
            f"({b.path})",
            "use tensors of the same shape",
        )


def _infer_shape(nested: Any) -> tuple[int, ...]:
    shape: list[int] = []
    node = nested
    while isinstance(node, list):
        shape.append(len(node))
        if not node:
            break
        node = node[0]
    _check_nesting(nested, tuple(shape), ())
    return tuple(shape)


def _check_nesting(node: Any, shape: tuple[int, ...], at: tuple[int, ...]) -> None:
    depth = len(at)
    if depth == len(shape):
        if isinstance(node, list):
            raise HarnessError(
                f"inconsistent nesting at {list(at)}: expected an element, found a list",
                "give every row the same nesting depth",
            )
        return
    if not isinstance(node, list) or len(node) != shape[depth]:
        found = f"a list of {len(node)}" if isinstance(node, list) else type(node).__name__
        raise HarnessError(
            f"inconsistent nesting at {list(at)}: expected a list of {shape[depth]}, found {found}",
            "give every row the same length",
        )
    for i, child in enumerate(node):
        _check_nesting(child, shape, (*at, i))


def _flatten(nested: Any, shape: tuple[int, ...]) -> Iterator[Leaf]:
    if not shape:
        yield nested
        return
    for child in nested:
        yield from _flatten(child, shape[1:])


def _unflatten(flat: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return flat[0]
    step = len(flat) // shape[0] if shape[0] else 0
    return [_unflatten(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _read_source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise HarnessError(
            f"{path}: not UTF-8 text", "tensor elements must be UTF-8 text"
        ) from None


def _read_coefficients(sidecar: Path, size: int) -> torch.Tensor:
    try:
        values = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CorruptTensorError(
            f"{sidecar}: coefficients sidecar is not a JSON list", "delete it to use presence"
        ) from None
    if not isinstance(values, list) or len(values) != size:
        raise CorruptTensorError(
            f"{sidecar}: expected {size} coefficients, found "
            f"{len(values) if isinstance(values, list) else type(values).__name__}",
            "delete the sidecar to fall back to element presence",
        )
    return torch.tensor(values, dtype=torch.float32)
