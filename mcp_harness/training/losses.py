"""Loss ops: each returns a torch scalar tied to a node's coefficients, so `loss.backward()` is
plain torch and gives every element its own gradient.

`edit_distance` and `exact_match` compare a node's element texts with target texts: the value is
the mean distance over the targeted elements, and the gradient of an element's coefficient is
its own distance / count (a wrong element is blamed, a right one is not). `status_loss` is
1 - the mean of the node's Status values (a validator's verdicts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import Levenshtein
import torch

from mcp_harness.errors import HarnessError

if TYPE_CHECKING:
    from mcp_harness.runtime.future import Coords, FutureTensor, Run


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
            coords: Levenshtein.distance(text, target) / max(len(text), len(target), 1)
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
