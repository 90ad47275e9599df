"""`ft_expert`: retrieve experience rows for each element, then ask the run's kernel."""

from __future__ import annotations

from mcp_harness.errors import HarnessError
from mcp_harness.kernels.base import Example, KernelRequest
from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run
from mcp_harness.runtime.ops.base import Op, register
from mcp_harness.runtime.status import Status
from mcp_harness.training.symbolic import RowProposal


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

    def symbolic_backward(self, run, node, targets, grads):
        """Per targeted element: credit or blame the row that answered, propose a row
        (input -> target), and by inverse retrieval give the upstream expert the key of a stored
        row whose value is the target. An element whose input failed proposes no row (its input
        text is an error, not a situation) but still passes the upstream target."""
        name = self.args["experience"]
        experience = run.experience[name]
        for coords, target in targets.items():
            element = run.element(node, coords)
            source = run.element(node.inputs[0], coords)
            if element is None or source is None:
                continue
            rows = element.meta.get("rows", [])
            right = element.status.ok and element.text.strip() == target.strip()
            if element.status.ok and rows:
                grads.row_credit[name][rows[0]] += -1.0 if right else 1.0
            if right:
                continue
            holder = experience.find_value(target)
            if holder is not None and holder.key.strip() != source.text.strip():
                grads.add_target(node.inputs[0], coords, holder.key)
            key = (
                source.text
                if source.status.ok
                else grads.targets[node.inputs[0].name].get(tuple(coords))
            )
            if key:
                grads.rows.append(RowProposal(name, key, target, f"{node.name}@{coords}"))
