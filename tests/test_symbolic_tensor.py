"""Symbolic tensor operations: make, load/save, slice/view, assign, get/set, diff/patch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mcp_harness.errors import HarnessError
from mcp_harness.tensor import SymbolicTensor


def test_make_from_str_path_and_none(tmp_path: Path) -> None:
    source = tmp_path / "src.txt"
    source.write_text("from a file\n")
    tensor = SymbolicTensor.make([["a", source], [None, tmp_path / "missing"]], tmp_path / "t")
    assert tensor.tolist() == [["a", "from a file\n"], [None, None]]
    assert tensor.coef.dtype == torch.float32
    assert tensor.coef.tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert not (tensor.path / "storage/1/data").is_symlink()


def test_make_with_symlink_links_path_leaves(tmp_path: Path) -> None:
    source = tmp_path / "src.txt"
    source.write_text("linked")
    tensor = SymbolicTensor.make([source, "plain"], tmp_path / "t", symlink=True)
    link = tensor.path / "storage/0/data"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert tensor.get((0,)) == "linked"


@pytest.mark.parametrize(
    ("nested", "message"),
    [
        (
            [["a", "b"], ["c"]],
            "inconsistent nesting at [1]: expected a list of 2, found a list of 1",
        ),
        ([["a", "b"], "c"], "inconsistent nesting at [1]: expected a list of 2, found str"),
        ([["a", ["b"]]], "inconsistent nesting at [0, 1]: expected an element, found a list"),
        ([1, 2], "element 0 is a int"),
    ],
)
def test_bad_nesting_is_rejected_before_writing(tmp_path: Path, nested, message: str) -> None:
    with pytest.raises(HarnessError) as info:
        SymbolicTensor.make(nested, tmp_path / "t")
    assert message in str(info.value)
    assert not (tmp_path / "t").exists()


def test_load_save_round_trip_with_coefficients(tmp_path: Path) -> None:
    tensor = SymbolicTensor.make([["a", "b"], ["c", None]], tmp_path)
    tensor.save()
    assert not (tensor.path / "coefficients").exists()  # presence rule: no sidecar
    tensor.coef[0, 1] = 0.25
    tensor.save()
    loaded = SymbolicTensor.load(tensor.path)
    assert loaded.tolist() == [["a", "b"], ["c", None]]
    assert loaded.coef.tolist() == [[1.0, 0.25], [1.0, 0.0]]


def test_get_set_one_element(tmp_path: Path) -> None:
    tensor = SymbolicTensor.none([2, 2], tmp_path)
    tensor.set((1, 0), "hello")
    assert tensor.get((1, 0)) == "hello"
    assert tensor.coef.tolist() == [[0, 0], [1, 0]]
    tensor.set((1, 0), None)
    assert tensor.get((1, 0)) is None and tensor.coef[1, 0] == 0
    tensor.set((0, 1), "x", coefficient=0.5)
    assert tensor.coef[0, 1] == 0.5
    with pytest.raises(HarnessError, match=r"out of range for shape \[2, 2\]"):
        tensor.get((2, 0))
    with pytest.raises(HarnessError, match="have 1 dims"):
        tensor.get((0,))


def grid(root: Path) -> SymbolicTensor:
    return SymbolicTensor.make([[f"{r}{c}" for c in range(3)] for r in range(3)], root)


def test_slice_copies_with_torch_semantics(tmp_path: Path) -> None:
    tensor = grid(tmp_path)
    assert tensor.slice((1,)).tolist() == ["10", "11", "12"]
    assert tensor.slice((slice(0, 2), 2)).tolist() == ["02", "12"]
    picked = tensor.slice(([2, 0],))
    assert picked.tolist() == [["20", "21", "22"], ["00", "01", "02"]]
    picked.set((0, 0), "changed")
    assert tensor.get((2, 0)) == "20"  # a copy does not write through
    with pytest.raises(HarnessError, match="does not fit shape"):
        tensor.slice((5,))


def test_view_writes_through(tmp_path: Path) -> None:
    tensor = grid(tmp_path)
    view = tensor.view((slice(None), 1))
    assert view.tolist() == ["01", "11", "21"]
    assert all((view.path / f"storage/{i}/data").is_symlink() for i in range(3))
    view.set((2,), "through")
    assert tensor.get((2, 1)) == "through"
    assert SymbolicTensor.load(view.path).tolist() == ["01", "11", "through"]


def test_view_of_absent_element_can_be_filled(tmp_path: Path) -> None:
    tensor = SymbolicTensor.make([None, "b"], tmp_path)
    view = tensor.view((slice(0, 1),))
    assert view.coef.tolist() == [0.0] and view.get((0,)) is None
    view.set((0,), "filled")
    assert tensor.get((0,)) == "filled"


def test_assign_copies_contents_and_coefficients(tmp_path: Path) -> None:
    a = SymbolicTensor.make(["1", "2", None], tmp_path)
    b = SymbolicTensor.make([None, "two", "three"], tmp_path)
    b.coef[2] = 0.5
    a.assign(b)
    assert a.tolist() == [None, "two", "three"]
    assert a.coef.tolist() == [0.0, 1.0, 0.5]
    with pytest.raises(HarnessError, match=r"cannot assign tensors of shapes \[3\]"):
        a.assign(SymbolicTensor.make(["x"], tmp_path))


def test_diff_and_patch_round_trip(tmp_path: Path) -> None:
    old = SymbolicTensor.make(["line1\nline2\n", "same", None], tmp_path)
    new = SymbolicTensor.make(["line1\nLINE2\n", "same", "cold start\n"], tmp_path)
    diffs = old.diff(new)
    assert diffs.coef.tolist() == [1.0, 0.0, 1.0]
    assert diffs.get((1,)) is None
    assert diffs.get((0,)).startswith("--- data\n+++ data\n")
    assert "-line2\n+LINE2\n" in diffs.get((0,))
    old.patch(diffs)
    assert old.tolist() == new.tolist()
    assert old.coef.tolist() == [1.0, 1.0, 1.0]


def test_patch_that_no_longer_applies_changes_nothing(tmp_path: Path) -> None:
    base = SymbolicTensor.make(["a\nb\n", "x\ny\n"], tmp_path)
    target = SymbolicTensor.make(["a\nB\n", "x\nY\n"], tmp_path)
    diffs = base.diff(target)
    base.set((1,), "something else\n")
    with pytest.raises(HarnessError, match="patch for element 1 does not apply"):
        base.patch(diffs)
    assert base.tolist() == ["a\nb\n", "something else\n"]  # element 0 untouched too
