"""Train a module on a dataset of tasks: forward, loss, backward (numeric + symbolic), step.

Dataset (JSON Lines), one task per line:
```json
{"inputs": {"task": "Turn this folder into a git repository", "check": "test -d .git"},
 "files": {"notes.txt": "alpha\\n"},
 "targets": {"decision": "Initialize a git repository", "command": "git init -q"}}
```
`inputs` are the module's run inputs except `workdir`, which the trainer makes fresh for every
run of a task (with `files` written into it) when the module declares one. `targets` name
expert nodes: a string is the target of the task's first step, a list gives one per step.

`Trainer.fit` is the one training loop (the CLI, the MCP training job and the demo use it); its
history is `{"module", "status", "before": val metrics, "epochs": [entry, …]}`, an entry as
`new_entry` makes it and `fit` fills it in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mcp_harness.errors import HarnessError
from mcp_harness.experience.backend import Store
from mcp_harness.kernels.runner import BudgetExceeded
from mcp_harness.runtime import module as modules
from mcp_harness.runtime.gradients import backward
from mcp_harness.runtime.reflection import (
    CritiquePolicy,
    TracePolicy,
    dispatch_policy,
    kernel_critic,
)
from mcp_harness.training.losses import task_loss, text_distance
from mcp_harness.training.optimizer import StepReport, StSGD

FORMAT = 'each line: {"inputs": {...}, "targets": {"<node>": "text" | [per step]}, "files": {...}}'


@dataclass
class Example:
    inputs: dict[str, str]
    targets: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    line: int = 0  # its line in the dataset file (for error messages); 0: not from a file


def load_dataset(path: Path) -> list[Example]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such dataset", "check the path") from None
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{path}:{number}: not valid JSON ({exc.msg})", FORMAT) from None
        inputs, targets, files = (
            item.get(k, {}) if isinstance(item, dict) else None
            for k in ("inputs", "targets", "files")
        )
        if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
            raise HarnessError(f"{path}:{number}: 'inputs' must map names to text", FORMAT)
        if not isinstance(targets, dict) or not isinstance(files, dict):
            raise HarnessError(f"{path}:{number}: 'targets' and 'files' must be objects", FORMAT)
        for name, content in files.items():
            parts = Path(name).parts
            if not parts or Path(name).is_absolute() or ".." in parts:
                raise HarnessError(
                    f"{path}:{number}: file {name!r} is not a path inside the task's workspace",
                    "name files by relative paths without '..' (e.g. src/app.py)",
                )
            if not isinstance(content, str):
                raise HarnessError(f"{path}:{number}: file {name!r} must be text", FORMAT)
        steps = {k: [v] if isinstance(v, str) else v for k, v in targets.items()}
        if not all(
            isinstance(v, list) and all(isinstance(t, str) for t in v) for v in steps.values()
        ):
            raise HarnessError(f"{path}:{number}: a target is text or a list of texts", FORMAT)
        examples.append(Example(inputs, steps, files, number))
    if not examples:
        raise HarnessError(f"{path}: the dataset is empty", FORMAT)
    return examples


@dataclass
class Evaluation:
    loss: float
    success: float
    passed: list[bool]


class Trainer:
    def __init__(
        self,
        module: modules.Module,
        kernel: Any,
        workroot: Path,
        dims: dict[str, int] | None = None,
        lr: float = 0.2,
        log: Path | None = None,
    ) -> None:
        """`log`: the step log (JSONL); each step's reflection records go beside it, in
        `trace/step-<n>.jsonl`."""
        self.module = module
        self.kernel = kernel
        self.workroot = workroot
        self.dims = dims or {}
        self.optimizer = StSGD(module.experience, lr=lr, log=log)
        self.trace_dir = log.parent / "trace" if log is not None else None
        self.last_timing: dict[str, float] = {}
        self._runs = itertools.count()

    def _inputs(self, examples: list[Example]) -> dict[str, list[str]]:
        names = set(self.module.spec.get("inputs", {}))
        batch: dict[str, list[str]] = {}
        for index, example in enumerate(examples):
            values = dict(example.inputs)
            if "workdir" in names:
                workdir = self.workroot / f"run{next(self._runs)}-{index}"
                for relative, content in example.files.items():
                    target = workdir / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(content)
                workdir.mkdir(parents=True, exist_ok=True)
                values["workdir"] = str(workdir)
            for name in names:
                if name not in values:
                    raise HarnessError(
                        f"example {index} has no input {name!r}",
                        f"give inputs {sorted(names - {'workdir'})}",
                    )
                batch.setdefault(name, []).append(values[name])
        return batch

    async def forward(
        self, examples: list[Example], experience: dict[str, Store] | None = None
    ) -> modules.RunReport:
        module = (
            dataclasses.replace(self.module, experience=experience) if experience else self.module
        )
        return await modules.run(
            module,
            self._inputs(examples),
            kernel=self.kernel,
            dims=self.dims,
            run_dir=self.workroot / f"trace{next(self._runs)}",
        )

    async def evaluate(
        self, examples: list[Example], experience: dict[str, Store] | None = None
    ) -> Evaluation:
        report = await self.forward(examples, experience)
        passed = [e.status.ok for e in report.elements]
        loss = self.loss(report, examples).item()
        return Evaluation(loss, sum(passed) / len(passed), passed)

    def loss(self, report: modules.RunReport, examples: list[Example]):
        """`task_loss` of the module's output, graded by the distance of each example's
        targeted elements to their targets (a torch scalar)."""
        graph, run = report.graph, report.run
        output = graph.output
        distances: dict[tuple[int, ...], list[float]] = {}
        for name, per_element in _targets(graph, run, examples).items():
            node = graph.nodes[name]
            for coords, text in per_element.items():
                element = run.element(node, coords)
                distance = text_distance(element.text if element else "", text)
                distances.setdefault(coords[: len(output.shape)], []).append(distance)
        return task_loss(run, output, {c: sum(d) / len(d) for c, d in distances.items()})

    def _calls(self) -> int:
        usage = getattr(self.kernel, "usage", None)
        return usage.calls if usage is not None else 0

    async def step(
        self, batch: list[Example], val: list[Example] | None = None, second_order: bool = False
    ) -> tuple[float, StepReport]:
        """One training step on `batch`; returns its loss and what the optimizer did.
        `last_timing` keeps how long the forward, backward and optimizer phases took. With
        `second_order`, the run's kernel critiques every first-order symbolic reflection and
        may revise it (`CritiquePolicy` + `kernel_critic`); the step's trace holds both orders."""
        started = time.perf_counter()
        calls_before = self._calls()
        report = await self.forward(batch)
        forwarded = time.perf_counter()
        calls = {"forward": self._calls() - calls_before}
        graph, run = report.graph, report.run
        trace = CritiquePolicy(kernel_critic(self.kernel)) if second_order else TracePolicy()
        with dispatch_policy(trace):
            loss = self.loss(report, batch)
            loss.backward()  # numeric, per element, plain torch
        targets = _targets(graph, run, batch)
        with dispatch_policy(trace):
            grads = await backward(run, graph, targets)
        if self.trace_dir is not None:
            self.trace_dir.mkdir(parents=True, exist_ok=True)
            trace.save(self.trace_dir / f"step-{self.optimizer.steps + 1}.jsonl")
        calls["backward"] = self._calls() - calls_before - calls["forward"]
        gate = None
        if val:

            async def gate(experience: dict[str, Store]) -> float:
                spent = self._calls()
                loss = (await self.evaluate(val, experience)).loss
                calls["gate"] = calls.get("gate", 0) + self._calls() - spent
                return loss

        backwarded = time.perf_counter()
        # The val set by content: object ids can be reused by another set once this one is gone.
        key = json.dumps([dataclasses.asdict(e) for e in val], sort_keys=True) if val else None
        facts: dict[str, Any] = {"kernel_calls": calls}
        if second_order:
            facts["second_order_records"] = sum(r.order == 2 for r in trace)
        result = await self.optimizer.apply(grads, gate, facts, gate_key=key)
        self.last_timing = {
            "forward_s": forwarded - started,
            "backward_s": backwarded - forwarded,
            "optimizer_s": time.perf_counter() - backwarded,
        }
        return loss.item(), result

    async def fit(
        self,
        train: list[Example],
        epochs: int,
        batch_size: int,
        val: list[Example] | None = None,
        *,
        gate: bool = True,
        second_order: bool = False,
        history: dict[str, Any] | None = None,
        progress: Progress | None = None,
        save: Callable[[dict[str, Any] | None], None] | None = None,
    ) -> dict[str, Any]:
        """Train up to epoch `epochs` (a total) in batches of `batch_size`; returns the history.

        `val` is measured before training and after every epoch and, with `gate`, is the
        validation gate of every step; `second_order` runs every step with second-order
        reflection (see `step`). `history` continues a run: after its last epoch, or
        inside it at `examples_done` if that entry is incomplete. `save(entry)` is called
        whenever the history changed: with the epoch's entry after every epoch and at a stop
        (checkpoint it), with None otherwise. A budget stop or a cancellation is saved (status
        "budget" / "interrupted", the entry marked `stopped`) and raised again.
        """
        history = history if history is not None else new_history(self.module.name)
        progress = progress or Lines(lambda _: None)
        save = save or (lambda _: None)
        last = history["epochs"][-1] if history["epochs"] else None
        carried = last if last is not None and not last.get("complete") else None
        first = 1 if last is None else last["epoch"] + (carried is None)
        history["status"] = "running"
        entry: dict[str, Any] | None = None
        try:
            if val and history.get("before") is None and first == 1:
                progress.status("val set before training…")
                history["before"] = _metrics(await self.evaluate(val))
                save(None)
                progress.line("before training: " + _val_text(history["before"]))
            for epoch in range(first, epochs + 1):
                entry = carried or new_entry(epoch, len(train))
                carried = None
                entry["examples"] = len(train)
                started, base_seconds = time.perf_counter(), entry["seconds"]
                batches = -(-len(train) // batch_size)
                for start in range(entry["examples_done"], len(train), batch_size):
                    loss, report = await self.step(
                        train[start : start + batch_size], val if gate else None, second_order
                    )
                    entry["batch_losses"].append(loss)
                    if report.accepted:
                        entry["steps_accepted"] += 1
                    elif report.plan.empty():
                        entry["steps_unchanged"] += 1
                    else:
                        entry["steps_rejected"] += 1
                    entry["examples_done"] = min(len(train), start + batch_size)
                    entry["train_loss"] = sum(entry["batch_losses"]) / len(entry["batch_losses"])
                    entry["seconds"] = base_seconds + time.perf_counter() - started
                    progress.bar(
                        f"epoch {epoch}/{epochs}",
                        -(-entry["examples_done"] // batch_size),
                        batches,
                        f"batches, loss {entry['train_loss']:.3f}, steps "
                        f"{entry['steps_accepted']} accepted / {entry['steps_rejected']} rejected",
                    )
                if val:
                    progress.status(f"epoch {epoch}/{epochs}: val set…")
                    entry.update(_metrics(await self.evaluate(val)))
                entry["complete"] = True
                entry["seconds"] = base_seconds + time.perf_counter() - started
                entry.pop("stopped", None)
                _put(history, entry)
                save(entry)
                progress.line(_epoch_text(entry, epochs))
                entry = None
            history["status"] = "complete"
            save(None)
        except (BudgetExceeded, asyncio.CancelledError) as exc:
            budget = isinstance(exc, BudgetExceeded)
            history["status"] = "budget" if budget else "interrupted"
            if entry is not None:  # the epoch stops here; continuing goes on from this example
                entry["stopped"] = exc.message if budget else "interrupted"
                _put(history, entry)
            save(entry)
            raise
        return history


def _targets(graph, run, examples: list[Example]) -> dict[str, dict[tuple[int, ...], str]]:
    """Each example's targets as node -> element coordinates -> text (step n of example i is
    element (i, n)), for the elements the run computed."""
    targets: dict[str, dict[tuple[int, ...], str]] = {}
    for index, example in enumerate(examples):
        for name, per_step in example.targets.items():
            node = graph.nodes.get(name)
            if node is None:
                raise HarnessError(
                    f"target for unknown node {name!r}", f"nodes: {', '.join(graph.nodes)}"
                )
            for step, text in enumerate(per_step):
                coords = (index, step)[: len(node.shape)]
                if run.element(node, coords) is not None:
                    targets.setdefault(name, {})[coords] = text
    return targets


class Progress(Protocol):
    """Where `Trainer.fit` reports: a bar per batch, transient notes, and lines to keep."""

    def bar(self, prefix: str, done: int, total: int, suffix: str) -> None: ...

    def status(self, text: str) -> None: ...

    def line(self, text: str) -> None: ...


class Lines:
    """A `Progress` that writes every bar update and line through `write` (no notes)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    def bar(self, prefix: str, done: int, total: int, suffix: str) -> None:
        self.write(f"{prefix}: {done}/{total} {suffix}")

    def status(self, text: str) -> None:
        pass

    def line(self, text: str) -> None:
        self.write(text)


def new_history(module: str) -> dict[str, Any]:
    return {"module": module, "status": "running", "before": None, "epochs": []}


def new_entry(epoch: int, total: int) -> dict[str, Any]:
    """An epoch's history entry before its first batch."""
    return {
        "epoch": epoch,
        "complete": False,
        "examples": total,
        "examples_done": 0,
        "batch_losses": [],
        "train_loss": None,
        "steps_accepted": 0,
        "steps_rejected": 0,
        "steps_unchanged": 0,
        "seconds": 0.0,
    }


def _put(history: dict[str, Any], entry: dict[str, Any]) -> None:
    epochs = [e for e in history["epochs"] if e["epoch"] != entry["epoch"]]
    history["epochs"] = sorted([*epochs, entry], key=lambda e: e["epoch"])


def _metrics(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "val_loss": evaluation.loss,
        "val_success": evaluation.success,
        "val_passed": sum(evaluation.passed),
        "val_total": len(evaluation.passed),
    }


def _val_text(metrics: dict[str, Any]) -> str:
    return (
        f"val loss {metrics['val_loss']:.3f}, success {metrics['val_passed']}/"
        f"{metrics['val_total']} ({100 * metrics['val_success']:.0f}%)"
    )


def _epoch_text(entry: dict[str, Any], epochs: int) -> str:
    loss = entry["train_loss"]
    parts = [
        f"epoch {entry['epoch']}/{epochs}: train loss " + ("-" if loss is None else f"{loss:.3f}"),
        f"steps {entry['steps_accepted']} accepted / {entry['steps_rejected']} rejected / "
        f"{entry['steps_unchanged']} unchanged",
    ]
    if "val_loss" in entry:
        parts.append(_val_text(entry))
    return ", ".join(parts) + f" [{entry['seconds']:.1f} s]"
