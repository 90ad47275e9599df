"""The default kernel: answer from experience alone, with no network and no randomness.

It returns the value of the best-scoring retrieved row when that score reaches the threshold
(confidence = the score, capped at 1), and otherwise a failed reply whose reason says how close
the best row came. Same request, same reply, always; it costs nothing.
"""

from __future__ import annotations

from mcp_harness.kernels.base import KernelReply, KernelRequest

DEFAULT_THRESHOLD = 0.2


class OfflineKernel:
    """Best retrieved row's value if its score >= `threshold`, else a failed reply."""

    name = "offline"
    model: str | None = None
    billable = False

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not threshold >= 0:  # also rejects NaN
            raise ValueError(f"threshold must be >= 0, got {threshold}")
        self.threshold = threshold

    async def complete(self, request: KernelRequest) -> KernelReply:
        return self.answer(request)

    def answer(self, request: KernelRequest) -> KernelReply:
        """The synchronous core (the kernel does no I/O)."""
        if not request.examples:
            return KernelReply(
                text="",
                ok=False,
                confidence=0.0,
                reason=f"no experience row retrieved (offline kernel needs a row scoring "
                f"≥ {self.threshold:g})",
            )
        # Examples come best first; max() keeps the first of equal scores, so ties are stable.
        best = max(request.examples, key=lambda e: e.score)
        confidence = min(1.0, max(0.0, best.score))
        if best.score >= self.threshold:
            return KernelReply(text=best.value, ok=True, confidence=confidence)
        row = f" (row {best.row})" if best.row is not None else ""
        return KernelReply(
            text="",
            ok=False,
            confidence=confidence,
            reason=f"no experience row scored ≥ {self.threshold:g}: best was "
            f"{best.score:.3f}{row}; add experience for inputs like this or use an LLM kernel",
        )
