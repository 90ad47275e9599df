"""Replace a directory at once: a staged copy swaps places with the live one.

`swap_in` uses Linux `renameat2(RENAME_EXCHANGE)`, so a reader sees the old directory or the new
one, never neither; where that call is unsupported it falls back to two renames.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
from pathlib import Path

from mcp_harness.storage.atomic import fsync_dir

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def swap_in(staged: Path, final: Path) -> bool:
    """Put directory `staged` at `final`; True if a previous one was replaced (and removed)."""
    if not final.exists():
        try:
            os.rename(staged, final)
            fsync_dir(final.parent)
            return False
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    if exchange(staged, final):
        fsync_dir(final.parent)
        shutil.rmtree(staged, ignore_errors=True)  # now the previous version
        return True
    old = final.with_name(f".{final.name}.old-{os.getpid()}-{id(staged):x}")
    os.rename(final, old)
    try:
        os.rename(staged, final)
    except OSError:
        with contextlib.suppress(OSError):
            os.rename(old, final)
        raise
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return True
