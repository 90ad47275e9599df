"""How well a row's key fits a new input, token by token: the aligned Jaccard of their content
words, and the vetoes that say the row does another thing (a negation, an opposite, a
parameter the input does not give, a tool name the key does not say, other words in the same
frame). `slots.adapt` measures it after filling the row's slots."""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass

from mcp_harness.experience.keywords import canonical, opposite
from mcp_harness.experience.tokens import (
    DISTINCTIVE,
    Token,
    forms_of,
    is_content,
    is_distinctive,
    parts_of,
    tokenize,
    with_parts,
)

MISSING, SUBSTITUTED, NEGATED, UNFILLED, UNUSED = 0.75, 0.5, 0.1, 0.25, 0.25
SUBSTITUTED_IN_FRAME = 0.3  # the one word that differs in an input sharing most of the key's
NEGATIONS = frozenset(
    {"not", "no", "nor", "never", "without", "cannot", "none", "neither", "except"}
)


@dataclass(frozen=True)
class Fit:
    """The parts of a row's fit: `overlap`, the aligned Jaccard of the content tokens;
    `vetoes`, the factors that say the row does another thing (a negation or an opposite, a
    parameter the input does not give, a tool name the key does not say); `wording`, the
    factors for key words the input does not say, `substituted` of which it says another word
    in their place, `framed` of those between words both say (the same frame saying another
    thing); `contradicted`, whether the input says the key turned around (negated, an
    opposite, two runs of words trading places): no row doing the same thing in other words
    may stand in for it; `kinship`, the same Jaccard over their words alone (no files, paths,
    numbers or strings): how far the input is the key's sentence, whatever its parameters."""

    overlap: float
    vetoes: float
    wording: float
    substituted: int = 0
    framed: int = 0
    contradicted: bool = False
    kinship: float = 0.0

    @property
    def value(self) -> float:
        return self.overlap * self.vetoes * self.wording

    @property
    def said(self) -> bool:
        """Whether the input shares most of the key's words: the same sentence, whose words
        that differ are the point."""
        return self.overlap >= REWORDED

    @property
    def rescue(self) -> float:
        """The vetoes, when the input rewords the key (an overlap below `REWORDED`); 0 when it
        shares most of the key's words or says another word in its frame, so the words it does
        not share are the point ("count the words" for "count the lines", "count
        subdirectories" for "count files") and no judge of meaning should overrule them."""
        return self.vetoes if not self.said and not self.framed else 0.0

    @property
    def near_miss(self) -> bool:
        """Whether the input is the key's sentence with its point changed: sharing most of its
        words (`kinship` at least `REWORDED`) but turned around, or saying another word in the
        key's frame ("the last line of x that contains y" for "the first line of a that
        contains b"). It asks for another operation than the row's, and a row that says
        something else in other words is no safer a guess."""
        return self.kinship >= REWORDED and (self.contradicted or self.framed > 0)


REWORDED = 0.45
FRAMED_COVER = 0.5  # of the key's words in runs the input says too, for a frame
REMOVALS = frozenset(canonical(w) for w in ("remove", "strip", "kill", "omit", "erase", "clear"))
REMOVED_SPAN = 2  # "Delete all empty lines": the removed words follow the verb


def measure(key, new, aligned, slots, fills, negated: bool, streams, value: str = "") -> Fit:
    """How well the row fits the input: the aligned Jaccard of their content tokens (a key
    token counts as matched when the input has it, or half when it is a slot the input
    filled with another value); x 0.75 for every key token the input has no counterpart for
    (people drop filler words), x 0.25 for a file, path or number parameter it does not
    give, x 0.5 when the input says another word in its place ("count the words" is not
    "count the lines"; x 0.3 when the input shares most of the key's words: "exactly once" is
    not "more than once") or names a tool or format the key does not (`base64` for a
    `tr` row), x 0.1 when one side is negated and the other is not ("files that do
    not contain", "non-executable") or says the opposite ("lowercase" for "uppercase", "from
    LF to CRLF" for "from CRLF to LF") or, sharing most words, says two of them in the other
    order ("tab-separated ... to comma-separated"), x 0.25 for a file, path, number or
    string the input gives that neither the key nor `value` (the row's value) has and no slot
    takes. `streams` are the key's and the input's tokens with their stop words."""
    slot_words = {s["text"].lower() for s in slots or ()}
    distinctive = {s["text"].lower() for s in slots or () if is_distinctive(s)}
    filled = {k.lower() for k in fills}
    key_forms, new_forms = forms_of(key), forms_of(new)
    matched = kin = 0.0
    vetoes = NEGATED if negated else 1.0
    wording = 1.0
    swaps = in_frame = 0
    changed = {k.lower() for k, v in fills.items() if k.lower() != v.lower()}
    fill_at = {j for j, t in enumerate(new) if t.text in fills.values()}
    framed = _framed(key, new, fill_at)
    said = with_parts(new_forms)
    new_lowers = {t.lower for t in new}
    for i, token in enumerate(key):
        j = aligned.get(i)
        derived = False
        if token.lower in slot_words:
            ok = token.lower in filled
        else:
            ok = key_forms[i] in said or set(parts_of(key_forms[i])) <= said
            derived = not ok and _derived(token, fills) in new_lowers
            ok = ok or derived
        # A parameter filled with another value is weaker evidence than a word both share:
        # any two file names "match".
        share = 0.5 if ok and (token.lower in changed or derived) else float(ok)
        matched += share
        kin += share if token.kind == "word" else 0.0
        if not ok and token.lower in distinctive:
            vetoes *= UNFILLED  # the command would act on the wrong file, path or number
        elif not ok and _built_in(token, j, new, slot_words):
            vetoes *= UNFILLED  # the value builds this one in ("DD/MM/YYYY" as \3-\2-\1)
        elif not ok:
            substituted = i in framed or (
                j is not None
                and new_forms.count(new_forms[j]) > key_forms.count(new_forms[j])
                and j not in fill_at
            )
            wording *= SUBSTITUTED if substituted else MISSING
            swaps += substituted
            in_frame += i in framed
    # A technical name (letters with digits: base64, sha256, utf8) in the input that the key
    # does not say names another tool or format than the row's.
    known = with_parts(key_forms)
    for j, token in enumerate(new):
        if _technical(token) and j not in fill_at and not set(parts_of(new_forms[j])) <= known:
            vetoes *= SUBSTITUTED
    # A parameter the input gives that the row has no place for (no slot takes it, the key
    # does not say it, the value does not hold it: "resetting the patch number to 0" for a
    # row that only bumps the patch) is part of the request the row's command would ignore:
    # a veto, so no judge of meaning may overrule it either. A number naming a standard
    # after its acronym ("ISO 8601") is a name, not a parameter.
    key_lowers = {t.lower for t in key} | {d for t in key if (d := _derived(t, fills))}
    key_lowers |= {t.lower for t in tokenize(value)}
    named = {id(b) for a, b in itertools.pairwise(streams[1]) if b.kind == "num" and _acronym(a)}
    for j, token in enumerate(new):
        held = token.lower in key_lowers or (token.kind == "str" and token.text in value)
        if token.kind in DISTINCTIVE and j not in fill_at and not held and id(token) not in named:
            vetoes *= UNUSED
    union = len(key) + len(new) - matched
    overlap = matched / union if union else 0.0
    words = sum(t.kind == "word" for t in key) + sum(t.kind == "word" for t in new) - kin
    kinship = kin / words if words else 0.0
    turned = negated
    if overlap >= REWORDED:  # the same sentence: the words that differ are the point
        wording *= (SUBSTITUTED_IN_FRAME / SUBSTITUTED) ** swaps
        if _swapped(key, new, streams):
            vetoes *= NEGATED
            turned = True
    return Fit(overlap, vetoes, wording, swaps, in_frame, turned, kinship)


def _acronym(token: Token) -> bool:
    """Whether a word is an acronym in capitals (ISO, RFC): what a standard's number follows."""
    return (
        token.kind == "word"
        and len(token.text) > 1
        and token.text.isalpha()
        and token.text.isupper()
    )


def _built_in(token: Token, j: int | None, new: list[Token], slot_words: set[str]) -> bool:
    """Whether the input says another parameter where the key says one that is not a slot:
    the row's value builds that one in (a date format as the order of a substitution's
    groups), so the input's cannot be filled in."""
    return (
        token.kind in DISTINCTIVE
        and token.lower not in slot_words
        and j is not None
        and new[j].kind == token.kind
        and new[j].lower != token.lower
    )


def _derived(token: Token, fills: dict[str, str]) -> str | None:
    """A file or path the key names after a filled parameter (`readme.txt.bak` after
    `readme.txt`), named after its fill (`chapter1.md.bak`); None for other tokens."""
    if token.kind not in ("file", "path"):
        return None
    out = token.lower
    for k, v in fills.items():
        if k.lower() != v.lower() and k.lower() in out:
            out = out.replace(k.lower(), v.lower())
    return out if out != token.lower else None


def _technical(token: Token) -> bool:
    text = token.lower
    return (
        token.kind == "word"
        and any(c.isdigit() for c in text)
        and any(c.isalpha() for c in text)
        and not text.startswith("-")
    )


def opposed(key: list[Token], new: list[Token], key_all: list[Token], new_all: list[Token]) -> bool:
    """Whether the input says the opposite of one of the key's words (and not that word; stop
    words count here: "after" for "before"), or turns a conversion around ("from LF to CRLF"
    for "from CRLF to LF"; `measure` also checks for two words that trade places, `_swapped`)."""
    key_forms, new_forms = with_parts(forms_of(key_all)), with_parts(forms_of(new_all))
    only_key, only_new = key_forms - new_forms, new_forms - key_forms
    # A removal verb says what "delete" does: "strip the last one" for "append one".
    if any(
        opposite(a, b)
        for a in only_key | _deleting(only_key)
        for b in only_new | _deleting(only_new)
    ):
        return True
    (key_from, key_to), (new_from, new_to) = _roles(key_all), _roles(new_all)
    return bool(key_from & new_to - new_from) or bool(key_to & new_from - new_to)


def _deleting(forms: set[str]) -> set[str]:
    """The canonical "delete" when the forms hold a removal verb ("strip", "erase")."""
    return {canonical("delete")} if forms & REMOVALS else set()


def _swapped(key: list[Token], new: list[Token], streams) -> bool:
    """Whether two runs of words that key and input each say once trade places while the
    other words they both say once stay in order, at least three such words in all ("the
    tab-separated file ... to comma-separated" for "the comma-separated file ... to
    tab-separated"; "the directory part of each path (strip the final file name)" for "the
    final file name of each path (strip the directories)"): in an input that shares most of
    the key's words, the operation turned around. A sentence built another way ("Put the
    number of lines of a in b" for "Count the lines in a and write the number to b") moves
    words in more ways than that, or shares too few words to tell; a compound said as a
    genitive ("weekday name", "name of the weekday") is one phrase (`_genitive`)."""
    key_forms, new_forms = forms_of(key), forms_of(new)
    words = [
        form
        for form, token in zip(key_forms, key, strict=True)
        if token.kind == "word" and key_forms.count(form) == 1 and new_forms.count(form) == 1
    ]
    order = [new_forms.index(form) for form in words]
    if len(order) < 3 or order == sorted(order):
        return False
    want, n = sorted(order), len(order)
    moved = [w for w, at, should in zip(words, order, want, strict=True) if at != should]
    if len(moved) == 2:
        return not _genitive(*moved, *streams) and not _genitive(*moved, *reversed(streams))
    # Two runs around words that stay ("A M B" -> "B M A"); a clause moved to the front or
    # the back ("Using the list in x, delete each file") moves one run past another instead,
    # unless both say "to" or "into" between the runs ("A into B" -> "B into A").
    if _traded_across(words, order, streams):
        return True
    return any(
        order[:a] + order[c:d] + order[b:c] + order[a:b] + order[d:] == want
        for a in range(n)
        for b in range(a + 1, n)
        for c in range(b + 1, n)
        for d in range(c + 1, n + 1)
    )


ACROSS = frozenset({"to", "into", "->", "→"})


def _traded_across(words: list[str], order: list[int], streams) -> bool:
    """Whether two adjacent runs of the key's words (canonical forms, in key order; `order`
    their places in the input's words) trade places with "to" or "into" between them in both
    texts ("Convert the KEY=value lines of a into a JSON object" / "Convert the JSON object in
    b into KEY=value lines"): a conversion turned around."""
    key_all, new_all = streams
    want, n = sorted(order), len(order)
    return any(
        order[:a] + order[b:c] + order[a:b] + order[c:] == want
        and _across(key_all, words[b - 1], words[b])
        and _across(new_all, words[c - 1], words[a])
        for a in range(n)
        for b in range(a + 1, n)
        for c in range(b + 1, n + 1)
    )


def _across(tokens: list[Token], before: str, after: str) -> bool:
    """Whether "to" or "into" stands between the words `before` and `after` (canonical)."""
    forms = forms_of(tokens)
    if before not in forms or after not in forms:
        return False
    i, j = forms.index(before), forms.index(after)
    return i < j and any(t.lower in ACROSS for t in tokens[i + 1 : j])


GENITIVE = frozenset({"of", "the", "a", "an", "its", "their", "each", "every"})


def _genitive(x: str, y: str, one: list[Token], other: list[Token]) -> bool:
    """Whether `one` says the words `x` and `y` (canonical forms) side by side, as a compound,
    and `other` says them the other way round joined by "of" ("weekday name" / "name of the
    weekday"): one phrase, not two words trading places."""
    a, b = forms_of(one), forms_of(other)
    pair = {x, y}
    if not any({a[i], a[i + 1]} == pair for i in range(len(a) - 1)):
        return False
    for i, form in enumerate(b):
        for j in range(i + 2, len(b)):
            if {form, b[j]} == pair and (a.index(form) > a.index(b[j])):
                between = {t.lower for t in other[i + 1 : j]}
                if "of" in between and between <= GENITIVE:
                    return True
    return False


def _roles(tokens: list[Token]) -> tuple[set[str], set[str]]:
    """The words a text converts from and to (canonical forms): the word after "from" and
    after a "to"/"into" (" from CRLF to LF", "change them to Unix ones"), and for "B instead
    of A" the word after "of" and the words just before "instead" ("needs Windows (CRLF)
    line endings instead of Unix ones"). Parameters (files, numbers) have no role:
    their fills tell them apart."""
    words = [t.lower for t in tokens]
    after = {
        i: next((j for j in range(i + 1, len(tokens)) if is_content(tokens[j])), None)
        for i in range(len(tokens))
    }

    def form(j: int | None) -> set[str]:
        return {canonical(words[j])} if j is not None and tokens[j].kind == "word" else set()

    sources: set[str] = set()
    targets: set[str] = set()
    for i, word in enumerate(words):
        if word == "from":
            sources |= form(after[i])
        elif word in ("to", "into"):
            targets |= form(after[i])
        elif word == "instead" and i + 1 < len(words) and words[i + 1] == "of":
            sources |= form(after[i + 1])
            before = [k for k in range(i) if tokens[k].kind == "word" and is_content(tokens[k])]
            targets |= {canonical(words[k]) for k in before[-INSTEAD_SPAN:]}
    return sources, targets


INSTEAD_SPAN = 4  # content words before "instead of" that say what the text converts to


def negations(tokens: list[Token]) -> frozenset[str]:
    """What the text negates: the word after each negation ("do not contain" -> contain,
    "everything except the digits" -> digit, "all but the last" -> last, "doesn't match" ->
    match, "non-empty" -> empty, "except the 5th" -> num),
    so "not contain the word x" differs from "the word x (whole, not part of another)" although
    both say "not"."""
    out = set()
    for i, token in enumerate(tokens):
        word = token.lower
        if word.startswith("non-"):
            out.add(canonical(word[4:]))
        elif (
            word in NEGATIONS
            or word.endswith("n't")
            or (word == "but" and i > 0 and tokens[i - 1].lower == "all")  # "all but the last"
        ):
            after = [t for t in tokens[i + 1 :] if is_content(t)][:1]
            out.add(_negated_form(after[0]) if after else word)
    return frozenset(out)


def _negated_form(token: Token) -> str:
    """A negated word as itself, a negated parameter as its kind: "except the fifth" negates
    what "without its 2nd field" does (a number), whichever number it is."""
    return canonical(token.lower) if token.kind == "word" else token.kind


def negated(key: list[Token], new: list[Token], fills: dict[str, str] | None = None) -> bool:
    """Whether one side negates what the other does not (`negations`), the key's negated
    parameters as the input fills them ("not public/" for "not build_out/"). Negating what the
    other side removes says the same thing ("so it has no empty lines left" for "Delete all
    empty lines", "a copy without any numerals" for "Delete the digits"), unless the negating
    side removes something too ("Remove everything except the digits" keeps them)."""
    filled = {canonical(k.lower()): canonical(v.lower()) for k, v in (fills or {}).items()}
    said, other = frozenset(filled.get(w, w) for w in negations(key)), negations(new)
    only_key, only_new = said - _removed(new, key) - other, other - _removed(key, new) - said
    return bool(only_key & _says(new)) or bool(only_new & _says(key, filled))


def _says(tokens: list[Token], filled: dict[str, str] | None = None) -> set[str]:
    """What a side says, as `negations` names it (words in canonical form with their parts,
    parameters as their kind; the key's slots as `filled` maps them to the input's words): a
    negation the other side does not share turns the row around only when this side says the
    negated thing ("do not contain" for "contain"); "(local config, not global)" adds a detail
    to a key that says nothing of it."""
    out = set()
    for token in tokens:
        if token.kind != "word":
            out.add(token.kind)
        elif is_content(token):
            form = canonical(token.lower)
            out.update({(filled or {}).get(form, form), *parts_of(form)})
    return out


def _removed(tokens: list[Token], other: list[Token]) -> frozenset[str]:
    """The words `tokens` says it removes (the next content words after a removal verb), when
    `other` says no removal verb: what `other` may say is no longer there."""
    if any(canonical(t.lower) in REMOVALS for t in other):
        return frozenset()
    out: set[str] = set()
    for i, token in enumerate(tokens):
        if canonical(token.lower) in REMOVALS:
            after = [t for t in tokens[i + 1 :] if is_content(t)][:REMOVED_SPAN]
            out.update(canonical(t.lower) for t in after)
    return frozenset(out)


def _words(tokens: list[Token], shape: list[str]) -> set[str]:
    """The words a run says as `_framed` compares them (its `shape`: parameters as their
    kind), with the parts of hyphenated words and of words joined by slashes ("spaces/tabs"
    says "tabs")."""
    out = with_parts(shape)
    for token in tokens:
        parts = [part for part in token.lower.split("/") if part]
        if token.kind == "path" and all(part.isalpha() for part in parts):
            out.update(map(canonical, parts))
    return out


def _framed(key: list[Token], new: list[Token], fill_at: set[int]) -> set[int]:
    """Key positions whose words the input replaces with others between words both say
    ("Sort the version numbers in x in version order" -> "Sort the sizes in y in
    human-readable size order"): the same frame saying another thing there, not a rewording.
    Runs that share a word say it again another way ("alphabetically, ignoring upper/lower
    case" for "case-insensitively"): a rewording. A frame holds most of the key
    (`FRAMED_COVER` of its words in runs both say): two words in common around another in a
    longer key are a rewording too. A negation there is not another thing said:
    `negations` compares what each side negates."""

    def shape(tokens: list[Token]) -> list[str]:  # parameters meet as their kind
        return [
            f if t.kind == "word" else t.kind for f, t in zip(forms_of(tokens), tokens, strict=True)
        ]

    key_shape, new_shape = shape(key), shape(new)
    matcher = difflib.SequenceMatcher(None, key_shape, new_shape, autojunk=False)
    opcodes = matcher.get_opcodes()
    same = sum(i2 - i1 for op, i1, i2, _, _ in opcodes if op == "equal")
    if same < FRAMED_COVER * len(key_shape):
        return set()
    out: set[int] = set()
    for at, (op, i1, i2, j1, j2) in enumerate(opcodes):
        if (
            op == "replace"
            and 0 < at < len(opcodes) - 1
            and opcodes[at - 1][0] == opcodes[at + 1][0] == "equal"
            and not _words(key[i1:i2], key_shape[i1:i2]) & _words(new[j1:j2], new_shape[j1:j2])
            and any(
                new[j].kind == "word" and j not in fill_at and new[j].lower not in NEGATIONS
                for j in range(j1, j2)
            )
        ):
            out.update(range(i1, i2))
    return out
