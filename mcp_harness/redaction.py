"""Secret redaction for everything the harness writes to disk (command output, transcripts,
experience rows), so credentials that scroll past in a terminal never get persisted."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["REDACTED", "contains_secret", "redact"]

REDACTED = "[REDACTED]"
_ELLIPSIS = "…"  # marks "prefix kept, rest removed" for shaped tokens

# Identifier fragment that may end in a secret keyword (``DB_PASSWORD``, ``x-api-key``, ...).
_KEYWORD = r"(?i:password|passwd|passphrase|pwd|token|secret|api[_-]?key|access[_-]?key|secret[_-]?key)"
_IDENT_START = r"(?<![A-Za-z0-9_.-])"
# Value of an assignment: double-quoted (with escapes), single-quoted, or bare word. A bare
# value that is already ``[REDACTED]`` is skipped so redaction stays idempotent.
_BARE = r"(?!\[REDACTED\])[^\s\"'`&;,<>|(){}\]]+"


def _value(name: str) -> str:
    return (
        rf"(?:\"(?P<{name}_v1>(?:[^\"\\\r\n]|\\.)+)\""
        rf"|'(?P<{name}_v2>[^'\r\n]+)'"
        rf"|[\"']?(?P<{name}_v3>{_BARE}))"
    )


_PEM_HEAD = r"-----BEGIN [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
_PEM_FOOT = r"-----END [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
_AUTH_SCHEME = r"(?i:bearer|basic|token|bot)"

# (name, pattern, kind). kind "value": replace the secret group with REDACTED;
# kind "shape": keep group ``<name>_k`` and replace the rest of the match with "…[REDACTED]".
_RULES: list[tuple[str, str, str]] = [
    (
        "pem",
        rf"(?P<pem_h>{_PEM_HEAD})"
        rf"(?:(?P<pem_b>(?:[^-]|-(?!----))+)(?P<pem_f>{_PEM_FOOT})"
        r"|(?P<pem_u>(?:\r?\n(?:[A-Za-z0-9+/=]+|[A-Za-z-]+: [^\r\n]*)(?=\r?\n|\Z))+))",
        "pem",
    ),
    (
        # scheme://user:password@host -> keep scheme, user and host.
        "url",
        r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\"'<>]*:"
        r"(?P<url_v1>[^\s/?#\"'<>]+)(?=@)",
        "value",
    ),
    (
        "auth",
        r"(?<![A-Za-z0-9_-])(?i:authorization)[\"']?[ \t]*[:=][ \t]*[\"']?"
        rf"(?:{_AUTH_SCHEME}[ \t]+)?"
        rf"(?P<auth_v1>(?!\[REDACTED\])(?!{_AUTH_SCHEME}(?![A-Za-z0-9_-]))[^\s\"'`,;]+)",
        "value",
    ),
    (
        # key=value / key: value / "key": "value" / --key=value
        "assign",
        rf"{_IDENT_START}(?P<assign_k>[A-Za-z0-9_.-]*{_KEYWORD})"
        r"[\"']?(?:[ \t]*(?::=|=>|:(?!:))[ \t]*|[ \t]+=[ \t]*|=)"
        + _value("assign"),
        "value",
    ),
    (
        # --password value (value must not look like another flag)
        "flag",
        rf"{_IDENT_START}--?[A-Za-z0-9_.-]*{_KEYWORD}[ \t]+(?!-)" + _value("flag"),
        "value",
    ),
    ("anthropic", r"(?<![A-Za-z0-9_-])(?P<anthropic_k>sk-ant-)[A-Za-z0-9_-]{8,}", "shape"),
    (
        "openai",
        r"(?<![A-Za-z0-9_-])(?P<openai_k>sk-(?:(?:proj|svcacct|admin)-)?)"
        r"(?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{20,}",
        "shape",
    ),
    ("github", r"(?<![A-Za-z0-9_])(?P<github_k>gh[pousr]_|github_pat_)[A-Za-z0-9_]{20,}", "shape"),
    ("slack", r"(?<![A-Za-z0-9_-])(?P<slack_k>xox[abprs]-)[A-Za-z0-9-]{10,}", "shape"),
    (
        "slackhook",
        r"(?<![A-Za-z0-9_.-])(?P<slackhook_k>hooks\.slack\.com/(?:services|workflows|triggers)/)"
        r"[A-Za-z0-9_/-]+",
        "shape",
    ),
    (
        "jwt",
        r"(?<![A-Za-z0-9_-])(?P<jwt_k>eyJ)[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
        "shape",
    ),
    ("aws", r"(?<![A-Za-z0-9])(?P<aws_k>AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])", "shape"),
]

_PATTERN = re.compile("|".join(f"(?P<{name}>{pat})" for name, pat, _ in _RULES))
_KIND = {name: kind for name, _, kind in _RULES}
_VALUE_GROUPS = {
    name: [g for g in _PATTERN.groupindex if g.startswith(f"{name}_v")]
    for name, _, kind in _RULES
    if kind == "value"
}
_SEPARATORS = ("\r\n", "\n", "\\r\\n", "\\n", " ")


def _pem(m: re.Match[str]) -> str:
    head = m.group("pem_h")
    body = m.group("pem_b")
    if body is None:  # header without footer (truncated output): redact the key lines
        unterminated = m.group("pem_u")
        newline = "\r\n" if unterminated.startswith("\r\n") else "\n"
        return f"{head}{newline}{REDACTED}"
    if not body.strip():
        return m.group(0)
    lead = next((s for s in _SEPARATORS if body.startswith(s)), "")
    trail = next((s for s in _SEPARATORS if body.endswith(s)), "")
    return f"{head}{lead}{REDACTED}{trail}{m.group('pem_f')}"


def _value_sub(m: re.Match[str]) -> str:
    name = m.lastgroup or ""
    group = next(g for g in _VALUE_GROUPS[name] if m.group(g) is not None)
    if name == "assign" and m.group("assign_k") in ("PWD", "OLDPWD"):
        if m.group(group).startswith("/"):  # shell working directory, not a password
            return m.group(0)
    start, end = m.start(), m.end()
    v_start, v_end = m.span(group)
    text = m.string
    return text[start:v_start] + REDACTED + text[v_end:end]


def _shape(m: re.Match[str]) -> str:
    return m.group(f"{m.lastgroup}_k") + _ELLIPSIS + REDACTED


_HANDLERS: dict[str, Callable[[re.Match[str]], str]] = {
    "pem": _pem,
    "value": _value_sub,
    "shape": _shape,
}


def _replace(m: re.Match[str]) -> str:
    return _HANDLERS[_KIND[m.lastgroup or ""]](m)


def redact(text: str) -> str:
    """Return ``text`` with secrets replaced, keeping a recognisable prefix and the line layout."""
    return _PATTERN.sub(_replace, text)


def contains_secret(text: str) -> bool:
    """Return True if :func:`redact` would change ``text``."""
    return any(_replace(m) != m.group(0) for m in _PATTERN.finditer(text))
