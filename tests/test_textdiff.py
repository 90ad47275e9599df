"""Tests for mcp_harness.storage.textdiff: exact round trips and strict, no-fuzz patching."""

from __future__ import annotations

import random

import pytest

from mcp_harness.storage.textdiff import PatchError, apply_patch, is_diff, unified_diff

TRICKY_LINES = [
    "",
    "a",
    "b",
    "-a",
    "+a",
    "--- data",
    "+++ data",
    "@@ -1 +1 @@",
    "@@",
    " a",
    "  ",
    "\\ No newline at end of file",
    "\\",
    "héllo wörld 🙂",
    "tab\there",
    "cr\r",
    "form\x0cfeed",
    "line\u2028sep",
    "x" * 300,
]

TABLE = [
    ("", "a\n"),
    ("", "a"),
    ("", "\n"),
    ("", "a\nb\nc\n"),
    ("a\n", ""),
    ("a", ""),
    ("\n", ""),
    ("a", "a\n"),
    ("a\n", "a"),
    ("a", "b"),
    ("a\n", "b\n"),
    ("a\nb", "a\nb\n"),
    ("a\nb\n", "a\nb"),
    ("a\nb", "a\nc"),
    ("a\nb\nc", "a\nB\nc"),
    ("x\n" * 10 + "end", "x\n" * 10 + "end\n"),
    ("a\r\nb\r\n", "a\r\nc\r\n"),
    ("a\r\nb", "a\r\nb\r\n"),
    ("a\r\nb\r\n", "a\nb\n"),
    ("héllo\n🙂\n", "héllo\n🙃\n"),
    ("-a\n+b\n@@ -1 +1 @@\n a\n", "+a\n-b\n@@ -2 +2 @@\n  a\n"),
    ("--- data\n+++ data\n", "--- data\n+++ other\n"),
    ("\\ No newline at end of file\n", "\\ x\n"),
    ("\n\n\n", "\n\n"),
    ("one line", "another line"),
    ("x\ry\n", "x\ry\rz\n"),
    ("\x0c\u2028\n", "\u2028\x0c\n"),
]


def _ids(case: tuple[str, str]) -> str:
    return repr(case)[:40]


@pytest.mark.parametrize("old,new", TABLE + [(b, a) for a, b in TABLE], ids=_ids)
def test_table_round_trip(old: str, new: str) -> None:
    diff = unified_diff(old, new)
    assert is_diff(diff)
    assert apply_patch(old, diff) == new


def test_equal_texts_give_empty_diff() -> None:
    assert unified_diff("", "") == ""
    assert unified_diff("same\n", "same\n") == ""
    assert not is_diff("")


def test_headers_and_direction() -> None:
    diff = unified_diff("a\n", "b\n")
    assert diff == "--- data\n+++ data\n@@ -1 +1 @@\n-a\n+b\n"
    assert unified_diff("a\n", "b\n", label="x/y.txt").startswith("--- x/y.txt\n+++ x/y.txt\n")
    with pytest.raises(ValueError):
        unified_diff("a", "b", label="two\nlines")


def test_cold_start_is_all_plus_lines() -> None:
    diff = unified_diff("", "a\nb\nc")
    assert diff == (
        "--- data\n+++ data\n@@ -0,0 +1,3 @@\n+a\n+b\n+c\n\\ No newline at end of file\n"
    )
    assert apply_patch("", diff) == "a\nb\nc"


def test_no_newline_marker_matches_gnu_format() -> None:
    assert unified_diff("a", "a\n") == (
        "--- data\n+++ data\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+a\n"
    )
    assert unified_diff("a\nb", "a\nc") == (
        "--- data\n+++ data\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n"
        "+c\n\\ No newline at end of file\n"
    )


def test_shared_last_line_without_newline_is_context() -> None:
    old = "a\nb\nc\nd\nz"
    new = "a\nB\nc\nd\nz"
    diff = unified_diff(old, new)
    assert diff.endswith(" z\n\\ No newline at end of file\n")
    assert apply_patch(old, diff) == new


def test_very_long_texts() -> None:
    rng = random.Random(7)
    old_lines = [f"line {i} {rng.random()}" for i in range(20_000)]
    new_lines = list(old_lines)
    for _ in range(50):
        k = rng.randrange(len(new_lines))
        new_lines[k] = "changed " + new_lines[k]
    del new_lines[100:200]
    new_lines[5000:5000] = ["inserted"] * 30
    old, new = "\n".join(old_lines) + "\n", "\n".join(new_lines)
    assert apply_patch(old, unified_diff(old, new)) == new
    assert apply_patch(new, unified_diff(new, old)) == old


def _random_lines(rng: random.Random, fresh: list[int], size: int, unique: bool) -> list[str]:
    lines = []
    for _ in range(size):
        if unique or rng.random() < 0.4:
            fresh[0] += 1
            lines.append(f"line{fresh[0]}" + rng.choice(["", "\r", " é", " -x"]))
        else:
            lines.append(rng.choice(TRICKY_LINES))
    return lines


def _random_pair(rng: random.Random, unique: bool = False) -> tuple[str, str]:
    """Random text and a line-level edit of it (insert/delete/replace, final-newline toggles)."""
    fresh = [0]
    old = _random_lines(rng, fresh, rng.choice([0, 1, 2, 5, 12, 40]), unique)
    new = list(old)
    for _ in range(rng.randint(0, 6)):
        op = rng.choice(["insert", "delete", "replace"])
        pos = rng.randint(0, len(new))
        span = rng.randint(1, 4)
        if op == "insert" or not new:
            new[pos:pos] = _random_lines(rng, fresh, span, unique)
        elif op == "delete":
            del new[pos : pos + span]
        else:
            new[pos : pos + span] = _random_lines(rng, fresh, rng.randint(1, 4), unique)

    def join(lines: list[str]) -> str:
        text = "\n".join(lines)
        return text + "\n" if lines and rng.random() < 0.6 else text

    return join(old), join(new)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        old, new = _random_pair(rng)
        diff = unified_diff(old, new)
        assert (diff == "") == (old == new)
        if diff:
            assert is_diff(diff)
            assert apply_patch(old, diff) == new, (old, new, diff)
            assert apply_patch(new, unified_diff(new, old)) == old, (old, new)


def test_random_double_apply_is_refused() -> None:
    """With distinct lines, a patched text never contains a hunk's old side, so it must fail."""
    rng = random.Random(1234)
    checked = 0
    for _ in range(300):
        old, new = _random_pair(rng, unique=True)
        diff = unified_diff(old, new)
        if not diff:
            continue
        assert apply_patch(old, diff) == new
        with pytest.raises(PatchError):
            apply_patch(new, diff)
        checked += 1
    assert checked > 200


@pytest.mark.parametrize(
    "old,new",
    [
        ("", "a\nb\n"),  # cold start: must not be prepended again
        ("a\nb\nc\n", "a\nb\nc\na\nb\nc\n"),  # append of repeated content
        ("x\n", "x\nx\n"),
        ("x\nx\nx\n", "x\nx\nx\nx\n"),
        ("p\nx\nx\nx\nx\nx\nx\nq\n", "p\nx\nx\nx\nx\nx\nx\nx\nq\n"),
        ("a\nb\nc\nd\n", "a\nb\nc\n"),
        ("a", "a\n"),
        ("a\n", "a"),
        ("a\n", ""),
    ],
)
def test_double_apply_is_refused(old: str, new: str) -> None:
    diff = unified_diff(old, new)
    assert apply_patch(old, diff) == new
    with pytest.raises(PatchError):
        apply_patch(new, diff)


def test_hunk_found_at_offset() -> None:
    old = "".join(f"{i}\n" for i in range(20))
    new = old.replace("10\n", "ten\n")
    diff = unified_diff(old, new)
    assert "@@ -8,7 +8,7 @@" in diff
    shifted = "extra\nlines\n" + old
    assert apply_patch(shifted, diff) == "extra\nlines\n" + new
    shorter = old.replace("0\n1\n2\n", "", 1)
    assert apply_patch(shorter, diff) == new.replace("0\n1\n2\n", "", 1)


def test_offset_drift_carries_to_later_hunks() -> None:
    old = "".join(f"{i}\n" for i in range(40))
    new = old.replace("\n5\n", "\nfive\n").replace("\n30\n", "\nthirty\n")
    diff = unified_diff(old, new)
    assert diff.count("@@ -") == 2
    assert apply_patch("top\n" + old, diff) == "top\n" + new


def test_no_fuzz_on_changed_context() -> None:
    old = "".join(f"{i}\n" for i in range(20))
    diff = unified_diff(old, old.replace("10\n", "ten\n"))
    changed = old.replace("\n9\n", "\nnine\n")  # line 10
    with pytest.raises(PatchError, match=r"hunk #1 .*context mismatch at line 10: expected '9"):
        apply_patch(changed, diff)


def test_start_and_end_anchored_hunks_do_not_move() -> None:
    old = "a\nb\nc\nd\ne\nf\n"
    head = unified_diff(old, "A\n" + old[2:])  # @@ -1,4: no leading context
    with pytest.raises(PatchError, match="start of the text"):
        apply_patch("zzz\n" + old, head)
    tail = unified_diff(old, old[:-2] + "F\n")  # no trailing context
    with pytest.raises(PatchError, match="end of the text"):
        apply_patch(old + "zzz\n", tail)


def test_error_message_names_hunk_and_snippets() -> None:
    diff = "--- data\n+++ data\n@@ -1,2 +1,2 @@\n keep\n-old\n+new\n"
    with pytest.raises(PatchError) as info:
        apply_patch("keep\nother\n", diff)
    message = str(info.value)
    assert "hunk #1 (@@ -1,2 +1,2 @@)" in message
    assert "line 2" in message and "'old\\n'" in message and "'other\\n'" in message


@pytest.mark.parametrize(
    "diff,old,new",
    [
        ("@@ -1 +1 @@\n-a\n+b\n", "a\n", "b\n"),  # counts omitted mean 1, no file headers
        ("@@ -1,1 +1,1 @@ section text\n-a\n+b\n", "a\n", "b\n"),
        ("@@ -0,0 +1 @@\n+a\n", "", "a\n"),
        ("@@ -1 +0,0 @@\n-a\n", "a\n", ""),
        ("@@ -2,0 +3 @@\n+c\n", "a\nb\nd\n", "a\nb\nc\nd\n"),  # zero-context insertion
        ("@@ -2 +1,0 @@\n-b\n", "a\nb\nc\n", "a\nc\n"),
        ("--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n", "a\n", "b\n"),
        ("diff --git a/f b/f\nindex 1..2\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n", "a\n", "b\n"),
        ("@@ -1,3 +1,3 @@\n a\n\n-c\n+C\n", "a\n\nc\n", "a\n\nC\n"),  # stripped blank context
        ("@@ -1 +1 @@\n-a\n+b", "a\n", "b\n"),  # diff lost its final newline
        ("@@ -1 +1 @@\n-a\n+b\n\n\n", "a\n", "b\n"),  # trailing blank lines
    ],
)
def test_hand_written_diffs(diff: str, old: str, new: str) -> None:
    assert is_diff(diff)
    assert apply_patch(old, diff) == new


@pytest.mark.parametrize(
    "diff,match",
    [
        ("", "not a unified diff"),
        ("hello\nworld\n", "not a unified diff"),
        ("--- data\n+++ data\n", "not a unified diff"),
        ("--- data\n@@ -1 +1 @@\n-a\n+b\n", "not a unified diff"),
        ("@@ -1 +1\n-a\n+b\n", "malformed hunk header"),
        ("@@ -x +1 @@\n-a\n+b\n", "malformed hunk header"),
        ("@@ -0,1 +1 @@\n-a\n+b\n", "invalid"),
        ("@@ -0,0 +0,0 @@\n", "empty hunk"),
        ("@@ -1,2 +1,2 @@\n a\n-b\n", "truncated"),
        ("@@ -1 +1 @@\n-a\n-b\n+c\n", "more lines than the header"),
        ("@@ -1 +1 @@\n-a\n+b\ngarbage\n", "unexpected line 4 after hunk #1"),
        ("@@ -1 +1 @@\n-a\n+b\n```\n", "unexpected line"),
        ("@@ -1,2 +1,2 @@\n a\n*b\n+c\n", "unexpected line 3 in hunk body"),
        ("@@ -1 +1 @@\n\\ No newline at end of file\n-a\n+b\n", "stray"),
        ("@@ -1 +1 @@\n-a\n\\ No newline at end of file\n\\ No newline\n+b\n", "stray"),
        ("@@ -1,2 +1 @@\n-a\n\\ No newline at end of file\n-b\n+c\n", "follows a line"),
    ],
)
def test_malformed_diffs(diff: str, match: str) -> None:
    assert not is_diff(diff)
    with pytest.raises(PatchError, match=match):
        apply_patch("a\nb\n", diff)


def test_overlapping_and_out_of_order_hunks() -> None:
    overlapping = "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n@@ -3,2 +3,2 @@\n c\n-d\n+D\n"
    with pytest.raises(PatchError, match="overlaps or precedes"):
        apply_patch("a\nb\nc\nd\n", overlapping)
    out_of_order = "@@ -4 +4 @@\n-d\n+D\n@@ -1 +1 @@\n-a\n+A\n"
    with pytest.raises(PatchError, match="overlaps or precedes"):
        apply_patch("a\nb\nc\nd\n", out_of_order)
    in_order = "@@ -1 +1 @@\n-a\n+A\n@@ -4 +4 @@\n-d\n+D\n"
    assert apply_patch("a\nb\nc\nd\n", in_order) == "A\nb\nc\nD\n"


def test_misplaced_no_newline_marker_is_refused() -> None:
    diff = "@@ -1 +1 @@\n-a\n+b\n\\ No newline at end of file\n"
    assert apply_patch("a\n", diff) == "b"
    with pytest.raises(PatchError, match="not the last line"):
        apply_patch("a\nc\n", diff)


def test_missing_final_newline_must_match_exactly() -> None:
    diff = unified_diff("a\nb\n", "a\nc\n")
    with pytest.raises(PatchError):
        apply_patch("a\nb", diff)
    with pytest.raises(PatchError):
        apply_patch("a\r\nb\r\n", diff)


def test_patch_error_is_value_error() -> None:
    assert issubclass(PatchError, ValueError)
