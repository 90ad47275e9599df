"""`ft_expert`: retrieve experience rows for each element, then ask the run's kernel."""

from __future__ import annotations

from mcp_harness.errors import HarnessError
from mcp_harness.kernels.base import Example, KernelRequest
from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run
from mcp_harness.runtime.ops.base import Op, register
from mcp_harness.runtime.status import Status
from mcp_harness.storage.textdiff import unified_diff
from mcp_harness.training.symbolic import RowPatch, RowProposal


@register
class Expert(Op):
    """Per element: search the `experience` tensor with the input text (top `topk`, `method`
    jaccard or bm25), then ask the kernel for the output, showing the rows as examples and the
    recurrent trajectory. Output shape = input shape, so experts chain: one decides WHAT, the
    next HOW. A failed input fails the element without a kernel call."""

    name = "ft_expert"
    ARGS = {
        "experience": (str, ...),
        "task": (str, ""),
        "topk": (int, 4),
        "method": (str, "jaccard"),
    }

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
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
        hits = experience.search(source.text, k=self.args["topk"], method=self.args["method"])
        examples = tuple(Example(h.row.key, h.row.value, h.score, h.row.index) for h in hits)
        reply = await run.kernel.complete(
            KernelRequest(self.args["task"], source.text, examples, trajectory)
        )
        status = (
            Status.confidence(reply.confidence) if reply.ok else Status.failed(reply.confidence)
        )
        meta = {"rows": [e.row for e in examples], "scores": [round(e.score, 4) for e in examples]}
        if reply.reason:
            meta["reason"] = reply.reason
        return Element(reply.text.strip() if reply.ok else reply.reason, status, meta)

    async def symbolic_backward(self, run, node, targets, grads):
        """Per targeted element: credit or blame the row that answered, propose a row
        (input -> target), and by inverse retrieval give the upstream expert the key of a stored
        row whose value is the target. When the input failed, its text is an error, not a
        situation: the row is keyed by the input's own target if one is known, else none.
        With an LLM kernel, reflection also patches the retrieved row and, if no stored row
        holds the target, asks what the upstream expert should have said."""
        name = self.args["experience"]
        experience = run.experience[name]
        reflective = run.kernel is not None and getattr(run.kernel, "name", "") != "offline"
        upstream = node.inputs[0]
        for coords, target in targets.items():
            element = run.element(node, coords)
            source = run.element(upstream, coords)
            if element is None or source is None:
                continue
            rows = element.meta.get("rows", [])
            right = element.status.ok and element.text.strip() == target.strip()
            if element.status.ok and rows:
                grads.row_credit[name][rows[0]] += -1.0 if right else 1.0
            if right:
                continue
            where = f"{node.name}@{tuple(coords)}"
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
            key = (
                source.text if source.status.ok else grads.targets[upstream.name].get(tuple(coords))
            )
            if key:
                grads.rows.append(RowProposal(name, key, target, where))
            if reflective and rows and element.status.ok:
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
    reply = await run.kernel.complete(KernelRequest(task, text))
    return reply.text.strip() if reply.ok and reply.text.strip() else None
