"""File ops: `ft_read_file` (an element's text from a file) and `st_pack_dir` (a directory as
one text), both confined to the run's working directory or the element's."""

from __future__ import annotations

import os
from pathlib import Path

from mcp_harness.errors import HarnessError
from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run
from mcp_harness.runtime.ops.base import Op, register
from mcp_harness.runtime.status import Status
from mcp_harness.storage.atomic import check_read

MAX_BYTES = 1 << 20


@register
class ReadFile(Op):
    """Per element: the text of the file its input names, relative to the second input's
    directory (default: the run's working directory). A file outside that directory (by `..`,
    an absolute path or a symlink) or, in the server, outside the directories it may use,
    missing, or over `max_bytes` fails the element with the reason; bytes that are not UTF-8
    are replaced, never an error."""

    name = "ft_read_file"
    arity = (1, 2)
    ARGS = {"max_bytes": (int, MAX_BYTES)}

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        name, base = await _where(run, node, coords, trajectory, "")
        if isinstance(base, Element):
            return base
        try:
            text = _read(Path(base), name, self.args["max_bytes"])
        except (OSError, ValueError, HarnessError) as exc:
            return Element(f"cannot read {name!r}: {exc}", Status.failed(0.0), {"path": name})
        return Element(text, Status.confidence(1.0), {"path": name})


async def _where(run: Run, node: FutureTensor, coords: Coords, trajectory: str, default: str):
    """The element's path (its first input, else `default`) and the directory it is under (the
    second input, else the run's workdir); a failed Element instead of the directory when the
    path's input failed or there is no directory."""
    source = await run.get(node.inputs[0], coords, trajectory)
    if not source.status.ok:
        return source.text, Element(source.text, source.status)
    base = run.workdir
    if len(node.inputs) == 2:
        folder = await run.get(node.inputs[1], coords, trajectory)
        base = Path(folder.text.strip()) if folder.text.strip() else base
    name = source.text.strip() or default
    if base is None:
        reason = "no directory to read from: give a second input or run with a workdir"
        return name, Element(reason, Status.failed(0.0), {"path": name})
    return name, Path(base)


def _read(base: Path, name: str, limit: int) -> str:
    """The file's text, refused when it resolves outside `base` or is larger than `limit`."""
    if not name or "\0" in name:
        raise ValueError("no file name given")
    root = base.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"it is outside {root}")
    check_read(path)  # in the server: inside the directories it may use
    with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW)) as handle:
        if os.fstat(handle.fileno()).st_size > limit:
            raise ValueError(f"it is larger than max_bytes={limit}")
        return handle.read(limit + 1)[:limit].decode("utf-8", "replace")


@register
class PackDir(Op):
    """Per element: the directory its input names (relative to the second input's directory,
    default the run's working directory, confined like `ft_read_file`) packed into one text
    (the seed's pack_dir): the sorted file list, then `## File: <path>` and each file's text
    fenced. Hidden entries and symlinks are left out; the text stops at `max_bytes`."""

    name = "st_pack_dir"
    arity = (1, 2)
    ARGS = {"max_bytes": (int, MAX_BYTES)}

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        name, base = await _where(run, node, coords, trajectory, ".")
        if isinstance(base, Element):
            return base
        try:
            text, files = pack_dir(Path(base), name, self.args["max_bytes"])
        except (OSError, ValueError, HarnessError) as exc:
            return Element(f"cannot pack {name!r}: {exc}", Status.failed(0.0), {"path": name})
        return Element(text, Status.confidence(1.0), {"path": name, "files": files})


def pack_dir(base: Path, name: str, limit: int) -> tuple[str, int]:
    """The packed text of directory `name` under `base` and how many files it holds."""
    root = base.resolve()
    folder = (root / name).resolve()
    if not folder.is_relative_to(root):
        raise ValueError(f"it is outside {root}")
    if not folder.is_dir():
        raise ValueError("it is not a directory")
    check_read(folder)
    paths = sorted(
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    sections = ["Files:", *(f"- {p}" for p in paths), ""]
    for relative in paths:
        sections += [f"## File: {relative}", "```", _read(folder, str(relative), limit), "```", ""]
    return "\n".join(sections)[:limit], len(paths)
