"""Tool errors the model can act on: a HarnessError becomes a ToolError with its fix."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from mcp_harness.errors import HarnessError

F = TypeVar("F", bound=Callable[..., Any])


def tool_errors(fn: F) -> F:
    """Wrap a tool so HarnessError reaches the client as `is_error` with message and fix."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except HarnessError as exc:
                raise ToolError(str(exc)) from None

        return wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HarnessError as exc:
            raise ToolError(str(exc)) from None

    return sync_wrapper  # type: ignore[return-value]
