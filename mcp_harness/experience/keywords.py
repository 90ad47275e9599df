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


# Words of the same meaning in terminal tasks, each mapped to one canonical form, so that
# "Make a new folder named logs" and "Create a directory called build" share their operation.
_SYNONYMS_TEXT = """
directory: folder folders dir dirs directories subdirectory subfolder
create: make add generate
delete: remove erase rm del
copy: duplicate cp
rename: move mv
show: print display view
count: tally many
archive: tarball tarfile
executable: runnable
write: save put store record
first: top beginning
last: bottom final
replace: substitute swap
sort: order alphabetize
find: search locate
contain: mention include containing contains mentioning mentions includes including
empty: blank
symlink: link symbolic shortcut
initialize: init initialise
called: named titled
text: content contents
"""
SYNONYMS = {
    word: canonical
    for line in _SYNONYMS_TEXT.strip().splitlines()
    for canonical, _, words in [line.partition(":")]
    for word in [canonical, *words.split()]
}


def canonical(word: str) -> str:
    """The canonical form of a lowercased keyword: its synonym group's word, or the word
    without a plural `s` (`files` -> `file`); anything with a digit, dot or slash as is."""
    if word in SYNONYMS:
        return SYNONYMS[word]
    if (
        len(word) > 3
        and word.isalpha()
        and word.endswith("s")
        and not word.endswith(("ss", "us", "is"))
    ):
        return SYNONYMS.get(word[:-1], word[:-1])
    return word


# Words of opposite meaning: one in the row's key and the other in the input means the
# opposite operation ("Convert it to lowercase" is not "Convert it to uppercase").
_OPPOSITES_TEXT = """
upper lower; uppercase lowercase; encode decode; compress decompress; create delete;
enable disable; show hide; start stop; lock unlock; increase decrease; first last;
head tail; min max; minimum maximum; before after; ascending descending; asc desc; on off;
open close; push pull; import export; input output; read write; include exclude;
allow deny; accept reject; grant revoke; larger smaller; bigger smaller; newest oldest;
new old; encrypt decrypt; join split; merge split; forward backward; visible hidden;
append overwrite; prepend append; left right; plus minus; add subtract;
largest smallest; biggest smallest; highest lowest; longest shortest; most least;
greatest least; earliest latest; oldest latest; increasing decreasing; above below;
inside outside; start end; begin end; beginning end; prefix suffix; leading trailing;
insert delete; upload download; send receive; odd even; true false; horizontal vertical;
basename dirname
"""
OPPOSITES = frozenset(
    frozenset(pair.split())
    for pair in _OPPOSITES_TEXT.replace("\n", " ").split(";")
    if len(pair.split()) == 2
)
_NEGATING_PREFIXES = ("non-", "non", "un", "de", "dis", "anti")


def opposite(a: str, b: str) -> bool:
    """Whether two canonical words say opposite things: a listed pair, the same word with a
    negating prefix (`zip`/`unzip`, `executable`/`non-executable`), or compounds that differ
    in such a pair (`uppercase`/`lowercase`)."""
    if a == b:
        return False
    if frozenset((a, b)) in OPPOSITES:
        return True
    if any(a == p + b or b == p + a for p in _NEGATING_PREFIXES):
        return True
    common = 0
    while common < min(len(a), len(b)) and a[-1 - common] == b[-1 - common]:
        common += 1
    return common >= 3 and frozenset((a[:-common], b[:-common])) in OPPOSITES
