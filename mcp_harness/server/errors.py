"""What every tool call hands back passes here: a HarnessError becomes a ToolError with its
fix, and every string of a result or an error is redacted (the last gate before a secret
could reach the client)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from mcp_harness.errors import HarnessError
from mcp_harness.redaction import redact

F = TypeVar("F", bound=Callable[..., Any])


def redacted(value: Any) -> Any:
    """`value` with every string in it redacted (models, dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, BaseModel):
        return type(value).model_validate(redacted(value.model_dump()))
    if isinstance(value, dict):
        return {key: redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redacted(item) for item in value)
    return value


def _os_error(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return str(
        HarnessError(
            f"{exc.strerror or exc}{where}",
            "check the names and paths given, their permissions and free space",
        )
    )


def tool_errors(fn: F) -> F:
    """Wrap a tool so HarnessError (and an OSError of the file system) reaches the client as
    `is_error` with message and fix, and results and errors are redacted."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return redacted(await fn(*args, **kwargs))
            except HarnessError as exc:
                raise ToolError(redact(str(exc))) from None
            except OSError as exc:
                raise ToolError(redact(_os_error(exc))) from None

        return wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return redacted(fn(*args, **kwargs))
        except HarnessError as exc:
            raise ToolError(redact(str(exc))) from None
        except OSError as exc:
            raise ToolError(redact(_os_error(exc))) from None

    return sync_wrapper  # type: ignore[return-value]
