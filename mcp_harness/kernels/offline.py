"""The default kernel: answer from experience alone, with no network and no randomness.

Each retrieved row is a candidate: its value adapted to the input (its slots filled from the
input's aligned spans, see `experience.slots`), with confidence = how well the row's key fits
the input token by token (`slots.adapt`: aligned Jaccard, lowered for every key word or
parameter the input has no counterpart for) x the row's weight (at most 1). When the input
rewords a key (few shared words, no veto: see `fit.Fit.rescue`) and the sentence model is
installed (`kernels.sentences`), meaning speaks too: the cosine of the input and the mean of
the key and value sentences of every row giving the row's answer (a decision row's value says
its operation plainly; rows taught in other words say it together), with their parameters
said as their kind (`slots.operation`), scaled by how far it beats every other answer (but
rows of its operation outvoted on how to fill the input's parameters), so
"Set up the folder tree x/y/z" can use the row learned from "Make directories a/b/c, including
missing parents" (never a row with a parameter the input gives nothing for: its answer would
act on the row's own file). When the input is a row's sentence saying another thing (a near miss,
`fit.Fit.near_miss`: "the last line of x" for "the first line of a"), only rows closer to
the input's sentence, or giving that row's answer, may answer: no row was taught that
operation (once that row's answer was tried and failed, the retries explore the rest). The
best candidate that was not already tried (and failed) for this element answers, when its
confidence reaches the threshold; otherwise the reply fails and
says how close the best row came: "no matching experience" beats a confident wrong command.
Same request, same reply, always; it costs nothing.
"""

from __future__ import annotations

from mcp_harness.experience.slots import operation
from mcp_harness.experience.tokens import is_identifier
from mcp_harness.kernels import sentences
from mcp_harness.kernels.base import Example, KernelReply, KernelRequest, successive

DEFAULT_THRESHOLD = 0.2
UNFILLED_FACTOR = 0.5
# Meaning: a reworded key counts when its sentence is at least MEANING_FLOOR alike and beats
# every row with another answer (or an unrelated request's typical MEANING_BASE: parameters
# said as their kind make unrelated requests look more alike) by MARGIN.
MEANING_FLOOR, MEANING_BASE, MARGIN = 0.5, 0.45, 0.1


def meaning(request: KernelRequest) -> list[float]:
    """Per example, the confidence that meaning alone gives it (0 without the sentence model,
    or where the example's words veto it or its words already decide)."""
    encoder = sentences.encoder()
    if encoder is None or not any(e.rescue > 0 for e in request.examples):
        return [0.0] * len(request.examples)
    said, sides = [], []
    for e in request.examples:
        # The words the row's slots were filled with are parameters too ("oldLogger" in place
        # of "getUser"): said as their kind on both sides (a judge of meaning reads names in
        # code as noise), they do not hide the operation.
        named = [(k, v) for k, v in e.fills if is_identifier(k) and is_identifier(v)]
        said.append(encoder.embed(operation(request.input, frozenset(v.lower() for _, v in named))))
        slots = frozenset(k.lower() for k, _ in named)
        sides.append(
            [encoder.embed(operation(e.key, slots)), encoder.embed(operation(e.value, slots))]
        )
    alike = [max(float(q @ side) for side in both) for q, both in zip(said, sides, strict=True)]
    # An answer is as alike the input as the mean of the sentences of every row that gives
    # it: rows taught in other words say what their operation is more surely together than
    # the nearest of them alone, and a stray likeness to one sentence counts less.
    groups: dict[str, list[int]] = {}
    for i, example in enumerate(request.examples):
        groups.setdefault(example.answer, []).append(i)
    answer_alike = {}
    for answer, members in groups.items():
        centre = sum(v for i in members for v in sides[i]) / (2 * len(members))
        first = said[members[0]]
        answer_alike[answer] = float(first @ centre) / max(float(centre.norm()), 1e-12)
    # Rows of one operation (values alike but for their parameters) that fill the input's
    # parameters differently ("into b" read as the source by one of them) are not rivals of
    # the fill more of them give; on a tie nobody knows which fill is right, and they are.
    ops = [operation(e.value) for e in request.examples]
    votes: dict[tuple[str, str], int] = {}
    for e, o in zip(request.examples, ops, strict=True):
        votes[o, e.answer] = votes.get((o, e.answer), 0) + 1
    majority = [
        all(votes[o, e.answer] > n for (p, a), n in votes.items() if p == o and a != e.answer)
        for e, o in zip(request.examples, ops, strict=True)
    ]
    # An answer speaks through the row most like the input that gives it: when the input says
    # that row's sentence turned around ("from LF to CRLF" for "from CRLF to LF"), a less
    # alike row giving the same answer ("strip the carriage returns") may not stand in.
    closest: dict[str, int] = {}
    for i, example in enumerate(request.examples):
        at = closest.setdefault(example.answer, i)
        if alike[i] > alike[at]:
            closest[example.answer] = i
    out = []
    for i, example in enumerate(request.examples):
        speaker = request.examples[closest[example.answer]]
        # A parameter the input gives nothing for would stay the row's own in the answer
        # ("VERSION" for a request about lib_version.txt): a command on the wrong thing.
        if (
            example.rescue <= 0
            or example.unfilled
            or speaker.contradicted
            or answer_alike[example.answer] < MEANING_FLOOR
        ):
            out.append(0.0)
            continue
        mine = answer_alike[example.answer]
        rival = max(
            [MEANING_BASE]
            + [
                answer_alike[e.answer]
                for e, o in zip(request.examples, ops, strict=True)
                if e.answer != example.answer and (o != ops[i] or not majority[i])
            ]
        )
        out.append(example.rescue * mine * min(1.0, max(0.0, mine - rival) / MARGIN))
    return out


def confidence(example: Example) -> float:
    """How far the offline kernel trusts a retrieved row for this input, in [0, 1]: how well
    the row's key fits the input token by token when the expert measured it (x the row's
    weight up to 1: credit ranks a row higher, it never makes a poor fit confident), else the
    retrieval score halved for every parameter without a counterpart."""
    if example.fit is not None:
        return min(1.0, max(0.0, example.fit * min(1.0, example.weight)))
    return min(1.0, max(0.0, example.score * UNFILLED_FACTOR ** len(example.unfilled)))


def rank(example: Example, by_meaning: float = 0.0) -> tuple[float, float]:
    """Candidates are tried best first: by trust (fit x weight up to 1, or meaning), then by
    weight, so credit orders rows that fit alike and never lifts a poorer fit above a better."""
    return max(confidence(example), by_meaning), example.weight


class OfflineKernel:
    """The most confident untried adapted row value if it reaches `threshold`, else a failure.
    It reads `reads` rows per question whatever an expert's `topk` (it judges each row itself,
    and the rows a reworded input needs, and their rivals, often rank below the first few)."""

    name = "offline"
    model: str | None = None
    billable = False
    reads = 16

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not threshold >= 0:  # also rejects NaN
            raise ValueError(f"threshold must be >= 0, got {threshold}")
        self.threshold = threshold

    async def complete(self, request: KernelRequest) -> KernelReply:
        """The answer, plus the next ones it would give were each tried and failed, up to
        `request.candidates` (speculative dispatch: one call, several candidates)."""
        return successive(self.answer, request)

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
        by_meaning = dict(zip(map(id, request.examples), meaning(request), strict=True))

        def trust(example: Example) -> float:
            return max(confidence(example), by_meaning[id(example)])

        # sorted() is stable and examples come best first, so ties keep retrieval order.
        ranked = sorted(request.examples, key=lambda e: rank(e, by_meaning[id(e)]), reverse=True)
        fresh = [e for e in ranked if e.answer.strip() not in tried]
        if not fresh:
            return KernelReply(
                text="",
                ok=False,
                confidence=0.0,
                reason=f"every retrieved row's answer was already tried and failed "
                f"({len(tried)} tried); add experience for inputs like this or use an LLM kernel",
            )
        # A near miss (the input is a row's sentence saying another thing: "the last line"
        # for "the first line") asks for an operation no row here was taught; a row no closer
        # to the input's sentence than that one would be a confident guess. Once that row's
        # own answer was tried and failed, the retries explore the rest.
        near = max((e for e in ranked if e.near_miss), key=lambda e: e.kinship, default=None)
        if near is not None and near.answer.strip() in tried:
            near = None
        if near is not None:  # the near miss itself stays (its answer was not tried)
            fresh = [e for e in fresh if e.kinship > near.kinship or e.answer == near.answer]
        best = fresh[0]
        sure = trust(best)
        if sure >= self.threshold:
            return KernelReply(text=best.answer, ok=True, confidence=sure, row=best.row)
        row = f" (row {best.row})" if best.row is not None else ""
        why = f"best fit {sure:.3f}{row}, retrieval score {best.score:.3f}"
        if best.unfilled:
            why += f", with no counterpart for {', '.join(best.unfilled)}"
        if near is not None:
            at = f"row {near.row}" if near.row is not None else "a retrieved row"
            why += f"; the input is {at}'s sentence saying another thing (a near miss)"
        return KernelReply(
            text="",
            ok=False,
            confidence=sure,
            reason=f"no experience row scored ≥ {self.threshold:g}: {why}; add experience for "
            "inputs like this or use an LLM kernel",
        )
