"""LLM kernels: the backends an `ft_expert` element calls, behind one async protocol.

Each kernel is declared once in `registry` (name, config keys, constructor, capabilities).
`make_kernel()` builds the configured kernel (offline by default) wrapped in a `KernelRunner`,
which adds the shared policy: concurrency limit, timeout, retries, accounting and budget.
The SDK-backed kernels import their SDK only when built, so importing this package is cheap.
"""

from mcp_harness.kernels.base import Example, Kernel, KernelReply, KernelRequest, Usage
from mcp_harness.kernels.config import (
    KERNEL_NAMES,
    KernelConfig,
    format_status,
    kernel_status,
    load_config,
    make_kernel,
)
from mcp_harness.kernels.registry import reflects
from mcp_harness.kernels.runner import Budget, BudgetExceeded, KernelRunner

__all__ = [
    "KERNEL_NAMES",
    "Budget",
    "BudgetExceeded",
    "Example",
    "Kernel",
    "KernelConfig",
    "KernelReply",
    "KernelRequest",
    "KernelRunner",
    "Usage",
    "format_status",
    "kernel_status",
    "load_config",
    "make_kernel",
    "reflects",
]
