"""Parameterized experience: the spans a row's key and value share are its slots.

A row learned from "Make run.sh executable" -> `chmod +x run.sh` holds one operation and one
parameter. Its slot (`run.sh`, a file) is found when the row is created and kept in the row's
provenance; the seed-layout cells stay the literal text. Two things use slots:

- retrieval (`index_keywords`, `query_keywords`): a distinctive parameter (a file name, a path,
  a number) counts as a typed placeholder (`<file>`, `<path>`, `<num>`), so a row
  keys on the operation and "Make deploy.sh executable" finds the row learned on run.sh;
- adaptation (`adapt`): the slot is filled from the span of the new input that aligns with it
  (token alignment of the row's key with the input; failing that, the input's unused span of
  the same kind with the most similar neighbours), and the value is rewritten with the fills.
  A distinctive slot with no counterpart stays literal and is reported, and the fit
  (`experience.fit`) says how well the row suits the input, so the caller can lower its
  confidence.
Everything here is deterministic, pure text processing.
"""

from __future__ import annotations

import difflib
import itertools
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from mcp_harness.experience import template
from mcp_harness.experience.fit import measure, negated, opposed
from mcp_harness.experience.keywords import canonical
from mcp_harness.experience.tokens import (
    COMPATIBLE,
    DISTINCTIVE,
    EDGE_PUNCT,
    NAME,
    TOKEN,
    Token,
    boundary,
    forms_of,
    is_content,
    is_distinctive,
    is_identifier,
    kind_of,
    tokenize,
)

# Sharing a neighbour among all words ("up to 100" ~ "up to 275") is weaker evidence than
# sharing one among the content words.
_STOP_NEIGHBOUR = 0.5

_COMMAND_START = re.compile(r"(?:^|[|;&(`]|\$\()\s*$")


def find_slots(key: str, value: str) -> list[dict[str, str]]:
    """The key's spans that recur in the value (as a whole shell word or a part of one, never
    as the command a pipeline segment runs): `[{"text": "run.sh", "kind": "file"}, …]`."""
    if not key.strip() or not value.strip():
        return []
    candidates: dict[str, Token] = {}
    for token in tokenize(key):
        # Of spellings that differ in case ("the version in VERSION"), the value's own.
        held = candidates.get(token.lower)
        if is_content(token) and (held is None or (token.text in value) > (held.text in value)):
            candidates[token.lower] = token
    taken: list[tuple[int, int]] = []
    slots: list[dict[str, str]] = []
    for lowered, token in sorted(candidates.items(), key=lambda kv: -len(kv[0])):
        pattern = re.compile(boundary(token.text).format(re.escape(token.text)), re.IGNORECASE)
        for match in pattern.finditer(value):
            span = match.span()
            if any(span[0] < end and start < span[1] for start, end in taken):
                continue
            if token.kind == "word" and _COMMAND_START.search(value[: span[0]]):
                continue  # `git` in "Initialize a git repository" -> `git init`: the command
            taken.append(span)
            if not any(s["text"].lower() == lowered for s in slots):
                slots.append({"text": token.text, "kind": token.kind})
    return slots


def siblings(rows: list[tuple[str, list[dict[str, Any]]]]) -> list[list[dict[str, Any]]]:
    """Each row's slots, as rows that do the same thing tell them apart: two rows are siblings
    when their values have the same words but at one or more slots ("Create directory build",
    "Create directory logs"). A word slot that a sibling says another word in place of is a
    parameter (kind `name`, which an input must give, like a file); one that a sibling says
    too is part of the operation ("trailing" in "Strip trailing whitespace from x" and from
    y), so it is not filled from the input. `rows` are (value, slots) pairs."""
    tokens = [[t.lower for t in tokenize(value)] for value, _ in rows]
    out = []
    for i, (_, slots) in enumerate(rows):
        mine = {s["text"].lower() for s in slots}
        fixed, varying = set(), set()
        for j, theirs in enumerate(tokens):
            if j == i or len(theirs) != len(tokens[i]) or theirs == tokens[i]:
                continue
            other = {s["text"].lower() for s in rows[j][1]}
            differ = [p for p, (a, b) in enumerate(zip(tokens[i], theirs, strict=True)) if a != b]
            if not all(tokens[i][p] in mine or theirs[p] in other for p in differ):
                continue
            for p, word in enumerate(tokens[i]):
                if word in mine:
                    (varying if p in differ else fixed).add(word)
        refined = []
        for slot in slots:
            word = slot["text"].lower()
            if slot["kind"] == "word" and word in varying:
                refined.append({**slot, "kind": NAME})
            elif slot["kind"] != "word" or word not in fixed:
                refined.append(slot)
        out.append(refined)
    return out


_KIND_WORD = {"file": "file", "path": "folder", "num": "number", "str": "text"}


def operation(text: str, names: frozenset[str] = frozenset()) -> str:
    """The sentence with each parameter (a file, path, number or quoted string, and each word
    of `names`, lowercased: the words a row's slots were filled with) said as its kind ("Make
    run.sh executable" -> "Make file executable"; "swap oldLogger -> newLogger" -> "swap name
    -> name"): what a judge of meaning should compare, since two instances of one operation
    differ in their parameters."""
    out, end = [], 0
    for match in TOKEN.finditer(text):
        word = match.group(0).rstrip(EDGE_PUNCT)
        tokens = tokenize(word)
        if len(tokens) == 1 and tokens[0].kind == "word" and word.lower() in names:
            said = "name"
        elif not tokens or any(t.kind not in _KIND_WORD for t in tokens):
            continue
        elif len(tokens) == 1:
            said = _KIND_WORD[tokens[0].kind]
        else:
            said = re.sub(r"\d+", "number", word)
        out.append(text[end : match.start()] + said)
        end = match.start() + len(word)
    return "".join(out) + text[end:]


def placeholder(keyword: str) -> str | None:
    """The typed placeholder of a distinctive keyword (`<file>`, `<path>`, `<num>`), else None."""
    kind = kind_of(keyword)
    return f"<{kind}>" if kind in ("file", "path", "num") else None


def index_keywords(keywords: list[str], slots: list[dict[str, Any]] | None) -> list[str]:
    """A row's retrieval terms: a distinctive slot counts as its placeholder, not itself; the
    other words in their canonical form (`keywords.canonical`), as on the query side."""
    params = {s["text"].lower() for s in slots or () if s.get("kind") in DISTINCTIVE}
    terms = [(placeholder(w) or w) if w in params else canonical(w) for w in keywords]
    return list(dict.fromkeys(terms))


def query_keywords(keywords: list[str]) -> list[tuple[str, ...]]:
    """A query's terms as groups (words in their canonical form, `keywords.canonical`): a
    distinctive keyword matches as itself or as its placeholder
    (which of the query's spans are parameters is not known), and counts once."""
    groups: dict[str, tuple[str, ...]] = {}
    for word in map(canonical, keywords):
        typed = placeholder(word)
        groups.setdefault(word, (word, typed) if typed else (word,))
    return list(groups.values())


@dataclass
class Adaptation:
    """A row's value adapted to a new input: the filled text, the fills, the distinctive
    slots that found no counterpart, how well the row fits the input word by word (`fit.measure`,
    in [0, 1]), and `rescue`: how far a kernel that judges meaning may trust the row when the
    input says the same thing in other words (`fit.Fit.rescue`); `kinship` and `near_miss` as
    `fit.Fit` says them (a filled template is the key's sentence: kinship 1)."""

    text: str
    fills: dict[str, str] = field(default_factory=dict)
    unfilled: list[str] = field(default_factory=list)
    fit: float = 0.0
    rescue: float = 0.0
    contradicted: bool = False
    kinship: float = 0.0
    near_miss: bool = False


def adapt(key: str, value: str, slots: list[dict[str, Any]] | None, new_input: str) -> Adaptation:
    """Fill the row's slots from the aligned spans of `new_input` and rewrite the value.
    Alignment runs over content tokens (no stop words), words in their canonical form, so
    "a new folder named logs" aligns `logs` with `build` in "a directory called build"."""
    key_all, input_all = tokenize(key), tokenize(new_input)
    key_tokens = [t for t in key_all if is_content(t)]
    input_tokens = [t for t in input_all if is_content(t)]
    aligned = _align(key_tokens, input_tokens)
    slots = [_field_named(slot, value) for slot in slots or ()]
    fills: dict[str, str] = {}
    used: set[int] = set()
    unfilled: list[dict[str, Any]] = []
    for slot in slots:
        lowered = slot["text"].lower()
        target = None
        # The slot's own spelling where the key has it: "VERSION", not the word before it,
        # is the file in "the version in VERSION".
        spelled = any(token.text == slot["text"] for token in key_tokens)
        for i, token in enumerate(key_tokens):
            j = aligned.get(i)
            if (
                (token.text == slot["text"] if spelled else token.lower == lowered)
                and j is not None
                and input_tokens[j].kind in COMPATIBLE.get(slot["kind"], ())
                and input_tokens[j].part == token.part
                and (slot["kind"] != NAME or _near(key_all, input_all, token, input_tokens[j]))
            ):
                target = j
                break
        if target is None:
            unfilled.append(slot)
            continue
        used.add(target)
        fills[slot["text"]] = input_tokens[target].text
    # A word the alignment could not place but the input has (clauses in another order),
    # unless the key says that word in another spelling too (the input's is that one's).
    forms, key_forms = forms_of(input_tokens), forms_of(key_tokens)
    for slot in list(unfilled):
        form = canonical(slot["text"].lower())
        if (
            slot["kind"] in ("word", NAME)
            and form in forms
            and not any(
                t.text != slot["text"] and f == form
                for t, f in zip(key_tokens, key_forms, strict=True)
            )
        ):
            j = forms.index(form)
            fills[slot["text"]] = input_tokens[j].text
            used.add(j)
            unfilled.remove(slot)
    roles = (_roles(key_all), _roles(input_all))
    _place_by_context(key_tokens, input_tokens, unfilled, fills, used, (key_all, input_all), roles)
    _place_the_leftover(key_tokens, input_tokens, unfilled, fills, used)
    _follow_roles(fills, (key_all, input_all), roles)
    # A word slot no sibling row showed to be a parameter, filled with the same word in
    # another form or with a synonym ("lines" for "line", "field" for "column"), is the key's
    # word said again: the value keeps its own.
    for slot in slots or ():
        word, fill = slot["text"], fills.get(slot["text"])
        if (
            slot["kind"] == "word"
            and fill is not None
            and fill.lower() != word.lower()
            and canonical(fill.lower()) == canonical(word.lower())
        ):
            fills[word] = word
    # A word slot spelled like a name in code ("VERSION") is a parameter the input must give.
    still = [
        s["text"]
        for s in unfilled
        if (is_distinctive(s) or is_identifier(s["text"])) and s["text"] not in fills
    ]
    text = _rewrite(value, {k: v for k, v in fills.items() if k != v})
    turned = (
        negated(key_all, input_all, fills)
        or opposed(key_tokens, input_tokens, key_all, input_all)
        or _trade(fills)
    )
    fit = measure(
        key_tokens, input_tokens, aligned, slots, fills, turned, (key_all, input_all), value
    )
    framed = template.fill(key, value, new_input)
    if framed is not None and framed.share > fit.value and not _trade(framed.fills):
        return Adaptation(
            _rewrite(value, framed.fills), framed.fills, [], framed.share, kinship=1.0
        )
    return Adaptation(
        text, fills, still, fit.value, fit.rescue, fit.contradicted, fit.kinship, fit.near_miss
    )


def _field_named(slot: dict[str, Any], value: str) -> dict[str, Any]:
    """A word slot the value uses as a field's name (`.size` in jq, `item['qty']` in Python)
    is a parameter the input must give, as a sibling row would show (kind `name`): the
    command reads that field, and another request names its own."""
    if slot["kind"] != "word":
        return slot
    word = re.escape(slot["text"])
    field_use = rf"(?<![\w.])\.{word}(?![\w(])|\[\s*['\"]{word}['\"]\s*\]"
    return {**slot, "kind": NAME} if re.search(field_use, value) else slot


def _trade(fills: dict[str, str]) -> bool:
    """Whether two words of the key take each other's place ("Fahrenheit ... to Celsius" for
    "Celsius ... to Fahrenheit"): the input turns the row around. Files and numbers may trade
    places (`paste b a` for `paste a b`); words that do say another operation."""
    lowered = {k.lower(): v.lower() for k, v in fills.items() if kind_of(k) == "word"}
    return any(v != k and lowered.get(v) == k for k, v in lowered.items())


def _place_by_context(key, new, unfilled, fills, used, streams, roles) -> None:
    """Distinctive slots the alignment could not place take the input's unused spans of their
    kind that the key does not have, best context first: a span whose neighbours are the
    slot's neighbours among the content words (`lines in notes.txt` ~ `lines of words.txt`),
    or for a file its extension and role (`_same_role`), wins, then input order. A name goes by
    its neighbours among all words alone (`under scripts` ~ `under tools`; the word before
    counts twice: it says the role), since any word could stand in its place. `streams` are
    the key's and the input's tokens with their stop words, `roles` their files' (`_roles`)."""
    key_forms, new_forms = ["^", *forms_of(key), "$"], ["^", *forms_of(new), "$"]
    key_near, new_near = (_neighbours(tokens) for tokens in streams)
    key_roles, new_roles = roles
    key_words = {t.lower for t in key}
    pairs = []
    for slot in unfilled:
        if not is_distinctive(slot):
            continue
        kind = "word" if slot["kind"] == NAME else slot["kind"]
        # The slot's own spelling where the key has it ("VERSION", not "version" before it).
        where = [i for i, t in enumerate(key) if t.text == slot["text"]] or [
            i for i, t in enumerate(key) if t.lower == slot["text"].lower()
        ]
        order = min(where, default=len(key))  # ties pair in order: the k-th with the k-th
        parts = {key[i].part for i in where}
        for j, token in enumerate(new):
            if j in used or token.kind != kind or token.lower in key_words:
                continue
            if parts and token.part not in parts:
                continue  # a date's year is not a count, nor a count one part of a range
            near = new_near.get(token.text, set())
            if slot["kind"] == NAME:
                around = [key_near.get(key[i].text, set()) & near for i in where]
                shared = max(
                    (sum(2 if side < 0 else 1 for side, _ in a) for a in around), default=0
                )
                if not shared:
                    continue  # a name is any word: only the words around it can say which
                pairs.append((-shared, order, j, slot["text"], token.text))
                continue
            score = max(
                (
                    (key_forms[i] == new_forms[j])
                    + (key_forms[i + 2] == new_forms[j + 2])
                    + _same_role(key[i], token, key_roles, new_roles)
                    + _STOP_NEIGHBOUR * bool(_inner(key_near.get(key[i].text, set()) & near))
                    for i in where
                ),
                default=0,
            )
            pairs.append((-score, order, j, slot["text"], token.text))
    for _, _, j, text, fill in sorted(pairs):
        if text not in fills and j not in used:
            fills[text] = fill
            used.add(j)


def _place_the_leftover(key, new, unfilled, fills, used) -> None:
    """One slot left without a counterpart takes the one span of the input left that reads as a
    parameter (a name in code, a quoted string; `LICENSE` for `.env`, `DENIED` for `ERROR`,
    `max_conn` for `workers`), when it is the only one of each: reworded sentences move
    parameters where no alignment finds them, and nothing else could fill that place."""
    left = [
        s
        for s in unfilled
        if s["text"] not in fills
        and s["kind"] != "num"
        and (is_distinctive(s) or is_identifier(s["text"]))
    ]
    if len(left) != 1:
        return
    said = {_plain(t.lower) for t in key}
    spans = [
        j
        for j, t in enumerate(new)
        if j not in used
        and _plain(t.lower) not in said
        and t.text not in fills.values()
        and (t.kind == "str" or (t.kind == "word" and is_identifier(t.text)))
    ]
    # A file's place takes a name in capitals (LICENSE, SHA256SUMS), not any name in code.
    if left[0]["kind"] in ("file", "path"):
        spans = [j for j in spans if new[j].kind == "str" or _capitals(new[j].text)]
    if len(spans) == 1:
        fills[left[0]["text"]] = new[spans[0]].text
        used.add(spans[0])


def _capitals(word: str) -> bool:
    return word[:1].isalpha() and word.upper() == word


def _plain(word: str) -> str:
    """A word without its hyphens and underscores: "sha-256" says the key's "sha256"."""
    return word.replace("-", "").replace("_", "")


def _roles(tokens: list[Token]) -> dict[str, str]:
    """How the file names of a text relate: where the result goes (`derived`) and what it is
    made from (`source`). What the sentence says plainly decides first (`_cued`: "into b.txt",
    "write it to b.txt", "save it as b.txt", "a.txt -> b.txt", "from a.txt", "b.txt should
    list"); then, of two names where one stem starts the other's, the shorter is the source
    (response.json for response_pretty.json); then, in a text of two files, "to b.txt" and
    "of a.txt" ("a hard link x to y" says nothing of which is made from which, so they come
    last). Of two files of which one has a role, the other has the other; of more, the
    sources need a word each ("Combine a.log and b.log into c.log" says only c.log's role).
    `tokens` are all words, stop words too."""
    names = list(dict.fromkeys(t.lower for t in tokens if t.kind == "file"))
    roles = _cued(tokens)
    stems = {name: name.rsplit(".", 1)[0] for name in names if name not in roles}
    for a, stem in stems.items():
        starts = [
            b for b, other in stems.items() if stem and other != stem and other.startswith(stem)
        ]
        # A stem that starts several names is their common prefix, not what they are made
        # from (config.patch of config_old.yaml and config_new.yaml).
        if len(starts) == 1:
            roles.setdefault(a, "source")
            roles.setdefault(starts[0], "derived")
    if len(names) != 2:
        return roles
    if not roles:
        for before, token in itertools.pairwise(tokens):
            if token.kind == "file" and before.lower in _WEAK:
                roles.setdefault(token.lower, _WEAK[before.lower])
    if len(roles) == 1:
        role = next(iter(roles.values()))
        other = next(n for n in names if n not in roles)
        roles[other] = "source" if role == "derived" else "derived"
    return roles


def _cued(tokens: list[Token]) -> dict[str, str]:
    """The roles a sentence gives its files plainly: after "into" or an arrow, after "to",
    "as", "in" or "at" following a verb of writing ("write the number to", "save it as",
    "store the diff in"), right after "make" or before "should" ("b.txt should list ..."), a
    file is where the result goes; after "from", what it is made from. The first cue a file
    has counts; a verb of writing gives that place to the last file it reaches."""
    words = [t.lower for t in tokens]
    roles: dict[str, str] = {}
    # One verb of writing has one destination, the last file it reaches: "Write the player
    # with the highest score in scores.json to top.txt" writes top.txt, not scores.json.
    by_verb: dict[int, str] = {}
    for i, token in enumerate(tokens):
        if token.kind != "file":
            continue
        before = words[i - 1] if i else ""
        after = words[i + 1] if i + 1 < len(words) else ""
        verb = next((k for k in range(i - 2, -1, -1) if canonical(words[k]) in _WRITING), None)
        if verb is not None and verb < i - 1 - _WRITE_SPAN and verb not in by_verb:
            verb = None  # too far, unless the verb already reached a file nearer to it
        if before in _INTO or before in _MADE or after in _DUTY:
            roles.setdefault(token.lower, "derived")
        elif before in _AT and verb is not None:
            by_verb[verb] = token.lower
        elif before == "from":
            roles.setdefault(token.lower, "source")
    for name in by_verb.values():
        roles.setdefault(name, "derived")
    return roles


_INTO = frozenset({"into", "->"})
_AT = frozenset({"to", "as", "in", "at"})
_MADE = frozenset({"make", "create", "produce", "generate", "build"})
_DUTY = frozenset({"should", "must"})
_WEAK = {"to": "derived", "of": "source"}
_WRITING = frozenset(
    canonical(w)
    for w in (
        "save",
        "store",
        "write",
        "put",
        "output",
        "dump",
        "place",
        "keep",
        "record",
        "go",
        "goes",
    )
)
_WRITE_SPAN = 8  # words before the preposition that may hold the verb of writing


def _follow_roles(fills: dict[str, str], streams, roles) -> None:
    """Two file slots whose fills have each other's roles (`_roles`: the key's source filled
    with the input's result, its result with the input's source) trade fills, when both
    texts say one of those roles in words (`_cued`): "make b.json: the same data as a.json but
    pretty printed" names the result first, and the command must still read a.json and write
    b.json. Roles read from names alone ("Rename report-v2.txt to report.txt") do not move
    what the alignment placed. `streams` and `roles` as `_place_by_context` takes them."""
    key_roles, new_roles = roles
    key_plain, new_plain = (set(_cued(tokens)) for tokens in streams)

    def role(slot: str, side: dict[str, str], text: str) -> str | None:
        return side.get(text.lower()) if kind_of(slot) == "file" else None

    for a, b in itertools.combinations(list(fills), 2):
        if (
            {role(a, key_roles, a), role(b, key_roles, b)} == {"source", "derived"}
            and role(a, new_roles, fills[a]) == role(b, key_roles, b)
            and role(b, new_roles, fills[b]) == role(a, key_roles, a)
            and {a.lower(), b.lower()} & key_plain
            and {fills[a].lower(), fills[b].lower()} & new_plain
        ):
            fills[a], fills[b] = fills[b], fills[a]


def _same_role(slot: Token, token: Token, key_roles: dict, new_roles: dict) -> int:
    """Evidence that an input file takes a file slot's place: the same extension or format
    (`_FORMATS`) where the key's files differ in theirs, the same role (`_roles`) where the
    input's names relate."""
    if slot.kind != "file" or token.kind != "file":
        return 0
    score = 2 * (key_roles.get(slot.lower) == new_roles.get(token.lower) is not None)
    if _format(slot.lower) == _format(token.lower):
        score += 1
    return score


# Extensions of one format: `bundle.tgz` takes the place of `release.tar.gz`.
_FORMATS = {
    **dict.fromkeys(
        ("tgz", "gz", "tar", "bz2", "tbz", "tbz2", "xz", "txz", "zst", "zip", "7z"), "archive"
    ),
    **dict.fromkeys(("yml", "yaml"), "yaml"),
    **dict.fromkeys(("htm", "html"), "html"),
    **dict.fromkeys(("jpg", "jpeg"), "jpeg"),
}


def _format(name: str) -> str:
    extension = name.rsplit(".", 1)[-1]
    return _FORMATS.get(extension, extension)


def _near(key_all: list[Token], input_all: list[Token], a: Token, b: Token) -> bool:
    """Whether `b` in the input has one of the words around `a` in the key (a name paired by
    the alignment alone may be any word that happens to stand in its place)."""
    return bool(_neighbours(key_all).get(a.text, set()) & _neighbours(input_all).get(b.text, set()))


def _inner(near: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Neighbours that are words, not the text's start or end (the content words say those)."""
    return {(side, form) for side, form in near if form not in ("^", "$")}


def _neighbours(tokens: list[Token]) -> dict[str, set[tuple[int, str]]]:
    """Each spelling's neighbours among all words (stop words too): (-1, before), (1, after);
    by spelling, so "VERSION" in "the version in VERSION" has its own."""
    forms = ["^", *forms_of(tokens), "$"]
    near: dict[str, set[tuple[int, str]]] = {}
    for i, token in enumerate(tokens):
        near.setdefault(token.text, set()).update({(-1, forms[i]), (1, forms[i + 2])})
    return near


def _align(key: list[Token], new: list[Token]) -> dict[int, int]:
    """Key token index -> the input token index it aligns with."""
    matcher = difflib.SequenceMatcher(None, forms_of(key), forms_of(new), autojunk=False)
    aligned: dict[int, int] = {}
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            aligned.update(zip(range(i1, i2), range(j1, j2), strict=True))
        elif op == "replace":
            pairs = _pair(key[i1:i2], new[j1:j2])
            aligned.update({i1 + a: j1 + b for a, b in pairs.items()})
    return aligned


def _pair(left: list[Token], right: list[Token]) -> dict[int, int]:
    """Within a replaced block of up to three tokens each side: position by position. In a
    longer or uneven rewording nothing pairs here; distinctive slots are placed by context."""
    if len(left) == len(right) <= 3:
        return {a: a for a in range(len(left)) if _both_content(left[a], right[a])}
    return {}


def _both_content(a: Token, b: Token) -> bool:
    return is_content(a) and is_content(b) and b.kind in COMPATIBLE.get(a.kind, ())


def _rewrite(value: str, fills: dict[str, str]) -> str:
    """Replace every whole-word occurrence of each slot at once (no chained replacements); a
    fill inside a sed substitution is escaped for its place there (`_sed_escaped`), and a
    short flag's argument outside quotes that the shell would read (`|`, a space) is quoted."""
    if not fills:
        return value
    lowered = {k.lower(): (k, v) for k, v in fills.items()}
    pattern = re.compile(
        "|".join(boundary(k).format(re.escape(k)) for k in sorted(fills, key=len, reverse=True)),
        re.IGNORECASE,
    )
    parts, quoted = _sed_parts(value), _quoted(value)

    def fill(match: re.Match) -> str:
        slot, text = lowered[match.group(0).lower()]
        for start, end, role, delimiter, extended in parts:
            if start <= match.start() and match.end() <= end:
                return _sed_escaped(slot, text, role, delimiter, extended)
        at = match.start()
        flag = _SHORT_FLAG.fullmatch(value[max(0, at - 2) : at])
        if flag and not quoted[at] and _SHELL_SPECIAL.search(text):
            return shlex.quote(text)  # "-F:" filled with "|" is -F'|', not a pipe
        return text

    return pattern.sub(fill, value)


# A quoted sed substitution: s, its delimiter, the pattern, the replacement.
_SED_S = re.compile(r"(?<=['\";])s([^\w\s\\])((?:\\.|(?!\1).)*)\1((?:\\.|(?!\1).)*)\1")
_SED_EXTENDED = re.compile(r"\bsed\b[^|;']*\s-[A-Za-z]*[Er]")
_BRE_SPECIAL, _ERE_SPECIAL = set("\\.[]*^$"), set("\\.[]*^$+?(){}|")
_SHORT_FLAG = re.compile(r"-[A-Za-z]")
_SHELL_SPECIAL = re.compile(r"[\s|&;<>()$`\\\"'*?\[\]#~{}!]")


def _quoted(value: str) -> list[bool]:
    """Per character of a command, whether it stands inside single or double quotes."""
    out, quote, escaped = [], None, False
    for c in value:
        if escaped:
            escaped = False
        elif quote is None and c == "\\":
            escaped = True
        elif quote is None and c in "'\"":
            quote = c
        elif c == quote:
            quote = None
            out.append(True)
            continue
        out.append(quote is not None)
    return out


def _sed_parts(value: str) -> list[tuple[int, int, str, str, bool]]:
    """The pattern and replacement spans of each sed substitution in a command:
    (start, end, "pattern" or "replacement", its delimiter, whether the regex is extended)."""
    out = []
    for match in _SED_S.finditer(value):
        extended = bool(_SED_EXTENDED.search(value[: match.start()]))
        delimiter = match.group(1)
        out.append((match.start(2), match.end(2), "pattern", delimiter, extended))
        out.append((match.start(3), match.end(3), "replacement", delimiter, extended))
    return out


def _sed_escaped(slot: str, text: str, role: str, delimiter: str, extended: bool) -> str:
    """A fill as sed reads it where the slot stood: the delimiter always escaped; in a
    replacement `&` and `\\` too (the input means those characters); in a pattern the regex's
    special characters, when the row's own parameter there was plain text (a literal, not a
    regex: "occurrence number 2 of '?'")."""
    special = {delimiter, "\\", "&"} if role == "replacement" else {delimiter}
    regex = _ERE_SPECIAL if extended else _BRE_SPECIAL
    if role == "pattern" and not set(slot) & regex:
        special |= regex
    return "".join("\\" + c if c in special else c for c in text)
