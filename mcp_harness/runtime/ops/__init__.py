"""Registered ops. Importing this package registers all of them in `base.OPS`."""

from mcp_harness.runtime.ops import (
    control,
    expert,
    files,
    shape,
    symbolic,
    terminal,
    text,
    validators,
)
from mcp_harness.runtime.ops.base import OPS, Op, ShapeError, register

__all__ = [
    "OPS",
    "Op",
    "ShapeError",
    "control",
    "expert",
    "files",
    "register",
    "shape",
    "symbolic",
    "terminal",
    "text",
    "validators",
]
