"""The default kernel: answer from experience alone, with no network and no randomness.

Each retrieved row is a candidate: its value adapted to the input (its slots filled from the
input's aligned spans, see `experience.slots`), with confidence = how well the row's key fits
the input token by token (`slots.adapt`: aligned Jaccard, lowered for every key word or
parameter the input has no counterpart for) x the row's weight (at most 1). The best candidate
(by fit x weight) that was not already tried (and failed) for this element answers, when its
confidence reaches the threshold; otherwise the reply fails and says how close the best row
came: "no matching experience" beats a confident wrong command. Same request, same reply,
always; it costs nothing.
"""

from __future__ import annotations

from mcp_harness.kernels.base import Example, KernelReply, KernelRequest

DEFAULT_THRESHOLD = 0.2
UNFILLED_FACTOR = 0.5


def confidence(example: Example) -> float:
    """How far the offline kernel trusts a retrieved row for this input, in [0, 1]: how well
    the row's key fits the input token by token when the expert measured it (x the row's
    weight up to 1: credit ranks a row higher, it never makes a poor fit confident), else the
    retrieval score halved for every parameter without a counterpart."""
    if example.fit is not None:
        return min(1.0, max(0.0, example.fit * min(1.0, example.weight)))
    return min(1.0, max(0.0, example.score * UNFILLED_FACTOR ** len(example.unfilled)))


def rank(example: Example) -> float:
    """Candidates are tried best first: by fit x weight (credited rows first), else score."""
    if example.fit is not None:
        return example.fit * example.weight
    return confidence(example)


class OfflineKernel:
    """The most confident untried adapted row value if it reaches `threshold`, else a failure."""

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
        tried = {t.strip() for t in request.tried}
        # sorted() is stable and examples come best first, so ties keep retrieval order.
        ranked = sorted(request.examples, key=rank, reverse=True)
        fresh = [e for e in ranked if e.answer.strip() not in tried]
        if not fresh:
            return KernelReply(
                text="",
                ok=False,
                confidence=0.0,
                reason=f"every retrieved row's answer was already tried and failed "
                f"({len(tried)} tried); add experience for inputs like this or use an LLM kernel",
            )
        best = fresh[0]
        trust = confidence(best)
        if trust >= self.threshold:
            return KernelReply(text=best.answer, ok=True, confidence=trust, row=best.row)
        row = f" (row {best.row})" if best.row is not None else ""
        why = f"best was {best.score:.3f}{row}"
        if best.unfilled:
            why += f", with no counterpart for {', '.join(best.unfilled)}"
        return KernelReply(
            text="",
            ok=False,
            confidence=trust,
            reason=f"no experience row scored ≥ {self.threshold:g}: {why}; add experience for "
            "inputs like this or use an LLM kernel",
        )
