"""Two-way layout compatibility with the seed, on hand-built fixtures: strided seed dumps
read in the right order, tensors written here load in a re-implementation of the seed's
`load_tensor`, and opening someone else's experience read-only writes nothing into it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mcp_harness.errors import HarnessError
from mcp_harness.experience.store import Experience, Row
from mcp_harness.storage import layout


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")


def load(tensor_dir: Path) -> tuple[tuple[int, ...], list, list[int]]:
    """Shape, row-major elements (None: absent) and present flat indices, as read here."""
    shape = layout.read_shape(tensor_dir)
    present = sorted(layout.scan_elements(tensor_dir, shape))
    return shape, [layout.read_element(tensor_dir, i) for i in range(layout.numel(shape))], present


def seed_load_tensor(tensor_dir: Path) -> tuple[list, torch.Tensor]:
    """The seed's `load_tensor` as its docs describe it: `shape` and `stride` are both
    required; the storage holds element k (the storage offset) at `storage/<digits of k>/data`;
    the tensor is `as_strided(shape, stride)` over that storage; a missing file is absent
    (coefficient 0). Returns the nested texts and the coefficients."""
    shape = json.loads((tensor_dir / "shape").read_text())
    stride = json.loads((tensor_dir / "stride").read_text())  # the seed fails without it
    size = 1 + sum((n - 1) * s for n, s in zip(shape, stride, strict=True)) if all(shape) else 0
    texts, coef = [], torch.zeros(max(size, 1) if shape else 1)
    for k in range(max(size, 1) if shape else 1):
        path = tensor_dir / "storage" / Path(*str(k)) / "data"
        texts.append(path.read_text(encoding="utf-8") if path.exists() else None)
        coef[k] = float(path.exists())
    view = torch.arange(len(texts)).as_strided(shape, stride)
    nested = [texts[int(k)] for k in view.flatten()]
    values = coef.as_strided(shape, stride)

    def fold(items: list, dims: list[int]) -> list:
        if len(dims) <= 1:
            return items
        step = len(items) // dims[0]
        return [fold(items[i * step : (i + 1) * step], dims[1:]) for i in range(dims[0])]

    return (fold(nested, shape) if shape else nested[0]), values


def transposed_dump(root: Path) -> Path:
    """What the seed's dump_tensor leaves for the transpose of [["a","b","c"],["d","e","f"]]:
    the base storage in its own order, with shape [3, 2] and stride [1, 3]."""
    dump = root / "transposed"
    files = {"shape": "[3, 2]", "stride": "[1, 3]"}
    files.update({f"storage/{k}/data": text for k, text in enumerate("abcdef")})
    del files["storage/4/data"]  # "e" is absent
    write(dump, files)
    return dump


def test_a_strided_seed_dump_reads_in_the_right_order(tmp_path: Path) -> None:
    dump = transposed_dump(tmp_path)
    before = tree(dump)
    shape, elements, present = load(dump)
    assert shape == (3, 2)
    assert elements == ["a", "d", "b", None, "c", "f"]
    assert present == [0, 1, 2, 4, 5]
    seed = seed_load_tensor(dump)[0]  # what the seed itself reads
    assert [cell for row in seed for cell in row] == elements
    assert tree(dump) == before
    with pytest.raises(HarnessError, match=r"strided view .* is read-only") as info:
        layout.write_element(dump, 0, "x")
    assert "copy it" in info.value.fix
    assert tree(dump) == before


def test_storage_index_follows_the_stride() -> None:
    view = torch.arange(24).reshape(2, 3, 4).permute(2, 0, 1)
    shape, stride = tuple(view.shape), tuple(view.stride())
    assert [layout.storage_index(shape, stride, i) for i in range(24)] == view.flatten().tolist()


def test_tensors_written_here_load_in_the_seeds_load_tensor(tmp_path: Path) -> None:
    nested = [["q0", "k0", None], ["q1", "", "v1"]]
    plain = tmp_path / "plain"
    plain.mkdir()
    layout.write_shape(plain, (2, 3))
    for flat, text in enumerate(cell for row in nested for cell in row):
        if text is not None:
            layout.write_element(plain, flat, text)
    texts, coef = seed_load_tensor(plain)
    assert texts == nested and coef.tolist() == [[1, 1, 0], [1, 1, 1]]
    experience = Experience.create(tmp_path / "exp")
    experience.append([Row("ls\nlist", "list the files", "ls -la")])
    texts, _ = seed_load_tensor(tmp_path / "exp")
    assert texts == [["ls\nlist", "list the files", "ls -la"]]


def test_a_seed_experience_opened_read_only_writes_nothing(tmp_path: Path) -> None:
    exp = tmp_path / "seed-exp"
    write(
        exp,
        {
            "shape": "[2, 3]",
            "stride": "[3, 1]",
            "storage/0/data": "list\nfiles",
            "storage/1/data": "list the files",
            "storage/2/data": "ls",
            "storage/3/data": "disk\nusage",
            "storage/4/data": "show disk usage",
            "storage/5/data": "df -h",
        },
    )
    before = tree(exp)
    opened = Experience.open(exp, read_only=True)
    assert [(r.key, r.value) for r in opened.rows()] == [
        ("list the files", "ls"),
        ("show disk usage", "df -h"),
    ]
    assert opened.search("disk usage", k=1)[0].row.value == "df -h"
    with pytest.raises(HarnessError, match="opened read-only"):
        opened.append([Row("x", "y", "z")])
    assert tree(exp) == before  # no .lock, no index, no provenance file
    assert not (exp / ".lock").exists()
