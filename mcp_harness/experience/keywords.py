"""Keyword extraction for the query column, without an LLM.

Text is split into tokens that keep shell-shaped words whole: identifiers (`snake_case`,
`os.path`), paths (`/etc/hosts`, `./src/main.py`, `~/.bashrc`), flags (`--force`, `-la`), command
names and CJK runs. Tokens are lowercased, stripped of sentence punctuation, de-duplicated in order
of first appearance, and English stop-words are dropped. The same function runs on stored rows and
on search queries, so both sides always agree.
"""

from __future__ import annotations

import functools
import re
import zlib

_TOKEN = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+"  # CJK runs
    r"|[$~./]*[\w$@%+=:,.\-/~]*\w[\w$@%+=:,.\-/~]*"  # words, paths, flags, identifiers
)
_EDGE_PUNCT = ".,:;=!?"

# English function words, and words that carry no operation in a request ("I need", "could
# you quickly"). Quantities stay words ("more than once" is not "exactly once", "only by its
# owner" is not "by everyone").
_STOP_WORDS_TEXT = """
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each for from
further had has have having he her here hers herself him himself his how i if in into is
it its itself just let me my myself no nor not now of off on or other
our ours ourselves out over own same she should so some such than that the their theirs
them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself
yourselves please also want
need needs like kindly quick quickly thanks thank get got
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def extract_keywords(text: str) -> list[str]:
    """Retrieval keywords of `text`, in order of first appearance."""
    tokens = dict.fromkeys(token.rstrip(_EDGE_PUNCT) for token in _TOKEN.findall(text.lower()))
    return [t for t in tokens if t and t not in STOP_WORDS and t != "_"]


def keywords_text(text: str) -> str:
    """The query-column form: one keyword per line."""
    return "\n".join(extract_keywords(text))


def stem(word: str) -> str:
    """A lowercased alphabetic word without its inflection (`lines`, `lined` -> `lin`;
    `directories` -> `directory`; `stopped` -> `stop`; `stored`, `storing` -> `stor`), so
    "converted" meets "convert". Crude but the same on both sides, which is all matching needs;
    words with digits, dots or slashes, and words of up to three letters, stay as they are."""
    if len(word) <= 3 or not word.isalpha():
        return word
    base = word
    if base.endswith("ies") and len(base) > 4:
        base = base[:-3] + "y"
    elif base.endswith(("sses", "xes", "zes", "ches", "shes")):
        base = base[:-2]
    elif base.endswith("s") and not base.endswith(("ss", "us", "is")):
        base = base[:-1]
    if base.endswith("ing") and len(base) >= 6:
        base = _undouble(base[:-3])
    elif base.endswith("ed") and len(base) >= 5:
        base = _undouble(base[:-2])
    if base.endswith("e") and len(base) > 3:
        base = base[:-1]
    return base


def _undouble(base: str) -> str:
    if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
        return base[:-1]
    return base


# Words of the same meaning in terminal tasks, each mapped to one canonical form, so that
# "Make a new folder named logs" and "Create a directory called build" share their operation.
# Only words that mean the same whatever the task: "change" (permissions? text?), "field"
# (CSV? JSON?) and "number" (count? line numbers?) are left out on purpose.
_SYNONYMS_TEXT = """
directory: folder dir subdirectory subfolder subdir
create: make add generate produce
delete: remove erase rm del rid purge wipe discard eliminate drop
copy: duplicate cp
rename: move mv relocate
show: print display view
count: tally many total
compute: calculate calc determine
hash: checksum digest fingerprint
archive: tarball tarfile
executable: runnable
write: save put store record written wrote stash
first: top beginning initial
last: bottom final
before: prior
replace: substitute swap
sort: order alphabetize arrange
find: search locate
contain: mention include
empty: blank
symlink: link symbolic shortcut
initialize: init initialise
called: named titled
text: content
reverse: backwards backward flip invert opposite reversed
convert: transform turn
line: row
extract: unpack
combine: concatenate concat
strip: trim
whitespace: space spaces
number: integer numeral
hex: hexadecimal
extension: ext
permission: perms mode
repository: repo
uppercase: caps
character: char letter
entry: item element
column: field col
separated: delimited
"""


def _build_synonyms() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in _SYNONYMS_TEXT.strip().splitlines():
        head, _, words = line.partition(":")
        for word in [head, *words.split()]:
            key = stem(word)
            if table.setdefault(key, stem(head)) != stem(head):
                raise ValueError(f"synonym {word!r} is in two groups")
    return table


SYNONYMS = _build_synonyms()


@functools.lru_cache(maxsize=1 << 16)
def canonical(word: str) -> str:
    """The canonical form of a lowercased keyword: the stem of its synonym group's head word
    (`folders` -> `directory`, `converted` -> `convert`), else its own stem (`stem`); a
    hyphen before or after digits goes (`sha-256` -> `sha256`); anything with a digit, dot or
    slash otherwise as is. A pure function of the word, remembered for the words seen last."""
    if "-" in word and not word.startswith("-") and "." not in word and "/" not in word:
        word = _join_digit_parts(word)
    key = stem(word)
    return SYNONYMS.get(key, key)


def _join_digit_parts(word: str) -> str:
    parts = word.split("-")
    out = [parts[0]]
    for part in parts[1:]:
        if part.isdigit() or (out[-1] and out[-1].isdigit()):
            out[-1] += part
        else:
            out.append(part)
    return "-".join(out)


# Words of opposite meaning: one in the row's key and the other in the input means the
# opposite operation ("Convert it to lowercase" is not "Convert it to uppercase").
_OPPOSITES_TEXT = """
upper lower; uppercase lowercase; encode decode; compress decompress; create delete;
enable disable; show hide; start stop; lock unlock; increase decrease; first last;
head tail; min max; minimum maximum; before after; ascending descending; asc desc; on off;
open close; push pull; import export; input output; read write; include exclude;
allow deny; accept reject; grant revoke; larger smaller; bigger smaller; newest oldest;
new old; encrypt decrypt; join split; merge split; forward backward; visible hidden;
append overwrite; prepend append; append remove; left right; plus minus; add subtract;
largest smallest; biggest smallest; highest lowest; longest shortest; most least;
greatest least; earliest latest; oldest latest; increasing decreasing; above below;
inside outside; start end; begin end; beginning end; prefix suffix; leading trailing;
insert delete; upload download; send receive; odd even; true false; horizontal vertical;
basename dirname
"""
OPPOSITES = frozenset(
    frozenset(map(canonical, pair.split()))
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


# Persisted indexes hold canonical terms and typed placeholders: one built under another
# vocabulary is stale. The suffix counts changes to how tokens are typed (-2: versions are
# numbers, and file extensions of up to 10 characters).
VOCABULARY = f"{zlib.crc32((_STOP_WORDS_TEXT + _SYNONYMS_TEXT + _OPPOSITES_TEXT).encode()):08x}-2"
