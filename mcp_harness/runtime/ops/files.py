"""`ft_read_file`: an element's text from a file in the run's working directory."""

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
        source = await run.get(node.inputs[0], coords, trajectory)
        if not source.status.ok:
            return Element(source.text, source.status)
        base = run.workdir
        if len(node.inputs) == 2:
            folder = await run.get(node.inputs[1], coords, trajectory)
            base = Path(folder.text.strip()) if folder.text.strip() else base
        name = source.text.strip()
        if base is None:
            reason = "no directory to read from: give a second input or run with a workdir"
            return Element(reason, Status.failed(0.0), {"path": name})
        try:
            text = _read(Path(base), name, self.args["max_bytes"])
        except (OSError, ValueError, HarnessError) as exc:
            return Element(f"cannot read {name!r}: {exc}", Status.failed(0.0), {"path": name})
        return Element(text, Status.confidence(1.0), {"path": name})


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
