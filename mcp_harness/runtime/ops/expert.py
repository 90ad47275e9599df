"""`ft_expert`: retrieve experience rows for each element, then ask the run's kernel.

The kernels and the gradient code are imported by the methods that use them: every op is
imported when the MCP server starts (to list the ft_* tools), and nothing runs there yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_harness.errors import HarnessError
from mcp_harness.experience.slots import adapt, siblings
from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run, Trajectory
from mcp_harness.runtime.ops.base import Op, ShapeError, register
from mcp_harness.runtime.status import Status

if TYPE_CHECKING:
    from mcp_harness.kernels.base import Example


@register
class Expert(Op):
    """Per element: search the `experience` tensor with the input text (top `topk`, `method`
    jaccard or bm25), then ask the kernel for the output, showing the rows as examples and the
    recurrent trajectory. Each row's value comes adapted to the input (its slots filled from
    the input's aligned spans), and inside a loop the kernel is told which answers already
    failed for this input. Output shape = input shape, so experts chain: one decides WHAT, the
    next HOW. A failed input fails the element without a kernel call. With `candidates` > 1
    (speculative multi-action dispatch) the kernel may offer that many answers in one call;
    inside a loop, a later iteration with the same input takes the next untried one without a
    call (meta `speculative`: the iteration whose call offered it), and asks again only once
    they are used up."""

    name = "ft_expert"
    ARGS = {
        "experience": (str, ...),
        "task": (str, ""),
        "topk": (int, 4),
        "method": (str, "jaccard"),
        "candidates": (int, 1),
    }

    def infer_shape(self, shapes, node):
        if self.args["candidates"] < 1:
            raise ShapeError(
                f"node {node!r} ({self.name}): candidates is {self.args['candidates']}",
                "use candidates >= 1",
            )
        return super().infer_shape(shapes, node)

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        from mcp_harness.kernels.base import KernelRequest
        from mcp_harness.kernels.runner import admission

        source = await run.get(node.inputs[0], coords, trajectory)
        if not source.status.ok:
            return Element(source.text, source.status)
        experience = run.experience.get(self.args["experience"])
        if experience is None:
            raise HarnessError(
                f"node {node.name!r}: experience {self.args['experience']!r} is not loaded",
                "declare it in the module's experience section",
            )
        if run.kernel is None:
            raise HarnessError(
                f"node {node.name!r}: no kernel for this run",
                "run with a kernel (the default is offline)",
            )
        tried = _tried(run, node, coords, trajectory, source.text)
        queued = _queued(run, node, coords, trajectory, source.text, tried)
        if queued is not None:
            return queued
        k = max(self.args["topk"], getattr(run.kernel, "reads", 0))
        # Preparing the request (retrieval, adapting each row) is work on the event loop:
        # admitted by the kernel's lookahead, it overlaps the calls in flight (kernels.runner).
        async with admission(run.kernel):
            hits = experience.search(source.text, k=k, method=self.args["method"])
            examples = _examples(hits, source.text)
            request = KernelRequest(
                self.args["task"],
                source.text,
                examples,
                trajectory,
                tried=tried,
                candidates=self.args["candidates"],
            )
            reply = await run.kernel.complete(request)
        status = (
            Status.confidence(reply.confidence) if reply.ok else Status.failed(reply.confidence)
        )
        meta: dict = {
            "rows": [e.row for e in examples],
            "scores": [round(e.score, 4) for e in examples],
        }
        if reply.ok and reply.row is not None:
            meta["answered"] = reply.row
        if tried:
            meta["tried"] = list(tried)
        if reply.reason:
            meta["reason"] = reply.reason
        if reply.ok and self.args["candidates"] > 1:
            meta["queue"] = [
                {"text": a.text.strip(), "confidence": a.confidence, "row": a.row}
                for a in reply.alternatives
                if a.ok
            ]
        return Element(reply.text.strip() if reply.ok else reply.reason, status, meta)

    def parameters(self) -> list[str]:
        return [self.args["experience"]]

    def parameter_grad(self, run, node, grad, name):
        """The row that answered an element scales its status: d status / d weight = status,
        so the row behind a confident element gains weight under a falling loss and the row
        behind a failed one loses it."""
        import torch

        weights = run.parameters[name]
        out = torch.zeros_like(weights)
        for coords in node.coords():
            element = run.element(node, coords)
            row = element.meta.get("answered") if element is not None else None
            if row is not None and row < out.numel():
                out[row] += grad[coords] * element.status.encode()
        return out

    async def symbolic_backward(self, run, node, targets, grads):
        """Per targeted element: credit or blame the row that answered, propose a row
        (input -> target), and by inverse retrieval give the upstream expert the key of a stored
        row whose value is the target. Nothing learns from a wrong input: a row is keyed by the
        input the expert should have seen (the upstream's target when one is known), and the
        answering row is blamed only when the input was right. With an LLM kernel, reflection
        also patches the retrieved row and, if no stored row holds the target, asks what the
        upstream expert should have said."""
        from mcp_harness.kernels.registry import reflects
        from mcp_harness.runtime.gradients import RowPatch, RowProposal
        from mcp_harness.storage.textdiff import unified_diff

        name = self.args["experience"]
        experience = run.experience[name]
        reflective = run.kernel is not None and reflects(getattr(run.kernel, "name", ""))
        upstream = node.inputs[0]
        for coords, target in targets.items():
            element = run.element(node, coords)
            source = run.element(upstream, coords)
            if element is None or source is None:
                continue
            wanted_input = grads.targets.get(upstream.name, {}).get(tuple(coords))
            input_right = source.status.ok and (
                wanted_input is None or wanted_input.strip() == source.text.strip()
            )
            right = element.status.ok and element.text.strip() == target.strip()
            answered = element.meta.get("answered")
            where = f"{node.name}@{tuple(coords)}"
            if answered is not None and input_right:
                grads.credit(name, answered, -1.0 if right else 1.0, where)
            if right:
                continue
            holder = experience.find_value(target)
            if holder is not None and holder.key.strip() != source.text.strip():
                grads.add_target(upstream, coords, holder.key)
            elif reflective and source.status.ok and upstream.op.name == "ft_expert":
                wanted = await _reflect(
                    run,
                    INPUT_REFLECTION,
                    f"WANTED OUTPUT:\n{target}\n\nINPUT THAT WAS GIVEN:\n{source.text}",
                )
                if wanted:
                    grads.add_target(upstream, coords, wanted)
            wanted_input = grads.targets.get(upstream.name, {}).get(tuple(coords))
            key = _row_key(experience, upstream, source, wanted_input, target)
            if key:
                grads.rows.append(RowProposal(name, key, target, where))
            rows = element.meta.get("rows", [])
            if reflective and rows and element.status.ok and input_right:
                row = experience.row(rows[0])
                improved = await _reflect(
                    run,
                    ROW_REFLECTION,
                    (
                        f"EXAMPLE INPUT:\n{row.key}\n\nEXAMPLE OUTPUT:\n{row.value}\n\n"
                        f"Following it, the expert answered {element.text!r} for the input "
                        f"{source.text!r}, but the right answer was {target!r}."
                    ),
                )
                if improved and improved != row.value.strip():
                    grads.patches.append(
                        RowPatch(name, rows[0], unified_diff(row.value, improved), where)
                    )


def _examples(hits, text: str) -> tuple[Example, ...]:
    """The retrieved rows as the kernel sees them, each value adapted to `text` with its slots
    as its siblings among the hits tell them (`slots.siblings`)."""
    found = [h.row.provenance.get("slots") for h in hits]
    slots = siblings(
        [(h.row.value, s if isinstance(s, list) else []) for h, s in zip(hits, found, strict=True)]
    )
    return tuple(_example(hit, text, s) for hit, s in zip(hits, slots, strict=True))


def _example(hit, text: str, slots: list) -> Example:
    """A retrieved row as the kernel sees it, its value adapted to `text`."""
    from mcp_harness.kernels.base import Example

    adaptation = adapt(hit.row.key, hit.row.value, slots, text)
    return Example(
        hit.row.key,
        hit.row.value,
        hit.score,
        hit.row.index,
        adapted=adaptation.text,
        unfilled=tuple(adaptation.unfilled),
        fit=adaptation.fit,
        weight=hit.row.weight,
        rescue=adaptation.rescue,
        contradicted=adaptation.contradicted,
        kinship=adaptation.kinship,
        near_miss=adaptation.near_miss,
        fills=tuple((k, v) for k, v in adaptation.fills.items() if k.lower() != v.lower()),
    )


def _tried(run: Run, node: FutureTensor, coords: Coords, trajectory: str, text: str):
    """What this element answered for the same input in the loop's earlier iterations."""
    if not isinstance(trajectory, Trajectory):
        return ()
    tried: list[str] = []
    for earlier in trajectory.earlier(coords):
        answer, given = run.element(node, earlier), run.element(node.inputs[0], earlier)
        if answer is None or given is None or not answer.status.ok:
            continue
        if given.text.strip() == text.strip() and answer.text not in tried:
            tried.append(answer.text)
    return tuple(tried)


def _queued(
    run: Run,
    node: FutureTensor,
    coords: Coords,
    trajectory: str,
    text: str,
    tried: tuple[str, ...],
) -> Element | None:
    """The next untried candidate an earlier call offered for the same input in this loop (the
    latest earlier element with that input holds what is left of the queue), or None."""
    if not isinstance(trajectory, Trajectory):
        return None
    for earlier in reversed(trajectory.earlier(coords)):
        answer, given = run.element(node, earlier), run.element(node.inputs[0], earlier)
        if answer is None or given is None or given.text.strip() != text.strip():
            continue
        queue = [c for c in answer.meta.get("queue", ()) if c["text"] not in tried]
        if not queue:
            return None
        first, rest = queue[0], queue[1:]
        meta = {k: answer.meta[k] for k in ("rows", "scores") if k in answer.meta}
        if first["row"] is not None:
            meta["answered"] = first["row"]
        meta.update(
            tried=list(tried),
            queue=rest,
            speculative=answer.meta.get("speculative", earlier[-1]),
        )
        return Element(first["text"], Status.confidence(first["confidence"]), meta)
    return None


def _row_key(experience, upstream: FutureTensor, source: Element, wanted: str | None, target):
    """The input a new row is keyed by: the upstream's target when known; else the input as
    given when nothing trainable produced it (it is the world, not a decision) or when no
    stored row already answers that input differently; else none (it may be a wrong decision,
    and a row under it would teach the wrong situation)."""
    from mcp_harness.runtime.gradients import trainable

    if wanted is not None:
        return wanted
    if not source.status.ok:
        return None
    if not trainable(upstream):
        return source.text
    given = source.text.strip()
    clash = any(
        h.row.key.strip() == given and h.row.value.strip() != target.strip()
        for h in experience.search(source.text, k=8)
    )
    return None if clash else source.text


ROW_REFLECTION = (
    "You improve an example in an expert's experience. Rewrite the EXAMPLE OUTPUT so that an "
    "expert following this example would give the right answer described below, while staying "
    "right for the example's own input. Reply with the rewritten example output only."
)
INPUT_REFLECTION = (
    "An expert turns an input into an output. Say what input it should have been given to "
    "produce the WANTED OUTPUT, in the same style as the INPUT THAT WAS GIVEN. Reply with that "
    "input only."
)


async def _reflect(run: Run, task: str, text: str) -> str | None:
    """One reflection call to the run's kernel; None when it has no confident answer."""
    from mcp_harness.kernels.base import KernelRequest

    reply = await run.kernel.complete(KernelRequest(task, text))
    return reply.text.strip() if reply.ok and reply.text.strip() else None
