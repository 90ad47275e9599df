"""Keys and text as tmux takes them: canonical key names, and literal text cut into pieces a
tmux command can carry."""

from __future__ import annotations

NAMED_KEYS = {
    key.lower(): key
    for key in (
        *("Enter", "Escape", "Tab", "BTab", "Space", "BSpace", "Up", "Down", "Left", "Right"),
        *("Home", "End", "PageUp", "PageDown", "PgUp", "PgDn", "PPage", "NPage"),
        *("Insert", "IC", "Delete", "DC", *(f"F{n}" for n in range(1, 13))),
    )
}
ACCEPT_KEYS = {"enter", "c-m", "c-j"}
VALID_KEYS = (
    "tmux key names: Enter, Escape, Tab, BTab, Space, BSpace, Up, Down, Left, Right, Home, End, "
    "PageUp, PageDown, Insert, Delete, F1-F12, optionally prefixed by C-, M- or S- (C-Left); "
    "C-<char> / M-<char> for one character (C-c, M-x); type text with send_text()"
)


def key_name(name: str) -> str | None:
    """The canonical tmux key name for `name`, or None if it is not one."""
    if not isinstance(name, str):
        return None
    rest, mods = name, ""
    while len(rest) > 2 and rest[1] == "-" and rest[0].upper() in "CMS":
        mod = rest[0].upper()
        if mod in mods:
            return None
        mods += mod
        rest = rest[2:]
    named = NAMED_KEYS.get(rest.lower())
    if named is not None:
        return "".join(f"{mod}-" for mod in mods) + named
    if mods and "S" not in mods and len(rest) == 1 and rest.isprintable() and rest != " ":
        return "".join(f"{mod}-" for mod in mods) + rest
    return None


def escape(arg: str) -> str:
    """tmux treats an argument ending in ';' as a command separator; `\\;` keeps it literal."""
    return arg[:-1] + "\\;" if arg.endswith(";") else arg


def chunks(text: str, limit: int) -> list[str]:
    """Split `text` into pieces of at most `limit` UTF-8 bytes, never inside a character."""
    pieces: list[str] = []
    start, size = 0, 0
    for index, char in enumerate(text):
        width = len(char.encode("utf-8", "surrogateescape"))
        if size + width > limit and index > start:
            pieces.append(text[start:index])
            start, size = index, 0
        size += width
    if start < len(text):
        pieces.append(text[start:])
    return pieces
