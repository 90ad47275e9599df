"""Experience tensors as torch parameters.

`experience_parameter(experience, name)` is a `torch.nn.Parameter` of the experience's row
weights (shape `[N]`, float32), carrying the experience itself and the seed's
attributes (`st_relative_to`, `st_tensor_uid`: for a pool store its database and experience
name). A run given such tensors ties its experts'
coefficients to them, so `loss.backward()` fills `.grad` (the numeric channel); a symbolic
backward appends the rows and patches it proposes to `.symbolic_grad` (the text channel).
`training.optimizer.StSGD` is a `torch.optim.Optimizer` over these tensors and applies both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp_harness.errors import HarnessError

if TYPE_CHECKING:
    import torch

    from mcp_harness.experience.backend import Store


def experience_parameter(experience: Store, name: str) -> torch.Tensor:
    import torch

    if not name.isidentifier():
        raise HarnessError(
            f"experience name {name!r} is not an identifier",
            "name experience tensors like decision or cmd_exp",
        )
    weights = torch.nn.Parameter(torch.tensor(experience.weights(), dtype=torch.float32))
    weights.experience = experience  # type: ignore[attr-defined]
    weights.st_name = name  # type: ignore[attr-defined]
    address = getattr(experience, "address", None)  # a pool store: database and name
    relative_to, uid = (
        (address.conninfo, address.experience)
        if address is not None
        else (experience.path.parent, experience.path.name)
    )
    weights.st_relative_to = relative_to  # type: ignore[attr-defined]
    weights.st_tensor_uid = uid  # type: ignore[attr-defined]
    weights.symbolic_grad = []  # type: ignore[attr-defined]
    return weights


def is_experience_parameter(value: Any) -> bool:
    return hasattr(value, "experience") and hasattr(value, "st_name")


def sync(parameter: torch.Tensor) -> None:
    """Reload the row weights after the experience changed (rows may have been appended)."""
    import torch

    parameter.data = torch.tensor(parameter.experience.weights(), dtype=torch.float32)
