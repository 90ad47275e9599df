"""Unified diffs and strict patching for the text elements of symbolic tensors.

Tensor elements are text files and their symbolic gradients are unified diffs. Doing both sides
in pure Python (no ``diff``/``patch`` subprocess) makes behaviour identical on every platform and
lets patching be stricter than GNU patch: context must match exactly (no fuzz), and a patch that
is already applied is refused instead of being applied twice.

Lines are split on ``\\n`` only, so ``\\r`` (CRLF), form feeds and U+2028 stay part of a line and
survive a round trip byte for byte; a missing final newline is carried by the standard
``\\ No newline at end of file`` marker.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["NO_NEWLINE_MARKER", "PatchError", "apply_patch", "is_diff", "unified_diff"]

NO_NEWLINE_MARKER = "\\ No newline at end of file\n"
_HUNK_RE = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_SNIPPET = 60


class PatchError(ValueError):
    """A diff is malformed or does not apply exactly; the message names the hunk and the reason."""


@dataclass(frozen=True)
class _Hunk:
    """One parsed hunk; ``old``/``new`` hold full lines (with ``\\n`` unless at end of file)."""

    number: int
    header: str
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    old: tuple[str, ...]
    new: tuple[str, ...]
    prefix: int  # leading context lines: fewer than trailing ones anchors the hunk at the start
    suffix: int  # trailing context lines: fewer than leading ones anchors the hunk at the end

    @property
    def old_index(self) -> int:
        """0-based index of the first old line (the insertion point for an empty range)."""
        return self.old_start - 1 if self.old_count else self.old_start

    @property
    def new_index(self) -> int:
        """0-based index of the first new line (the insertion point for an empty range)."""
        return self.new_start - 1 if self.new_count else self.new_start

    @property
    def name(self) -> str:
        return f"hunk #{self.number} ({self.header})"


def _split_lines(text: str) -> list[str]:
    """Split on ``\\n`` only (keeping it), unlike ``str.splitlines`` which also eats ``\\r``."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _snip(line: str | None) -> str:
    """Short repr of a line for error messages."""
    if line is None:
        return "<end of text>"
    return repr(line if len(line) <= _SNIPPET else line[:_SNIPPET] + "...")


def unified_diff(old: str, new: str, label: str = "data") -> str:
    """Diff ``old -> new`` like ``diff -u --label LABEL --label LABEL``; ``''`` when equal.

    The same label is used for both headers because a gradient describes one element changing,
    not two files.
    """
    if old == new:
        return ""
    if "\n" in label or "\r" in label:
        raise ValueError(f"diff label must be a single line, got {label!r}")
    out: list[str] = []
    generated = difflib.unified_diff(
        _split_lines(old), _split_lines(new), fromfile=label, tofile=label, lineterm="\n"
    )
    for line in generated:
        out.append(line)
        if not line.endswith("\n"):  # only the last line of a side can lack its newline
            out.append("\n" + NO_NEWLINE_MARKER)
    return "".join(out)


def _parse_hunk(lines: list[str], i: int, number: int) -> tuple[_Hunk, int]:
    """Parse the hunk whose header is ``lines[i]``; return it and the index after it.

    The header counts, not the line prefixes, decide where a hunk ends, so content lines that
    look like headers (``@@``, ``---``) are read correctly.
    """
    header = lines[i].rstrip("\n")
    match = _HUNK_RE.match(header)
    if match is None:
        raise PatchError(f"hunk #{number}: malformed hunk header at diff line {i + 1}: {header!r}")
    old_start, new_start = int(match[1]), int(match[3])
    old_count = 1 if match[2] is None else int(match[2])
    new_count = 1 if match[4] is None else int(match[4])
    header = match[0]
    for side, start, count in (("-", old_start, old_count), ("+", new_start, new_count)):
        if count and not start:
            raise PatchError(f"hunk #{number} ({header}): range {side}0,{count} is invalid")
    if not old_count and not new_count:
        raise PatchError(f"hunk #{number} ({header}): empty hunk")

    old: list[str] = []
    new: list[str] = []
    tags: list[str] = []
    i += 1
    while True:
        line = lines[i] if i < len(lines) else None
        if line is not None and line.startswith("\\"):  # "\ No newline at end of file"
            if not tags or tags[-1] == "\\":
                raise PatchError(
                    f"hunk #{number} ({header}): stray {line.rstrip()!r} at diff line {i + 1}"
                )
            if tags[-1] in " -":
                old[-1] = old[-1][:-1]
            if tags[-1] in " +":
                new[-1] = new[-1][:-1]
            tags.append("\\")
            i += 1
            continue
        if len(old) == old_count and len(new) == new_count:
            break
        if line is None:
            raise PatchError(
                f"hunk #{number} ({header}): truncated, got {len(old)}/{old_count} "
                f"old and {len(new)}/{new_count} new lines"
            )
        tag, body = (" ", "\n") if line == "\n" else (line[0], line[1:])  # blank = empty context
        if tag not in " -+":
            raise PatchError(
                f"hunk #{number} ({header}): unexpected line {i + 1} in hunk body "
                f"{_snip(line)} (has {len(old)}/{old_count} old and "
                f"{len(new)}/{new_count} new lines)"
            )
        for side, wanted in ((old, tag in " -"), (new, tag in " +")):
            if wanted:
                if side and not side[-1].endswith("\n"):
                    raise PatchError(
                        f"hunk #{number} ({header}): line {i + 1} follows a line "
                        "marked '\\ No newline at end of file'"
                    )
                side.append(body)
        if len(old) > old_count or len(new) > new_count:
            raise PatchError(
                f"hunk #{number} ({header}): more lines than the header states at diff line {i + 1}"
            )
        tags.append(tag)
        i += 1

    body_tags = [t for t in tags if t != "\\"]
    prefix = next((k for k, t in enumerate(body_tags) if t != " "), len(body_tags))
    suffix = next((k for k, t in enumerate(reversed(body_tags)) if t != " "), len(body_tags))
    hunk = _Hunk(
        number,
        header,
        old_start,
        old_count,
        new_start,
        new_count,
        tuple(old),
        tuple(new),
        prefix,
        suffix,
    )
    return hunk, i


def _parse(diff: str) -> list[_Hunk]:
    """Parse a single-file unified diff, rejecting anything that is not exactly that."""
    lines = _split_lines(diff)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"  # a diff that lost its final newline still means the same thing
    i = 0
    while i < len(lines) and lines[i].startswith(("diff ", "index ")):  # git preamble
        i += 1
    if i < len(lines) and lines[i].startswith("--- "):
        if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
            raise PatchError("not a unified diff: '---' header is not followed by '+++'")
        i += 2
    hunks: list[_Hunk] = []
    while i < len(lines):
        line = lines[i]
        if not line.startswith("@@"):
            if all(rest == "\n" for rest in lines[i:]):
                break  # trailing blank lines carry no meaning
            where = f"after hunk #{len(hunks)}" if hunks else "before any hunk"
            raise PatchError(f"not a unified diff: unexpected line {i + 1} {where}: {_snip(line)}")
        hunk, i = _parse_hunk(lines, i, len(hunks) + 1)
        hunks.append(hunk)
    if not hunks:
        raise PatchError("not a unified diff: no '@@ -l,s +l,s @@' hunk found")
    for prev, hunk in itertools.pairwise(hunks):
        if (
            hunk.old_index < prev.old_index + prev.old_count
            or hunk.new_index < prev.new_index + prev.new_count
        ):
            raise PatchError(
                f"{hunk.name} overlaps or precedes {prev.name}; hunks must be disjoint and in order"
            )
    return hunks


def _candidates(guess: int, low: int, high: int) -> Iterator[int]:
    """Start positions in ``[low, high]``, nearest to ``guess`` first (as GNU patch searches)."""
    for delta in range(max(abs(guess - low), abs(high - guess)) + 1):
        for pos in (guess + delta, guess - delta) if delta else (guess,):
            if low <= pos <= high:
                yield pos


def _mismatch(hunk: _Hunk, lines: list[str], at: int, why: str) -> PatchError:
    """Describe the first differing line of ``hunk`` when placed at ``at``."""
    at = min(max(at, 0), len(lines))
    for k, expected in enumerate(hunk.old):
        got = lines[at + k] if at + k < len(lines) else None
        if got != expected:
            return PatchError(
                f"{hunk.name} does not apply ({why}): context mismatch at line "
                f"{at + k + 1}: expected {_snip(expected)}, got {_snip(got)}"
            )
    return PatchError(
        f"{hunk.name} does not apply ({why}): its lines match only inside the "
        "region of the previous hunk"
    )


def _locate(hunk: _Hunk, lines: list[str], low: int, guess: int) -> int:
    """Find where ``hunk`` applies exactly, at or after ``low``; raise PatchError otherwise."""
    size = len(hunk.old)
    high = len(lines) - size
    if hunk.old_start == 0 and hunk.old_count == 0:
        # '@@ -0,0' is how diff spells "create from empty"; refusing non-empty text is what
        # stops a cold-start gradient from being prepended a second time.
        if lines:
            raise PatchError(
                f"{hunk.name} does not apply: it creates the text from empty, but "
                f"the text has {len(lines)} lines (patch already applied?)"
            )
        return 0
    if size == 0:  # zero-context insertion: nothing to match, only the stated line counts
        if low <= guess <= len(lines):
            return guess
        raise PatchError(
            f"{hunk.name} does not apply: insertion point line {guess} is outside "
            f"lines {low}..{len(lines)}"
        )
    if hunk.prefix < hunk.suffix:  # short leading context: the hunk touches the start
        positions: Iterator[int] = iter([0] if low == 0 and high >= 0 else [])
        at, why = 0, "hunk must match at the start of the text"
    elif hunk.suffix < hunk.prefix:  # short trailing context: the hunk touches the end
        positions = iter([high] if high >= low else [])
        at, why = high, "hunk must match at the end of the text"
    else:
        positions = _candidates(guess, low, high)
        at, why = guess, "no exact match at any offset"
    first = hunk.old[0]
    for pos in positions:
        if lines[pos] == first and tuple(lines[pos : pos + size]) == hunk.old:
            return pos
    raise _mismatch(hunk, lines, at, why)


def apply_patch(old: str, diff: str) -> str:
    """Apply a unified diff strictly (exact context, no fuzz); PatchError if it does not apply.

    Hunks may be found at an offset from their stated line, nearest offset first, carrying the
    drift to later hunks like GNU patch. If a hunk had to move and the new side of every hunk
    already sits at its stated position, the text is taken to be the patched one and refused.
    """
    hunks = _parse(diff)
    lines = _split_lines(old)
    out: list[str] = []
    done = 0  # old lines before this index are already copied or consumed
    drift = 0
    moved = False
    for hunk in hunks:
        at = _locate(hunk, lines, done, hunk.old_index + drift)
        drift = at - hunk.old_index
        moved = moved or drift != 0
        out.extend(lines[done:at])
        out.extend(hunk.new)
        done = at + len(hunk.old)
    out.extend(lines[done:])
    if moved and all(tuple(lines[h.new_index : h.new_index + len(h.new)]) == h.new for h in hunks):
        raise PatchError(
            "patch does not apply: the text already contains the result of every "
            "hunk at its stated line (patch already applied?)"
        )
    for k, line in enumerate(out[:-1]):
        if not line.endswith("\n"):
            raise PatchError(
                f"patch does not apply: result line {k + 1} {_snip(line)} is marked "
                "'\\ No newline at end of file' but is not the last line"
            )
    return "".join(out)


def is_diff(text: str) -> bool:
    """True when ``text`` parses as a unified diff with at least one hunk (it may not apply)."""
    try:
        _parse(text)
    except PatchError:
        return False
    return True
