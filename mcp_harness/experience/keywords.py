"""Keyword extraction for the query column, without an LLM.

Text is split into tokens that keep shell-shaped words whole: identifiers (`snake_case`,
`os.path`), paths (`/etc/hosts`, `./src/main.py`, `~/.bashrc`), flags (`--force`, `-la`), command
names and CJK runs. Tokens are lowercased, stripped of sentence punctuation, de-duplicated in order
of first appearance, and English stop-words are dropped. The same function runs on stored rows and
on search queries, so both sides always agree.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+"  # CJK runs
    r"|[$~./]*[\w$@%+=:,.\-/~]*\w[\w$@%+=:,.\-/~]*"  # words, paths, flags, identifiers
)
_EDGE_PUNCT = ".,:;=!?"

_STOP_WORDS_TEXT = """
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is
it its itself just let me more most my myself no nor not now of off on once only or other
our ours ourselves out over own same she should so some such than that the their theirs
them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself
yourselves please also want
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def extract_keywords(text: str) -> list[str]:
    """Retrieval keywords of `text`, in order of first appearance."""
    tokens = dict.fromkeys(token.rstrip(_EDGE_PUNCT) for token in _TOKEN.findall(text.lower()))
    return [t for t in tokens if t and t not in STOP_WORDS and t != "_"]


def keywords_text(text: str) -> str:
    """The query-column form: one keyword per line."""
    return "\n".join(extract_keywords(text))
