"""The seed layout in both directions, with hand-built fixtures, and corrupt directories."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mcp_harness.errors import CorruptTensorError, HarnessError
from mcp_harness.storage import layout
from mcp_harness.storage.layout import element_relpath


def load(tensor_dir: Path) -> tuple[tuple[int, ...], list[str | None], set[int]]:
    """Shape, row-major elements (None: absent) and present flat indices, read by the layout."""
    shape = layout.read_shape(tensor_dir)
    present = layout.scan_elements(tensor_dir, shape)
    elements = [layout.read_element(tensor_dir, flat) for flat in range(layout.numel(shape))]
    return shape, elements, present


def make(tensor_dir: Path, shape: tuple[int, ...], elements: dict[int, str]) -> None:
    tensor_dir.mkdir(parents=True)
    layout.write_shape(tensor_dir, shape)
    for flat, text in elements.items():
        layout.write_element(tensor_dir, flat, text)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes)."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(
    ("index", "relpath"),
    [
        (0, "storage/0/data"),
        (1, "storage/1/data"),
        (9, "storage/9/data"),
        (10, "storage/1/0/data"),
        (12, "storage/1/2/data"),
        (123456, "storage/1/2/3/4/5/6/data"),
    ],
)
def test_element_relpath(index: int, relpath: str) -> None:
    assert element_relpath(index) == relpath


def test_hand_written_directory_loads_unchanged(tmp_path: Path) -> None:
    tensor_dir = tmp_path / "abc"
    # A [2, 6] tensor written by hand from the rules: elements 0, 1, 10 and 11 present.
    files = {
        "shape": b"[2, 6]",
        "storage/0/data": b"zero",
        "storage/1/data": b"one\n",
        "storage/1/0/data": "ten ✓".encode(),
        "storage/1/1/data": b"",
    }
    for rel, raw in files.items():
        (tensor_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (tensor_dir / rel).write_bytes(raw)
    before = tree(tensor_dir)

    shape, elements, present = load(tensor_dir)

    assert shape == (2, 6)
    assert elements[:10] == ["zero", "one\n", None, None, None, None, None, None, None, None]
    assert elements[10:] == ["ten ✓", ""]
    assert present == {0, 1, 10, 11}
    assert tree(tensor_dir) == before  # loading wrote nothing


def test_written_directory_follows_the_rules_exactly(tmp_path: Path) -> None:
    nested = [[f"e{r}{c}" if (r + c) % 3 else None for c in range(4)] for r in range(4)]
    present = {4 * r + c: text for r, cells in enumerate(nested) for c, text in enumerate(cells)}
    make(tmp_path / "t1", (4, 4), {flat: text for flat, text in present.items() if text})

    expected = {"shape": b"[4, 4]", "stride": b"[4, 1]"}
    for r in range(4):
        for c in range(4):
            if nested[r][c] is not None:
                expected["storage/" + "/".join(str(4 * r + c)) + "/data"] = nested[r][c].encode()
    assert tree(tmp_path / "t1") == expected
    assert json.loads((tmp_path / "t1" / "shape").read_text()) == [4, 4]


def test_scalar_tensor_uses_storage_0(tmp_path: Path) -> None:
    make(tmp_path / "s", (), {layout.flat_index((), ()): "only"})
    assert tree(tmp_path / "s") == {"shape": b"[]", "stride": b"[]", "storage/0/data": b"only"}
    assert load(tmp_path / "s")[1] == ["only"]


def _write(tensor_dir: Path, files: dict[str, bytes]) -> None:
    for rel, raw in files.items():
        (tensor_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (tensor_dir / rel).write_bytes(raw)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"storage/0/data": b"x"}, "missing shape file"),
        ({"shape": b"[2"}, "shape is not valid JSON"),
        ({"shape": b'{"a": 1}'}, "shape must be a JSON list"),
        ({"shape": b"[2, -1]"}, "shape must be a JSON list of non-negative integers"),
        (
            {"shape": b"[2]", "storage/5/data": b"x"},
            "shape [2] has 2 elements but storage holds element 5",
        ),
        ({"shape": b"[20]", "storage/0/1/data": b"x"}, "not a canonical flat index"),
    ],
)
def test_corrupt_directory_is_named(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    tensor_dir = tmp_path / "bad"
    _write(tensor_dir, files)
    before = tree(tensor_dir)
    with pytest.raises(CorruptTensorError) as info:
        load(tensor_dir)
    assert message in str(info.value)
    assert str(tensor_dir) in str(info.value)
    assert info.value.fix
    assert tree(tensor_dir) == before


def test_non_utf8_element_is_named(tmp_path: Path) -> None:
    tensor_dir = tmp_path / "bad"
    _write(tensor_dir, {"shape": b"[2]", "storage/1/data": b"ok \xff\xfe"})
    assert layout.read_element(tensor_dir, 0) is None
    with pytest.raises(CorruptTensorError, match=r"storage/1/data: element 1 is not UTF-8"):
        layout.read_element(tensor_dir, layout.flat_index((2,), (1,)))


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no such tensor directory"):
        load(tmp_path / "nope")


def test_dangling_view_link_counts_as_absent(tmp_path: Path) -> None:
    tensor_dir = tmp_path / "v"
    _write(tensor_dir, {"shape": b"[1]"})
    (tensor_dir / "storage/0").mkdir(parents=True)
    os.symlink("../../../gone/storage/0/data", tensor_dir / "storage/0/data")
    assert load(tensor_dir) == ((1,), [None], set())


def test_shape_is_written_with_the_seeds_stride(tmp_path: Path) -> None:
    """`stride` beside `shape` is what torch gives a contiguous tensor, as the seed's
    dump_tensor writes it (its load_tensor requires the file)."""
    import torch

    for shape in [(), (3,), (2, 3), (4, 0, 2), (2, 3, 4)]:
        tensor_dir = tmp_path / f"t{len(shape)}-{layout.numel(shape)}"
        tensor_dir.mkdir()
        layout.write_shape(tensor_dir, shape)
        stride = json.loads((tensor_dir / layout.STRIDE_FILE).read_text())
        assert stride == list(torch.empty(shape).stride()), shape
        assert layout.read_shape(tensor_dir) == shape


def test_stride_files_are_checked(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "shape").write_text("[3, 2]")
    (dump / "stride").write_text("[2, 1]")  # contiguous: read as is
    assert layout.read_shape(dump) == (3, 2)
    (dump / "shape").write_text("[1, 6]")
    (dump / "stride").write_text("[99, 1]")  # a size-1 dimension's stride says nothing
    assert layout.read_shape(dump) == (1, 6)
    (dump / "stride").write_text("[1]")
    with pytest.raises(CorruptTensorError, match="does not match shape"):
        layout.read_shape(dump)
    (dump / "stride").write_text('"x"')
    with pytest.raises(CorruptTensorError, match="stride"):
        layout.read_shape(dump)
