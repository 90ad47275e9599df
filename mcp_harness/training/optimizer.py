"""`StSGD`: apply a step's gradients to experience — row weights (numeric) and new rows
and row patches (symbolic) — each experience in one atomic commit, behind an optional
validation gate.

It is a `torch.optim.Optimizer` over experience tensors (`runtime.parameters`): `step()` takes
each tensor's `.grad` as row credit and its `.symbolic_grad` as proposed rows and patches, and
applies them to any row (the caller's experience is theirs to change). The trainer calls
`await apply(grads, gate, …)` with a whole step's `Gradients`; both go through one `plan` and
one commit.

The gate is a coroutine `gate(experiences) -> held-out loss`. With a gate, the step is first
applied to scratch copies of the experiences; if the held-out loss gets worse the step is
rejected and nothing real changes, and then each of its batch examples' new rows and row credit
are tried alone the same way and kept if they do not make it worse (one mislabeled task does
not cost the batch its other lessons). Every step, accepted or not, is one line in the step log
(JSONL) with its reason, what it changed or would change, and the gate's numbers.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mcp_harness.errors import HarnessError
from mcp_harness.experience.backend import Store, close_store, open_store
from mcp_harness.experience.keywords import keywords_text
from mcp_harness.experience.store import Experience, Row
from mcp_harness.experience.transfer import snapshot
from mcp_harness.runtime.gradients import Gradients, RowProposal, summed
from mcp_harness.runtime.parameters import experience_parameter, is_experience_parameter, sync
from mcp_harness.storage.atomic import append_lines, atomic_write
from mcp_harness.storage.textdiff import PatchError, apply_patch

Gate = Callable[[dict[str, Store]], Awaitable[float]]
MIN_WEIGHT, MAX_WEIGHT = 0.05, 10.0


class StalePatch(Exception):
    """A row patch no longer applies: the row changed after the backward pass."""


@dataclass
class Plan:
    weights: dict[str, dict[int, float]] = field(default_factory=dict)
    rows: dict[str, list[Row]] = field(default_factory=dict)
    patches: dict[str, dict[int, str]] = field(default_factory=dict)

    def empty(self) -> bool:
        return (
            not any(self.weights.values())
            and not any(self.rows.values())
            and not any(self.patches.values())
        )

    def describe(self) -> dict[str, Any]:
        return {
            "new_rows": {
                name: [[r.key[:80], r.value[:80]] for r in rows]
                for name, rows in self.rows.items()
                if rows
            },
            "weights": {
                name: {str(k): round(v, 4) for k, v in w.items()}
                for name, w in self.weights.items()
                if w
            },
            "row_patches": {
                name: {str(k): d for k, d in p.items()} for name, p in self.patches.items() if p
            },
        }


@dataclass
class StepReport:
    accepted: bool
    reason: str
    plan: Plan
    loss_before: float | None = None
    loss_after: float | None = None


class StSGD(torch.optim.Optimizer):
    """`params`: experience tensors (`make_tensor`, `experience_parameter`), or a dict of
    experiences by name (made into such tensors). `lr` scales row credit into weight change."""

    def __init__(
        self,
        params: Any,
        lr: float = 0.2,
        log: Path | None = None,
        step_source: str = "training",
    ) -> None:
        if isinstance(params, dict):
            params = [experience_parameter(e, name) for name, e in params.items()]
        params = list(params)
        for index, param in enumerate(params):
            if not is_experience_parameter(param):
                raise HarnessError(
                    f"StSGD parameter {index} is not an experience tensor",
                    "pass tensors made by make_tensor (or a dict of experiences by name)",
                )
        super().__init__(params, {"lr": lr})
        self.parameters_by_name = {p.st_name: p for p in params}
        self.experiences: dict[str, Store] = {p.st_name: p.experience for p in params}
        self.log = log
        self.step_source = step_source
        self.steps = 0
        self._gate_loss: tuple[Any, float] | None = None  # (gate key, its loss now)
        self.last_report: StepReport | None = None
        self.recover()

    @property
    def lr(self) -> float:
        return float(self.param_groups[0]["lr"])

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """torch's step: apply every parameter's `.grad` (row credit) and `.symbolic_grad`
        (proposed rows and patches); the report is kept in `last_report`."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = Gradients()
        for name, param in self.parameters_by_name.items():
            if param.grad is not None:
                for row, credit in enumerate(param.grad.tolist()):
                    if credit:
                        grads.credit(name, row, credit)
            for change in param.symbolic_grad:
                (grads.rows if isinstance(change, RowProposal) else grads.patches).append(change)
        self.last_report = self._decide(self.plan(grads), self._ungated, {})
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        for param in self.parameters_by_name.values():
            param.symbolic_grad = []

    def plan(self, grads: Gradients, gated: bool = True) -> Plan:
        """What the step would change: clamped weights, and rows not already stored. An
        ungated step changes only rows training made: the seed's and the harvest's rows are
        changed only by a step that passes the validation gate."""
        plan = Plan(weights=self._weights(grads.row_credit, gated))
        for patch in grads.patches:
            if gated or self._trained(self.experiences[patch.experience], patch.row):
                plan.patches.setdefault(patch.experience, {}).setdefault(patch.row, patch.diff)
        for proposal in grads.rows:
            experience = self.experiences[proposal.experience]
            known = plan.rows.setdefault(proposal.experience, [])
            pair = (proposal.key.strip(), proposal.value.strip())
            if any((r.key.strip(), r.value.strip()) == pair for r in known):
                continue
            if any(
                h.row.key.strip() == pair[0] and h.row.value.strip() == pair[1]
                for h in experience.search(proposal.key, k=8)
            ):
                continue
            known.append(
                Row(
                    keywords_text(proposal.key),
                    proposal.key,
                    proposal.value,
                    source=self.step_source,
                    fields={"step": self.steps + 1, "element": proposal.element},
                )
            )
        return plan

    def _weights(
        self, credit: dict[str, dict[int, float]], gated: bool = True
    ) -> dict[str, dict[int, float]]:
        """Row weights after `credit` (clamped); ungated, only rows training made change."""
        out = {}
        for name, rows in credit.items():
            experience = self.experiences[name]
            out[name] = {
                row: min(MAX_WEIGHT, max(MIN_WEIGHT, experience.row(row).weight - self.lr * c))
                for row, c in rows.items()
                if c and (gated or self._trained(experience, row))
            }
        return out

    def _trained(self, experience: Store, row: int) -> bool:
        return experience.row(row).provenance.get("source") == self.step_source

    async def apply(
        self,
        grads: Gradients,
        gate: Gate | None = None,
        facts: dict[str, Any] | None = None,
        gate_key: Any = None,
    ) -> StepReport:
        """Apply one step's gradients (behind `gate` if given); `facts` go into the step log
        line. Steps that pass the same `gate_key` share the gate's loss of the unchanged
        experience."""
        plan = self.plan(grads, gated=gate is not None)
        if gate is None or plan.empty():
            return self._decide(plan, self._ungated, facts or {})
        try:
            report = await self._gated(plan, grads, gate, gate_key)
        except StalePatch as exc:
            report = StepReport(False, f"rejected: {exc}", plan)
        return self._finish(report, facts or {})

    def _decide(
        self, plan: Plan, apply: Callable[[Plan], StepReport], facts: dict[str, Any]
    ) -> StepReport:
        if plan.empty():
            report = StepReport(False, "nothing to change: every targeted element was right", plan)
        else:
            try:
                report = apply(plan)
            except StalePatch as exc:
                report = StepReport(False, f"rejected: {exc}", plan)
        return self._finish(report, facts)

    def _ungated(self, plan: Plan) -> StepReport:
        self._apply(plan, self.experiences, self._journal())
        self._gate_loss = None
        return StepReport(True, "applied (no validation gate)", plan)

    def _finish(self, report: StepReport, facts: dict[str, Any]) -> StepReport:
        """Count and log the step, and reload the parameters' row weights."""
        self.steps += 1
        self._log(report, facts)
        for param in self.parameters_by_name.values():
            sync(param)
        return report

    async def _gated(self, plan: Plan, grads: Gradients, gate: Gate, key: Any) -> StepReport:
        """With a `key`, the gate's loss before the step is measured once and carried over:
        after an accepted step it is that step's loss after, after a rejected one it is
        unchanged (only this optimizer changes the experience during training)."""
        if key is not None and self._gate_loss is not None and self._gate_loss[0] == key:
            before = self._gate_loss[1]
        else:
            before = await gate(self.experiences)
            self._gate_loss = (key, before) if key is not None else None
        after = await self._try(plan, gate)
        if after <= before:
            self._apply(plan, self.experiences, self._journal())
            self._gate_loss = (key, after) if key is not None else None
            return StepReport(
                True, f"accepted: validation loss {before:.4f} -> {after:.4f}", plan, before, after
            )
        rejected = f"rejected: validation loss would rise {before:.4f} -> {after:.4f}"
        examples = _examples(plan, grads)
        if len(examples) < 2:
            return StepReport(False, rejected, plan, before, after)
        # One example may be what raises it: each example's new rows and row credit go in
        # alone, in batch order, when they do not raise the loss (patches stay out).
        kept, start, now = Plan(), before, before
        for rows, credits in examples:
            part = Plan(rows=rows, weights=self._weights(credits))
            loss = await self._try(part, gate)
            if loss <= now:
                self._apply(part, self.experiences, self._journal())
                for name, added in part.rows.items():
                    kept.rows.setdefault(name, []).extend(added)
                for name, weights in part.weights.items():
                    kept.weights.setdefault(name, {}).update(weights)
                now = loss
        self._gate_loss = (key, now) if key is not None else None
        if kept.empty():
            return StepReport(
                False, f"{rejected}, and so would each example's rows", plan, start, after
            )
        taken = sum(map(len, kept.rows.values()))
        return StepReport(
            True,
            f"accepted in part: the whole step would raise the validation loss {start:.4f} -> "
            f"{after:.4f}; the changes of some of its examples taken alone ({taken} new rows): "
            f"{start:.4f} -> {now:.4f}",
            kept,
            start,
            now,
        )

    async def _try(self, plan: Plan, gate: Gate) -> float:
        """The gate's loss were `plan` applied (to scratch copies: nothing real changes)."""
        with tempfile.TemporaryDirectory(prefix="stsgd-") as scratch:
            copies = {
                name: Experience.open(snapshot(experience, Path(scratch) / name, as_searched=True))
                for name, experience in self.experiences.items()
            }
            self._apply(plan, copies)
            return await gate(copies)

    @staticmethod
    def _apply(plan: Plan, experiences: dict[str, Store], journal: Path | None = None) -> None:
        """Check every patch first (a stale one rejects the whole step), then commit each
        experience's weights, patched values and new rows at once. With a journal the step is
        all-or-nothing across experiences too: it is written first, replayed by `recover`
        after a crash, and removed when every experience has committed."""
        pending = pending_changes(plan, experiences)
        if journal is not None:
            atomic_write(journal, json.dumps(pending, ensure_ascii=False))
        _commit(pending, experiences)
        if journal is not None:
            journal.unlink()

    def recover(self) -> bool:
        """Finish a step a crash interrupted between two experiences' commits."""
        journal = self._journal()
        if journal is None or not journal.exists():
            return False
        _commit(json.loads(journal.read_text(encoding="utf-8")), self.experiences)
        journal.unlink()
        return True

    def _journal(self) -> Path | None:
        return self.log.with_name("pending-step.json") if self.log is not None else None

    def _log(self, report: StepReport, facts: dict[str, Any]) -> None:
        if self.log is None:
            return
        line = {
            "step": self.steps,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "accepted": report.accepted,
            "reason": report.reason,
            "loss_before": report.loss_before,
            "loss_after": report.loss_after,
            **facts,
            **report.plan.describe(),
        }
        append_lines(self.log, [json.dumps(line, ensure_ascii=False)])


def _examples(
    plan: Plan, grads: Gradients
) -> list[tuple[dict[str, list[Row]], dict[str, dict[int, float]]]]:
    """The plan's new rows and the step's row credit per batch example that caused them (the
    first coordinate of the element), in the order they came."""
    parts: dict[str, tuple[dict[str, list[Row]], list[tuple[str, int, float, str]]]] = {}
    for name, rows in plan.rows.items():
        for row in rows:
            example = _example_of(str(row.fields.get("element", "")))
            parts.setdefault(example, ({}, []))[0].setdefault(name, []).append(row)
    for credit in grads.credits:
        parts.setdefault(_example_of(credit[3]), ({}, []))[1].append(credit)
    return [(rows, summed(credits)) for rows, credits in parts.values()]


def _example_of(element: str) -> str:
    """The batch example of an element named `node@(coords)`: its first coordinate."""
    return element.partition("@")[2].strip("()").split(",")[0].strip()


def _commit(pending: dict[str, Any], experiences: dict[str, Store]) -> None:
    """Apply a step's changes; replaying it is harmless (sets, and rows already there are
    skipped)."""
    for name, step in pending.items():
        experience = experiences[name] if name in experiences else open_store(step["path"])
        try:
            stored = {(r.key, r.value) for r in experience.rows()}
            rows = [Row(**r) for r in step["rows"] if (r["key"], r["value"]) not in stored]
            experience.update({int(r): c for r, c in step["changes"].items()}, rows)
        finally:
            if name not in experiences:
                close_store(experience)


def pending_changes(plan: Plan, experiences: dict[str, Store]) -> dict[str, Any]:
    """A step as plain data per experience (path, row changes with patched values, new rows),
    raising StalePatch if a patch no longer applies."""
    changes: dict[str, dict[int, dict[str, Any]]] = {}
    for name, patches in plan.patches.items():
        for row, diff in patches.items():
            current = experiences[name].row(row).value
            try:
                value = apply_patch(current, diff)
            except PatchError as exc:
                raise StalePatch(
                    f"the patch for row {row} of {name!r} no longer applies (the row "
                    f"changed since the backward pass): {exc}"
                ) from None
            changes.setdefault(name, {}).setdefault(row, {})["value"] = value
    for name, weights in plan.weights.items():
        for row, weight in weights.items():
            changes.setdefault(name, {}).setdefault(row, {})["weight"] = weight
    return {
        name: {
            "path": str(experience.path),
            "changes": {str(r): c for r, c in changes.get(name, {}).items()},
            "rows": [dataclasses.asdict(row) for row in plan.rows.get(name, [])],
        }
        for name, experience in experiences.items()
        if changes.get(name) or plan.rows.get(name)
    }
