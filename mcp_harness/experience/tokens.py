"""Words of a request or a value as the slot code sees them: tokens with a kind (a quoted
string, a number, a path, a file name or a word) and their canonical forms. Shared by `slots`
(finding and filling a row's parameters) and `fit` (how well a row suits an input)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from mcp_harness.experience.keywords import STOP_WORDS, canonical

TOKEN = re.compile(
    r"'(?P<sq>[^'\n]*)'|\"(?P<dq>[^\"\n]*)\"|`(?P<bq>[^`\n]*)`"  # quoted strings
    r"|[$~./]*[\w$@%+=:,.\-/~]*\w[\w$@%+=:,.\-/~]*"  # words, paths, flags, identifiers
    r"|->|=>|→"  # an arrow says where the result goes ("a.txt -> b.txt"), as "to" does
)
EDGE_PUNCT = ".,:;=!?"
ARROWS = frozenset({"->", "=>", "→"})
_MID_SENTENCE = re.compile(r" [a-z]")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)*")  # 3, -2.5, a version 1.5.0, an address 10.0.0.1
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)", re.IGNORECASE)
# Ordinals said in words are numbers too ("the third column" is column 3).
_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth"
ORDINAL_WORDS = {word: str(n) for n, word in enumerate(_ORDINALS.split(), start=1)}
# So are counts from two up ("indent by four spaces"); "one" is as often a pronoun.
_CARDINALS = "two three four five six seven eight nine ten eleven twelve"
NUMBER_WORDS = {
    **ORDINAL_WORDS,
    **{word: str(n) for n, word in enumerate(_CARDINALS.split(), start=2)},
}
_RANGE = re.compile(r"\d+(?:[-:]\d+)+")
_COUNTED = re.compile(r"(\d+)-([A-Za-z][A-Za-z-]*)")  # "5-line pieces": 5, then "line"
_FILE = re.compile(r"(?:[\w\-]+\.)+[A-Za-z0-9]{1,10}|\.\w[\w.\-]*")  # theme.properties
# A span as a whole word of a value (a number also inside a flag or format: `-f2`, `%05d`).
_BOUNDARY = r"(?<![A-Za-z0-9_]){}(?![A-Za-z0-9_])"
_FLAG_WITH_NUMBERS = re.compile(r"-{1,2}[A-Za-z][\w,.=:-]*\d[\w,.=:-]*")
_FLAG_BOUNDARY = r"(?:(?<=-[A-Za-z])|(?<![A-Za-z0-9_])){}(?![A-Za-z0-9_])"
_NUMBER_BOUNDARY = r"(?:(?<=-[A-Za-z])|(?<=%0)|(?<![A-Za-z0-9_.])){}(?![0-9])"
DISTINCTIVE = frozenset({"file", "path", "num", "str"})
NAME = "name"  # a word slot that sibling rows fill with other words: a parameter (`siblings`)
COMPATIBLE = {
    "word": {"word", "path", "file", "str", "num"},
    NAME: {"word", "path", "file", "str", "num"},
    "path": {"path", "file", "word", "num"},
    "file": {"file", "path"},
    "num": {"num"},
    "str": {"str", "word"},
}


@dataclass(frozen=True)
class Token:
    text: str  # a quoted string's text is its contents
    kind: str  # str, num, path, file or word
    part: bool = False  # one number of a range, date or time ("2024" of 2024-01-01)

    @functools.cached_property
    def lower(self) -> str:
        return self.text.lower()


def kind_of(text: str) -> str:
    """The kind of an unquoted token: num, path, file or word."""
    if _NUMBER.fullmatch(text):
        return "num"
    if "/" in text.strip("/") or text.startswith(("./", "~/", "/")):
        return "path"
    if _FILE.fullmatch(text):
        return "file"
    return "word"


def tokenize(text: str) -> list[Token]:
    """Tokens in order; sentence punctuation at a word's end is not part of it, and a range
    date or time of numbers (`2-5`, `2019-08-27`, `09:30`) is its numbers, an ordinal
    (`4th`) its number, a counted noun (`5-line`) its number and its noun, and a flag with
    numbers (`-k3,3nr`, `-n5`) the flag, then its numbers. A fresh list each call; the
    tokens of a recent text are remembered (a forward pass adapts the same retrieved rows to
    input after input)."""
    return list(_tokens(text))


@functools.lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[Token, ...]:
    out: list[Token] = []
    for match in TOKEN.finditer(text):
        inner = next((g for g in ("sq", "dq", "bq") if match.group(g) is not None), None)
        if inner is not None:
            if match.group(inner):  # ' ' too: a separator of spaces is a parameter
                out.append(Token(match.group(inner), "str"))
            continue
        word = match.group(0).rstrip(EDGE_PUNCT)
        if match.group(0) in ARROWS:
            out.append(Token("->", "word"))  # every arrow says one thing
            continue
        if match.group(0) == word + "." and _MID_SENTENCE.match(text, match.end()):
            word += "."  # "Add tmp. to the start": a dot the sentence goes on after is the word's
        if _RANGE.fullmatch(word):  # "lines 2-5", a date, a time: each number is a parameter
            out.extend(Token(n, "num", part=True) for n in re.split("[-:]", word))
        elif counted := _COUNTED.fullmatch(word):  # "5-line pieces": the number 5 of lines
            out.append(Token(counted[1], "num"))
            out.append(Token(counted[2], kind_of(counted[2])))
        elif _ORDINAL.fullmatch(word):  # "the 4th column": the number 4
            out.append(Token(word[:-2], "num"))
        elif word.lower() in NUMBER_WORDS:
            out.append(Token(NUMBER_WORDS[word.lower()], "num"))
        elif word:
            kind = kind_of(word)
            if kind == "word" and word.endswith("/") and len(word) > 1:  # "in images/": a name
                word = word.rstrip("/")
            out.append(Token(word, kind))
            if kind == "word" and _FLAG_WITH_NUMBERS.fullmatch(word):  # "-k3,3nr": 3 and 3
                out.extend(Token(n, "num", part=True) for n in re.findall(r"\d+", word))
    return tuple(out)


def is_content(token: Token) -> bool:
    return token.kind != "word" or (
        token.lower not in STOP_WORDS and len(token.text) > 1 and not token.text.startswith("-")
    )


def is_distinctive(slot: dict[str, Any]) -> bool:
    """Whether the input must give this slot (a file, path, number, string or name)."""
    return slot["kind"] in DISTINCTIVE or slot["kind"] == NAME


def is_identifier(word: str) -> bool:
    """Whether a word is shaped like a name in code (getUser, OLD_API_URL, v1client, VERSION),
    not a word of the language."""
    return any(c.isdigit() or c == "_" for c in word) or any(c.isupper() for c in word[1:])


def parts_of(form: str) -> list[str]:
    """The canonical parts of a hyphenated word (`base64-encode` -> base64, encod), else the
    form itself."""
    if "-" not in form.strip("-") or "." in form or "/" in form:
        return [form]
    return [canonical(part) for part in form.split("-") if part]


def with_parts(forms: list[str]) -> set[str]:
    """The forms, and the parts of the hyphenated ones: "Base64-encode x" says "encode"."""
    return {part for form in forms for part in [form, *parts_of(form)]}


def forms_of(tokens: list[Token]) -> list[str]:
    return [canonical(t.lower) if t.kind == "word" else t.lower for t in tokens]


def boundary(text: str) -> str:
    """The pattern (with `{}` for the escaped text) that finds `text` as a whole in a value;
    one that starts with punctuation also as a short flag's argument (`-F:`, `-i.bak`)."""
    if kind_of(text) == "num":
        return _NUMBER_BOUNDARY
    return _FLAG_BOUNDARY if text[:1] and not text[0].isalnum() else _BOUNDARY
