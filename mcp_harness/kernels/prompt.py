"""The one place a KernelRequest becomes prompt text, so every backend asks the same question.

The wording is task-neutral (keyword, translation and gradient tasks ask through it too): the
expert's `task`, the retrieved experience rows as `INPUT: / OUTPUT:` examples (best first, each
with its output adapted to this input's parameters as a hint), the trajectory of earlier failed
attempts, the outputs already tried for this input, the input, and an instruction to reply with
only the output (for a request with `candidates` > 1: then up to that many in all, best first,
each after a `---` line, which `split_candidates` takes apart). The API kernels send
`SYSTEM_PROMPT` as the system message; the claude-code kernel replaces Claude Code's
coding-agent system prompt with it.
"""

from __future__ import annotations

import re

from mcp_harness.kernels.base import Example, KernelReply, KernelRequest, Usage

SYSTEM_PROMPT = (
    "You transform one input into one output, following the task and the examples you are "
    "given. Reply with the output text only: no explanation, no preamble, no surrounding "
    "quotes or markdown."
)

SEPARATOR = "---"
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
    if request.candidates > 1:
        parts.append(
            "Reply with only the OUTPUT for this INPUT, nothing else; if other outputs could "
            f"also be right, you may add up to {request.candidates - 1} of them after it, best "
            f"first, each after a line holding only {SEPARATOR}."
        )
    else:
        parts.append("Reply with only the OUTPUT for this INPUT, nothing else.")
    return "\n\n".join(parts) + "\n"


def split_candidates(
    text: str, request: KernelRequest, truncated: bool = False
) -> tuple[str, tuple[KernelReply, ...]]:
    """A reply to a request for several candidates: the first output and the others as
    alternatives (distinct, at most `request.candidates` in all; a cut-off last one dropped).
    With one candidate asked for, the text is the answer as it is."""
    if request.candidates <= 1:
        return text, ()
    parts = re.split(rf"(?m)^[ \t]*{re.escape(SEPARATOR)}[ \t]*$", text)
    outputs: list[str] = []
    for part in (p.strip() for p in parts):
        if part and part not in outputs:
            outputs.append(part)
    if truncated and len(outputs) > 1:
        outputs.pop()
    if not outputs:
        return text, ()
    outputs = outputs[: request.candidates]
    return outputs[0], tuple(KernelReply(text=t, usage=Usage()) for t in outputs[1:])


def clean_reply(text: str) -> str:
    """Drop a leading `<think>…</think>` block (reasoning models on vLLM / Ollama emit one)."""
    return _THINK.sub("", text, count=1)
