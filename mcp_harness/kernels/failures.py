"""Which kernel failures are worth retrying, and the HarnessError a user sees when they are not.

The runner retries rate limits (429), server errors (5xx, 408, 409, Anthropic's 529) and lost
connections; anything else (400 bad request, 401 bad key, 404 unknown model…) fails at once
with a message naming the kernel, the status and the fix. SDK exceptions are recognised by
duck typing (`status_code`, an `APIConnectionError` base class), so this module imports
neither SDK and works for both.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcp_harness.errors import HarnessError

RETRYABLE_STATUS = frozenset({408, 409, 429})


def status_is_retryable(status: int | None) -> bool:
    return status is not None and (status in RETRYABLE_STATUS or status >= 500)


class KernelCallError(HarnessError):
    """A backend call failed; `retryable` tells the runner whether another attempt may work."""

    def __init__(
        self,
        message: str,
        fix: str | None = None,
        *,
        retryable: bool = False,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, fix)
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Failure:
    retryable: bool
    error: HarnessError
    retry_after_s: float | None = None


def fix_for_status(status: int | None, kernel: str) -> str:
    key = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}.get(kernel, "the key")
    if status in (401, 403):
        return f"check {key} (and the base URL it belongs to), or use --kernel offline"
    if status == 404:
        return "check the model name (MCP_HARNESS_MODEL) and the base URL"
    if status == 429:
        return "the endpoint is rate limiting: lower `concurrency` in [kernel] or try later"
    if status is not None and status >= 500:
        return "the service is failing; try again later or use another kernel"
    return "the endpoint rejected the request: check the model name and `max_tokens`"


def _is_connection_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "APIConnectionError" in names or isinstance(exc, ConnectionError)


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = float(headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    return value if 0 <= value <= 60 else None


def _api_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", "") or exc)


def classify(exc: BaseException, kernel: str, base_url: str | None = None) -> Failure:
    """Turn any exception from `kernel.complete` into a retry decision and a HarnessError."""
    if isinstance(exc, KernelCallError):
        return Failure(exc.retryable, exc, exc.retry_after_s)
    if isinstance(exc, HarnessError):
        return Failure(False, exc)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        message = f"{kernel} kernel: the API answered HTTP {status}: {_api_message(exc)}"
        error = KernelCallError(message, fix_for_status(status, kernel), status=status)
        return Failure(status_is_retryable(status), error, _retry_after(exc))
    if _is_connection_error(exc):
        where = f" {base_url}" if base_url else " the endpoint"
        error = KernelCallError(
            f"{kernel} kernel: cannot reach{where}: {exc}",
            "check the base URL and your network, or use --kernel offline",
        )
        return Failure(True, error)
    error = HarnessError(
        f"{kernel} kernel failed: {type(exc).__name__}: {exc}",
        "this looks like a bug or an incompatible endpoint; rerun with --kernel offline "
        "to continue, and report it",
    )
    return Failure(False, error)
