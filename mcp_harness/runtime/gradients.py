"""Symbolic gradients: what each element's text should have been, and the experience changes
that would make it so — the text channel beside torch's numeric one.

`backward(run, graph, targets)` walks the graph from outputs to inputs. A target is the text an
element should have produced; each op's `symbolic_backward` turns its targets into targets for
the inputs it read (a switch: the branch that ran; a loop: the winning iteration; shape ops:
the source coordinates) and, for experts, into experience changes:

- a new row (this input -> the target), so the same or a similar input retrieves it next time;
- inverse retrieval: if a stored row already has the target as its value, the upstream expert
  is given that row's key as its own target — the input that would have retrieved it — so
  chained experts both learn;
- numeric row credit: the row that answered right gets -1 (its weight goes up), the row that
  answered wrong +1;
- with an LLM kernel, reflection: the kernel rewrites the retrieved row's value so it would
  have taught the target (a unified diff, applied by the optimizer only if it still applies),
  and, when no stored row holds the target, says what the upstream expert should have said.
  At most two kernel calls per wrong element.
Diffs are always unified diffs from the output to the target (`Gradients.diffs`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp_harness.errors import HarnessError
from mcp_harness.runtime.reflection import adispatch
from mcp_harness.storage.textdiff import unified_diff

if TYPE_CHECKING:
    from mcp_harness.runtime.future import Coords, FutureTensor, Run
    from mcp_harness.runtime.graph import Graph


@dataclass(frozen=True)
class RowProposal:
    """A row an expert's backward proposes for its experience."""

    experience: str
    key: str
    value: str
    element: str  # node@coords that asked for it, for the step log

    def __str__(self) -> str:
        return f"{self.experience} += [{self.key[:60]!r} -> {self.value[:60]!r}] ({self.element})"


@dataclass(frozen=True)
class RowPatch:
    """A unified diff an LLM's reflection proposes for a retrieved row's value."""

    experience: str
    row: int
    diff: str
    element: str

    def __str__(self) -> str:
        return f"{self.experience}[{self.row}] value patch ({self.element})"


@dataclass
class Gradients:
    targets: dict[str, dict[Coords, str]] = field(default_factory=lambda: defaultdict(dict))
    rows: list[RowProposal] = field(default_factory=list)
    patches: list[RowPatch] = field(default_factory=list)
    # (experience, row, credit, element): who gave each credit, so a step can be split by example.
    credits: list[tuple[str, int, float, str]] = field(default_factory=list)

    def credit(self, experience: str, row: int, amount: float, element: str = "") -> None:
        """Credit (< 0: it answered right) or blame (> 0) a row for what `element` did."""
        self.credits.append((experience, row, amount, element))

    @property
    def row_credit(self) -> dict[str, dict[int, float]]:
        """Each row's summed credit, per experience."""
        return summed(self.credits)

    def add_target(self, node: FutureTensor, coords: Coords, text: str) -> None:
        """First target wins: an explicit (dataset) target is never overwritten."""
        self.targets[node.name].setdefault(tuple(coords), text)

    def diffs(self, run: Run, graph: Graph) -> dict[str, dict[Coords, str]]:
        """Per node and element, the unified diff from what it produced to its target."""
        out: dict[str, dict[Coords, str]] = {}
        for name, targets in self.targets.items():
            node = graph.nodes[name]
            for coords, target in targets.items():
                element = run.element(node, coords)
                diff = unified_diff(element.text if element else "", target)
                if diff:
                    out.setdefault(name, {})[coords] = diff
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "targets": {name: len(t) for name, t in self.targets.items()},
            "new_rows": [str(p) for p in self.rows],
            "row_patches": [str(p) for p in self.patches],
            "row_credit": {name: dict(c) for name, c in self.row_credit.items()},
        }


CREDIT_BOUND = 1.0


def summed(credits: list[tuple[str, int, float, str]]) -> dict[str, dict[int, float]]:
    """Credits summed per experience and row, each sum within +-`CREDIT_BOUND` (an
    experience without any reads as empty): a row that answered the same wrong thing at every
    step of a loop made one mistake, and one step moves its weight by at most the learning
    rate."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for experience, row, amount, _ in credits:
        out[experience][row] = out[experience].get(row, 0.0) + amount
    for rows in out.values():
        for row, total in rows.items():
            rows[row] = max(-CREDIT_BOUND, min(CREDIT_BOUND, total))
    return out


def trainable(node: FutureTensor) -> bool:
    """Whether an ft_expert (the only op with trainable experience) is at or above `node`."""
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if current.op.name == "ft_expert":
            return True
        if current.name not in seen:
            seen.add(current.name)
            stack.extend(current.inputs)
    return False


async def backward(run: Run, graph: Graph, targets: dict[str, dict[Coords, str]]) -> Gradients:
    """Propagate target texts from the named nodes back through the graph."""
    grads = Gradients()
    for name, per_element in targets.items():
        node = graph.nodes.get(name)
        if node is None:
            raise HarnessError(
                f"target for unknown node {name!r}",
                f"targets name nodes of the graph: {', '.join(graph.nodes)}",
            )
        if not trainable(node):
            raise HarnessError(
                f"node {name!r} ({node.op.name}) is not trainable: no expert produces it, so "
                "no experience could change its output",
                "give targets for an ft_expert node or a node downstream of one",
            )
        for coords, text in per_element.items():
            grads.add_target(node, coords, text)
    for node in reversed(list(graph.nodes.values())):  # built inputs-first: reverse = outputs-first
        if node.name not in grads.targets:
            continue
        targets_here = dict(grads.targets[node.name])
        before = (
            len(grads.rows),
            len(grads.patches),
            {i.name: dict(grads.targets.get(i.name, {})) for i in node.inputs},
        )

        made: list[dict[str, Any]] = []

        async def call(
            node: FutureTensor = node,
            targets_here: dict = targets_here,
            before: tuple = before,
            made: list = made,
        ) -> dict[str, Any]:
            await node.op.symbolic_backward(run, node, targets_here, grads)
            made.append(_effects(grads, before))
            return made[0]

        result = await adispatch(
            f"{node.op.name}.symbolic_backward", {"node": node.name, "targets": targets_here}, call
        )
        if made and result is not made[0]:  # a policy revised this reflection
            _revise(grads, made[0]["input_targets"], result.get("input_targets", {}))
    return grads


def _revise(grads: Gradients, proposed: dict, revised: dict) -> None:
    """Replace the input targets a reflection proposed by their revision."""
    for name, per in proposed.items():
        for coords in per:
            if coords not in revised.get(name, {}):
                grads.targets[name].pop(coords, None)
    for name, per in revised.items():
        for coords, text in per.items():
            grads.targets[name][tuple(coords)] = text


def _effects(grads: Gradients, before: tuple) -> dict[str, Any]:
    """What one symbolic backward call produced: its new input targets and row proposals."""
    rows_before, patches_before, targets_before = before
    return {
        "input_targets": {
            name: {
                c: t
                for c, t in grads.targets.get(name, {}).items()
                if c not in targets_before.get(name, {})
            }
            for name in targets_before
        },
        "rows": [str(p) for p in grads.rows[rows_before:]],
        "patches": [str(p) for p in grads.patches[patches_before:]],
        "row_credit": {name: dict(c) for name, c in grads.row_credit.items()},
    }
