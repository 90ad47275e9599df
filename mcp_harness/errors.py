"""The one error type users see: a message naming the input and the fix, never a traceback."""


class HarnessError(Exception):
    """A problem with the user's input or stored data, reported as `message` (+ `fix`)."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message


class CorruptTensorError(HarnessError):
    """A tensor directory on disk does not follow the layout rules."""


def broken_install(missing: str) -> HarnessError:
    """A file that ships with the package is not there: the install itself is incomplete."""
    return HarnessError(
        f"broken mcp-harness install: {missing} is missing",
        "reinstall it: pip install --force-reinstall --no-deps mcp-harness "
        "(in a checkout: pip install --force-reinstall --no-deps .)",
    )
