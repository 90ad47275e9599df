"""mcp-harness: turn an AI coding agent's terminal work into trainable, reusable skill.

Importing the package is cheap on purpose: torch is imported only by the modules that need it
(symbolic tensors with coefficients, training), so the CLI answers fast.
"""

__version__ = "0.1.0"
