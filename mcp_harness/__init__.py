"""mcp-harness: turn an AI coding agent's terminal work into trainable, reusable skill.

Importing the package is cheap on purpose: the Python API (`make_tensor`, the `ft_*` ops,
`StSGD`, `Session`, `need_reflection`, `dispatch_policy`, `TracePolicy`, …, see
`mcp_harness.api`) is imported on first use of one of its names, and torch only by the parts
that need it, so the CLI answers fast.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name.startswith(("ft_", "st_")) or name in _API:
        from mcp_harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'mcp_harness' has no attribute {name!r}")


_API = {
    "DirectoryLoader",
    "Policy",
    "PolicyConflictError",
    "ReflectionRecord",
    "Session",
    "StSGD",
    "TracePolicy",
    "dispatch_policy",
    "from_spec",
    "harness_module",
    "CritiquePolicy",
    "kernel_critic",
    "make_tensor",
    "need_reflection",
    "save_module",
    "to_dense",
    "to_sparse",
    "to_spec",
}
