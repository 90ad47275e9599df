"""Loss ops: each returns a torch scalar tied to a node's coefficients, so `loss.backward()` is
plain torch and gives every element its own gradient.

`edit_distance` and `exact_match` compare a node's element texts with target texts: the value is
the mean distance over the targeted elements, and the gradient of an element's coefficient is
its own distance / count (a wrong element is blamed, a right one is not). `status_loss` is
1 - the mean of the node's Status values (a validator's verdicts). `task_loss` grades a task
module's outcomes so that better and worse attempts differ (the training gate depends on it):

| outcome of the element                           | loss |
|--------------------------------------------------|------|
| passed its validator                             | 0    |
| a command ran and exited 0, the check failed     | 0.5  |
| a command ran and failed (non-zero exit, timeout) | 0.75 |
| nothing ran (no experience, kernel failure)       | 1    |

and, where the task gives targets, a failed element's loss is half that and half the mean
normalised edit distance of its targeted elements to their targets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import Levenshtein
import torch

from mcp_harness.errors import HarnessError

if TYPE_CHECKING:
    from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run


def _scalar(run: Run, node: FutureTensor, distances: dict[Coords, float]) -> torch.Tensor:
    if not distances:
        raise HarnessError(f"no targets for node {node.name!r}", "give at least one target")
    coef = run.coefficients(node)
    weights = torch.zeros(node.shape)
    for coords, distance in distances.items():
        weights[coords] = distance
    count = len(distances)
    weighted = (weights * coef).sum() / count
    # Value: the mean distance. Gradient per element: its distance / count.
    return weighted - weighted.detach() + weights.sum() / count


def _outputs(run: Run, node: FutureTensor, targets: dict[Coords, str]):
    for coords, target in targets.items():
        element = run.element(node, coords)
        yield coords, ("" if element is None else element.text), target


def edit_distance(run: Run, node: FutureTensor, targets: dict[Coords, str]) -> torch.Tensor:
    """Mean Levenshtein distance / max length (0 = equal, 1 = nothing in common)."""
    return _scalar(
        run,
        node,
        {
            coords: text_distance(text, target)
            for coords, text, target in _outputs(run, node, targets)
        },
    )


def exact_match(run: Run, node: FutureTensor, targets: dict[Coords, str]) -> torch.Tensor:
    """The fraction of targeted elements whose text differs from the target (stripped)."""
    return _scalar(
        run,
        node,
        {
            coords: float(text.strip() != target.strip())
            for coords, text, target in _outputs(run, node, targets)
        },
    )


def status_loss(run: Run, node: FutureTensor) -> torch.Tensor:
    """1 - the mean Status value of every element of `node` (0 when all are fully confident)."""
    return 1 - run.coefficients(node).mean()


def task_outcome(element: Element | None) -> float:
    """The outcome part of `task_loss` for one element (see the table above)."""
    if element is None:
        return 1.0
    meta = element.meta
    if meta.get("validated") is True or ("validated" not in meta and element.status.ok):
        return 0.0
    if "exit_code" not in meta:
        return 1.0
    return 0.5 if meta["exit_code"] == 0 and not meta.get("timed_out") else 0.75


def task_loss(
    run: Run, node: FutureTensor, distances: dict[Coords, float] | None = None
) -> torch.Tensor:
    """The mean graded outcome of every element of `node` (a task module's output); an
    element's gradient is its own loss / count, so the worst attempts are blamed most."""
    losses = {}
    for coords in node.coords():
        outcome = task_outcome(run.element(node, coords))
        distance = (distances or {}).get(coords)
        losses[coords] = outcome if distance is None or not outcome else (outcome + distance) / 2
    return _scalar(run, node, losses)


def text_distance(text: str, target: str) -> float:
    """Levenshtein distance / the longer length: 0 equal, 1 nothing in common."""
    text, target = text.strip(), target.strip()
    return Levenshtein.distance(text, target) / max(len(text), len(target), 1)
