"""Secret redaction for everything the harness writes to disk or returns to a client (command
output, transcripts, experience rows, tool results), so credentials that scroll past in a
terminal are never persisted or passed on.

The patterns are compiled on the first redaction (`_passes`), not at import: the server
imports this module at start and redacts nothing before its first answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from mcp_harness.secret_rules import redact_providers

__all__ = ["REDACTED", "contains_secret", "redact"]

REDACTED = "[REDACTED]"
_CUT = "…"  # marks "recognisable prefix kept, rest removed"

# Performance note: every pattern starts with a literal or a character class (lookbehinds come
# after the first characters) so `re` can use its fast prefix scan; a handful of such passes is
# several times faster on 10 MB than one big alternation. Passes run broadest-first, so a value
# swallowed by an assignment is never half-redacted by a later token pass.

_KEYWORD = (
    r"(?i:password|passwd|passphrase|pwd|token|secret|api[_-]?key|access[_-]?key|secret[_-]?key)"
)
_QUOTE = r"(?:\\?[\"'])"  # a quote, possibly JSON-escaped
# Assignment value: "double", 'single', \"escaped\", [bracketed] or a bare word (optionally
# after an unclosed quote). `[REDACTED]` is skipped so the function is idempotent.
_VALUE = (
    r"(?!\[REDACTED\])(?!-----)(?:"
    r"\"(?P<v1>(?:[^\"\\\r\n]|\\.)+)\""
    r"|'(?P<v2>[^'\r\n]+)'"
    r"|\\\"(?P<v3>(?:[^\"\\\r\n]|\\[^\"\r\n])+)\\\""
    r"|(?P<v4>\[[^\s\[\]]+\])"
    rf"|{_QUOTE}?(?P<v5>(?:[^\s\"'`\\&;,<>|(){{}}\]]|\\[^\s\"'nrt])+))"
)
# `key=v`, `key = v`, `key: v`, `key := v`, `"key":"v"`; `key= v` (empty) and `user:pw` in URLs
# are not assignments.
_SEP = (
    rf"(?:{_QUOTE}[ \t]*(?::=|=>|:(?!:)|=)[ \t]*"
    r"|[ \t]*(?::=|=>)[ \t]*|[ \t]*:[ \t]+|[ \t]+=[ \t]*|=)"
)
_SCHEME = r"(?i:bearer|basic|token|bot)"
_PEM_KIND = r"[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"

_PEM = (
    rf"(?P<head>-----BEGIN {_PEM_KIND})"
    rf"(?:(?P<body>(?:[^-]|-(?!----))+)(?P<foot>-----END {_PEM_KIND})"
    # header without footer (truncated output): the base64 / "Proc-Type:" lines that follow
    r"|(?P<open>(?:\r?\n(?:[A-Za-z0-9+/=]+|[A-Za-z-]+: [^\r\n]*)(?=\r?\n|\Z))+))"
)
# --password value / -token value (never `-p`; `--password-file` etc. do not end in a keyword)
_FLAG = rf"-(?<![A-Za-z0-9_.-]-)[A-Za-z0-9_.-]*{_KEYWORD}[ \t]+(?!-){_VALUE}"
# Authorization headers and key=value / key: value / "key": "value" (DB_PASSWORD=, apiKey:...)
_ASSIGN = (
    r"[PpTtSsAa](?:"
    rf"(?<=[Aa])(?i:uthorization){_QUOTE}?[ \t]*[:=][ \t]*{_QUOTE}?(?:{_SCHEME}[ \t]+)?"
    rf"(?P<v>(?!\[REDACTED\])(?!{_SCHEME}(?![A-Za-z0-9_-]))[^\s\"'`,;\\]+)"
    r"|(?P<kw>(?<=[Pp])(?i:ass(?:word|wd|phrase)|wd)|(?<=[Tt])(?i:oken)"
    r"|(?<=[Ss])(?i:ecret(?:[_-]?key)?)|(?<=[Aa])(?i:(?:pi|ccess)[_-]?key))"
    rf"{_SEP}{_VALUE})"
)
# scheme://user:password@host -> only the password goes
_URL = r"://(?<=[A-Za-z0-9+.-]://)[^\s:/@?#\"'<>\\]*:(?P<v>[^\s/?#\"'<>\\]+)(?=@)"
_SHAPED = (
    (
        r"(?P<k>sk-(?<![A-Za-z0-9_-]sk-)(?:ant-(?=[A-Za-z0-9_-]{8})"
        r"|(?:(?:proj|svcacct|admin)-)?(?=[A-Za-z_-]*[0-9])(?=[A-Za-z0-9_-]{20})))"
        r"[A-Za-z0-9_-]+"
    ),
    r"(?P<k>g(?<![A-Za-z0-9_]g)(?:h[pousr]_|ithub_pat_))[A-Za-z0-9_]{20,}",
    r"(?P<k>xox(?<![A-Za-z0-9_-]xox)[abprs]-)[A-Za-z0-9-]{10,}",
    r"(?P<k>hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9_/-]+",
    (r"(?P<k>eyJ)(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    r"(?P<k>A(?<![A-Za-z0-9]A)(?:KIA|SIA))[A-Z0-9]{16}(?![A-Za-z0-9])",
)

_SEPARATORS = ("\r\n", "\n", "\\r\\n", "\\n", " ")
_IDENT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def _pem(m: re.Match[str]) -> str:
    head, body = m.group("head"), m.group("body")
    if body is None:
        newline = "\r\n" if m.group("open").startswith("\r\n") else "\n"
        return f"{head}{newline}{REDACTED}"
    if not body.strip():
        return m.group(0)
    lead = next((s for s in _SEPARATORS if body.startswith(s)), "")
    trail = next((s for s in _SEPARATORS if body.endswith(s)), "")
    return f"{head}{lead}{REDACTED}{trail}{m.group('foot')}"


def _is_shell_pwd(m: re.Match[str], value: str) -> bool:
    """`PWD=/path` / `OLDPWD=/path` from `env` output is a directory, not a password."""
    start, text = m.start(), m.string
    if not value.startswith("/") or text[start : m.end("kw")] != "PWD":
        return False
    if start >= 3 and text[start - 3 : start] == "OLD":
        start -= 3
    return start == 0 or text[start - 1] not in _IDENT


def _value(m: re.Match[str]) -> str:
    group = m.lastgroup or "v"  # the value group always closes last
    if "kw" in m.re.groupindex and m.group("kw") and _is_shell_pwd(m, m.group(group)):
        return m.group(0)
    text, (v_start, v_end) = m.string, m.span(group)
    return text[m.start() : v_start] + REDACTED + text[v_end : m.end()]


def _shape(m: re.Match[str]) -> str:
    return m.group("k") + _CUT + REDACTED


@functools.cache
def _passes() -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
    """Each pattern compiled, with what replaces its matches (`_value` knows `_ASSIGN`'s by
    its `kw` group, which no other pattern has)."""
    texts = [(_PEM, _pem), (_FLAG, _value), (_ASSIGN, _value), (_URL, _value)]
    texts += [(pattern, _shape) for pattern in _SHAPED]
    return [(re.compile(text), handler) for text, handler in texts]


def redact(text: str) -> str:
    """Return ``text`` with secrets replaced, keeping a recognisable prefix and the line layout:
    the passes above, then the provider rules of `secret_rules` (gitleaks' and our own)."""
    for pattern, handler in _passes():
        text = pattern.sub(handler, text)
    return redact_providers(text, REDACTED)


def contains_secret(text: str) -> bool:
    """Return True if :func:`redact` would change ``text``."""
    return redact(text) != text
