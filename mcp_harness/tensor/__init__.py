"""Symbolic tensors: text files on disk with a torch coefficient tensor beside them."""

from mcp_harness.tensor.symbolic import SymbolicTensor

__all__ = ["SymbolicTensor"]
