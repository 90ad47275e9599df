"""A row's key as a template: an input that says the key's sentence word for word but with other
parameters in its gaps ("Delete the lines from the one matching BEGIN AUTOGEN through ..." ->
"... matching <!-- promo:open --> through ...") fills the value's copies of those gaps with its
own text, whole: a parameter of several words or of symbols the tokens do not see (a pattern,
a marker line, a regular expression, a file name without an extension) moves as one."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from mcp_harness.experience.tokens import boundary

_EDGE = ".,;:!?"
FRAME_SHARE = 0.5  # of the key's words the input must say in the same places


@dataclass(frozen=True)
class Template:
    fills: dict[str, str]  # key gap -> the input's text in its place
    share: float  # the words key and input say alike, of all their words (Dice)


def fill(key: str, value: str, new_input: str) -> Template | None:
    """The gaps of `key` that `new_input` fills with other parameters, when everything else
    it says is the key's words in the key's order and every gap is a parameter the value
    repeats; else None (another sentence: the token alignment in `slots` judges it)."""
    key_words, new_words = key.split(), new_input.split()
    if not key_words or not new_words:
        return None
    matcher = difflib.SequenceMatcher(
        None, [_bare(w) for w in key_words], [_bare(w) for w in new_words], autojunk=False
    )
    fills: dict[str, str] = {}
    equal = 0
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            equal += i2 - i1
            continue
        gap = _span(key_words[i1:i2])
        if op != "replace" or not _parameter(gap, i1 == 0):
            return None  # a word the input drops, adds or says otherwise: not the template
        said = _span(new_words[j1:j2])
        if not _parameter(said, j1 == 0) or (i2 - i1 == 1 and j2 - j1 > 1):
            return None  # "it" for run.sh; several words for one: words around a parameter
        if not _in(gap, value):
            # Names built on a stem the value says ("named part_aa, part_ab" for the prefix
            # part_): the stem is the parameter.
            gap, said = _stems(key_words[i1:i2], new_words[j1:j2])
            if not gap or not _in(gap, value):
                return None
        fills[gap] = said
    if not fills or equal < FRAME_SHARE * len(key_words):
        return None
    return Template(fills, 2 * equal / (len(key_words) + len(new_words)))


def _stems(key_words: list[str], new_words: list[str]) -> tuple[str, str]:
    """The stems the words of a gap are built on in key and input, when each pair of words
    ends alike after the same separator ("guestpart_aa"/"verse_aa" -> "guestpart_",
    "verse_") and every pair has the same stems; else empty strings."""
    if len(key_words) != len(new_words):
        return "", ""
    stems = set()
    for old, new in zip(key_words, new_words, strict=True):
        old, new = old.rstrip(_EDGE), new.rstrip(_EDGE)
        cuts = [
            k
            for k in range(3, len(old))  # a stem of two characters or more before its separator
            if old[k - 1] in _SEPARATORS
            and len(new) > len(old) - k + 1
            and new.endswith(old[k - 1 :])
        ]
        if not cuts:
            return "", ""
        tail = len(old) - cuts[0]
        stems.add((old[: len(old) - tail], new[: len(new) - tail]))
    if len(stems) != 1:
        return "", ""
    return stems.pop()


_SEPARATORS = "_-."


def _bare(word: str) -> str:
    return word.rstrip(_EDGE).lower()


def _span(words: list[str]) -> str:
    return " ".join(words).rstrip(_EDGE)


def _parameter(text: str, first: bool) -> bool:
    """Whether a gap reads as a parameter, not a word of the operation: it has a capital (not
    the sentence's first letter), a digit or a symbol ("BEGIN AUTOGEN", "#[0-9]+", "Makefile",
    "settings.json"); "first" or "comma-separated" in place of others are another operation,
    for `fit` to weigh."""
    return any(
        (c.isupper() and not (first and at == 0)) or c.isdigit() or not (c.isalpha() or c in " -'")
        for at, c in enumerate(text)
    )


def _in(gap: str, value: str) -> bool:
    return re.search(boundary(gap).format(re.escape(gap)), value, re.IGNORECASE) is not None
