"""The one place a KernelRequest becomes prompt text, so every backend asks the same question.

The wording is task-neutral (keyword, translation and gradient tasks ask through it too): the
expert's `task`, the retrieved experience rows as `INPUT: / OUTPUT:` examples (best first, each
with its output adapted to this input's parameters as a hint), the trajectory of earlier failed
attempts, the outputs already tried for this input, the input, and an instruction to reply with
only the output. The API kernels send `SYSTEM_PROMPT` as the system message; the claude-code kernel
replaces Claude Code's coding-agent system prompt with it.
"""

from __future__ import annotations

import re

from mcp_harness.kernels.base import Example, KernelRequest

SYSTEM_PROMPT = (
    "You transform one input into one output, following the task and the examples you are "
    "given. Reply with the output text only: no explanation, no preamble, no surrounding "
    "quotes or markdown."
)

_THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)


def _block(label: str, text: str) -> str:
    return f"{label}:\n{text}"


def _example(example: Example) -> str:
    shown = f"{_block('INPUT', example.key)}\n{_block('OUTPUT', example.value)}"
    if example.adapted is not None and example.adapted.strip() != example.value.strip():
        shown += "\n" + _block("THE SAME OUTPUT WITH THIS INPUT'S PARAMETERS", example.adapted)
    return shown


def render_prompt(request: KernelRequest) -> str:
    """The user-message text for `request` (deterministic: same request, same bytes)."""
    parts: list[str] = []
    task = request.task.strip()
    parts.append(f"TASK:\n{task}" if task else "TASK:\nProduce the output for the input.")
    if request.examples:
        shown = [_example(e) for e in request.examples]
        parts.append(
            "EXAMPLES (most similar first):\n\n" + "\n\n".join(shown),
        )
    trajectory = request.trajectory.strip()
    if trajectory:
        parts.append("EARLIER ATTEMPTS (they failed; do not repeat their mistakes):\n" + trajectory)
    if request.tried:
        parts.append(
            "ALREADY TRIED FOR THIS INPUT (each failed; answer something else):\n"
            + "\n".join(f"- {t}" for t in request.tried)
        )
    parts.append(_block("INPUT", request.input))
    parts.append("Reply with only the OUTPUT for this INPUT, nothing else.")
    return "\n\n".join(parts) + "\n"


def clean_reply(text: str) -> str:
    """Drop a leading `<think>…</think>` block (reasoning models on vLLM / Ollama emit one)."""
    return _THINK.sub("", text, count=1)
