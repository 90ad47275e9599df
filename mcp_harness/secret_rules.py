"""Provider secret formats: the maintained rule set of gitleaks plus rules of our own.

`data/gitleaks/gitleaks.toml` is gitleaks' default configuration, vendored unchanged from
github.com/gitleaks/gitleaks (config/gitleaks.toml at commit b58d3f102cf3, 2026-07-22; MIT
license, `data/gitleaks/LICENSE`). It is applied the way gitleaks applies it: a rule runs only
when one of its keywords occurs; the secret is its `secretGroup` (else the first non-empty
group, else the whole match); a secret at or below the rule's `entropy` or caught by a global
or rule allowlist (regexes, stopwords) is left alone. Update it by copying a newer file.

`own_rules()` covers what gitleaks does not name as a provider token (Docker Hub tokens, Azure
storage keys, `curl -u user:pass`, `mysql -pPASS`, a service-account key's id).

`regex` and `tomllib` are imported when the rules are first compiled, not with this module:
the server imports `redaction` at start and redacts nothing until its first answer.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import regex

RULES_FILE = ("data", "gitleaks", "gitleaks.toml")
# Rules not applied: generic-api-key flags any high-entropy value after words such as "key"
# (hashes, ids, file names in ordinary output); pkcs12-file matches file paths, not text.
SKIPPED = frozenset({"generic-api-key", "pkcs12-file"})
WINDOW = 400  # characters around a keyword a match may reach (gitleaks' rules reach < 300)
SNAP = 4096  # how far a window edge moves to reach a word boundary


@dataclass(frozen=True)
class Allowlist:
    regexes: tuple[regex.Pattern[str], ...] = ()
    stopwords: tuple[str, ...] = ()
    target: str = "secret"  # what the regexes see: the secret, the whole match or its line
    all_of: bool = False  # condition AND: every criterion must hold (paths never do here)
    has_other: bool = False  # paths or commits: criteria that never hold on plain text

    def allows(self, secret: str, match: str, line: str) -> bool:
        subject = {"secret": secret, "match": match, "line": line}.get(self.target, secret)
        lowered = secret.lower()
        checks = []
        if self.regexes:
            checks.append(any(p.search(subject) for p in self.regexes))
        if self.stopwords:
            checks.append(any(word in lowered for word in self.stopwords))
        if self.has_other:
            checks.append(False)
        if not checks:
            return False
        return all(checks) if self.all_of else any(checks)


@dataclass(frozen=True)
class Rule:
    id: str
    pattern: regex.Pattern[str]
    keywords: tuple[str, ...] = ()
    group: int = 0  # 0: the first non-empty group, else the whole match
    entropy: float = 0.0
    allowlists: tuple[Allowlist, ...] = field(default_factory=tuple)


def _compile(pattern: str) -> regex.Pattern[str]:
    # Go's RE2 spells end of text \z; inline flags mid-pattern are accepted by `regex`.
    import regex

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return regex.compile(pattern.replace(r"\z", r"\Z"))


def _allowlist(raw: dict[str, Any]) -> Allowlist:
    return Allowlist(
        regexes=tuple(_compile(p) for p in raw.get("regexes", ())),
        stopwords=tuple(w.lower() for w in raw.get("stopwords", ())),
        target=raw.get("regexTarget", "secret"),
        all_of=str(raw.get("condition", "OR")).upper() == "AND",
        has_other=bool(raw.get("paths") or raw.get("commits")),
    )


def entropy(text: str) -> float:
    """Shannon entropy in bits per character, as gitleaks computes it."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


@functools.cache
def gitleaks_rules() -> tuple[tuple[Rule, ...], tuple[Allowlist, ...]]:
    """The vendored rules and the global allowlists, compiled once."""
    import tomllib

    source = resources.files("mcp_harness").joinpath(*RULES_FILE)
    config = tomllib.loads(source.read_text(encoding="utf-8"))
    rules = []
    for raw in config["rules"]:
        if raw["id"] in SKIPPED or "regex" not in raw:
            continue
        rules.append(
            Rule(
                id=raw["id"],
                pattern=_compile(raw["regex"]),
                keywords=tuple(k.lower() for k in raw.get("keywords", ())),
                group=int(raw.get("secretGroup", 0)),
                entropy=float(raw.get("entropy", 0.0)),
                allowlists=tuple(_allowlist(a) for a in raw.get("allowlists", ())),
            )
        )
    glob = config.get("allowlist")
    return tuple(rules), (_allowlist(glob),) if glob else ()


@functools.cache
def own_rules() -> tuple[Rule, ...]:
    """Our rules, compiled once."""
    return (
        Rule("dockerhub-pat", _compile(r"\b(dckr_(?:pat|oat)_[A-Za-z0-9_-]{20,})"), ("dckr_",)),
        Rule(
            "azure-storage-account-key",
            _compile(r"(?i)\b(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{20,}={0,2})"),
            ("accountkey", "sharedaccesskey"),
        ),
        Rule(
            "curl-user-password",
            _compile(r"""\bcurl\b[^\n]*?\s(?:-u|--user)[ \t]*['"]?[^\s:'"]+:([^\s'"]+)"""),
            ("curl",),
        ),
        Rule(
            "mysql-password-flag",
            _compile(r"\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n]*?\s-p([^\s'\"-][^\s'\"]*)"),
            ("mysql", "mariadb"),
        ),
        Rule(
            "service-account-private-key-id",
            _compile(r'"private_key_id"\s*:\s*"([0-9a-f]{40})"'),
            ("private_key_id",),
        ),
    )


def _secret_span(rule: Rule, m: regex.Match[str]) -> tuple[int, int]:
    if rule.group and rule.group <= len(m.groups()):
        return m.span(rule.group)
    for index in range(1, len(m.groups()) + 1):
        if m.group(index):
            return m.span(index)
    return m.span()


def _line(text: str, start: int, end: int) -> str:
    head = text.rfind("\n", 0, start) + 1
    tail = text.find("\n", end)
    return text[head : len(text) if tail < 0 else tail]


def _replacer(
    rule: Rule, allowlists: Iterable[Allowlist], mark: str
) -> Callable[[regex.Match[str]], str]:
    lists = (*allowlists, *rule.allowlists)

    def replace(m: regex.Match[str]) -> str:
        start, end = _secret_span(rule, m)
        secret = m.string[start:end]
        if not secret or mark in secret:
            return m.group(0)
        if rule.entropy and entropy(secret) <= rule.entropy:
            return m.group(0)
        line = _line(m.string, m.start(), m.end())
        if any(a.allows(secret, m.group(0), line) for a in lists):
            return m.group(0)
        return m.string[m.start() : start] + mark + m.string[end : m.end()]

    return replace


def _back(text: str, at: int) -> int:
    """The start of the word holding position `at` (looking back at most SNAP characters)."""
    floor = max(0, at - SNAP)
    return max(text.rfind(space, floor, at) for space in " \t\n") + 1 or floor


def _forward(text: str, at: int) -> int:
    """The end of the word holding position `at` (looking on at most SNAP characters)."""
    ceiling = min(len(text), at + SNAP)
    ends = [i for i in (text.find(space, at, ceiling) for space in " \t\n") if i >= 0]
    return min(ends) if ends else ceiling


def _windows(text: str, lowered: str, keywords: tuple[str, ...]) -> list[tuple[int, int]]:
    """The stretches of `text` a rule can match in: WINDOW characters either side of each
    keyword, widened to whole words, merged; far faster than scanning all of a long text."""
    spans = []
    for keyword in keywords:
        at = lowered.find(keyword)
        while at >= 0:
            start = _back(text, max(0, at - WINDOW))
            end = _forward(text, min(len(text), at + len(keyword) + WINDOW))
            spans.append((start, end))
            at = lowered.find(keyword, max(end, at + 1))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True)
class _Plan:
    """The rules in the order they apply (own, then gitleaks' with the global allowlists),
    which of them each keyword calls for, and those that run whatever the text holds."""

    rules: tuple[tuple[Rule, tuple[Allowlist, ...]], ...]
    by_keyword: dict[str, tuple[int, ...]]
    always: frozenset[int]


@functools.cache
def _plan() -> _Plan:
    rules, global_lists = gitleaks_rules()
    ordered = (*((r, ()) for r in own_rules()), *((r, global_lists) for r in rules))
    by_keyword: dict[str, list[int]] = {}
    for position, (rule, _) in enumerate(ordered):
        for keyword in dict.fromkeys(rule.keywords):
            by_keyword.setdefault(keyword, []).append(position)
    always = frozenset(i for i, (rule, _) in enumerate(ordered) if not rule.keywords)
    return _Plan(ordered, {k: tuple(v) for k, v in by_keyword.items()}, always)


def redact_providers(text: str, mark: str) -> str:
    """`text` with every provider secret (own rules, then gitleaks') replaced by `mark`. Only
    the rules a keyword of the text calls for are looked at (most texts hold none)."""
    plan = _plan()
    lowered = text.lower()
    present = {k for k in plan.by_keyword if k in lowered}  # replacing never adds a keyword
    due = set(plan.always).union(*(plan.by_keyword[k] for k in present))
    for position in sorted(due):
        rule, lists = plan.rules[position]
        keywords = tuple(k for k in rule.keywords if k in present)
        replace = _replacer(rule, lists, mark)
        windows = _windows(text, lowered, keywords) if keywords else [(0, len(text))]
        changed = False
        for start, end in reversed(windows):
            part = text[start:end]
            done = rule.pattern.sub(replace, part)
            if done != part:
                text, changed = text[:start] + done + text[end:], True
        if changed:
            lowered = text.lower()
    return text
