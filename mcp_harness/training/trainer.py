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
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.experience.store import Experience
from mcp_harness.runtime import module as modules
from mcp_harness.training.losses import task_loss, text_distance
from mcp_harness.training.optimizer import StepReport, StSGD
from mcp_harness.training.reflection import TracePolicy, dispatch_policy
from mcp_harness.training.symbolic import backward

FORMAT = 'each line: {"inputs": {...}, "targets": {"<node>": "text" | [per step]}, "files": {...}}'


@dataclass
class Example:
    inputs: dict[str, str]
    targets: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


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
        steps = {k: [v] if isinstance(v, str) else v for k, v in targets.items()}
        if not all(
            isinstance(v, list) and all(isinstance(t, str) for t in v) for v in steps.values()
        ):
            raise HarnessError(f"{path}:{number}: a target is text or a list of texts", FORMAT)
        examples.append(Example(inputs, steps, files))
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
        self, examples: list[Example], experience: dict[str, Experience] | None = None
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
        self, examples: list[Example], experience: dict[str, Experience] | None = None
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
        self, batch: list[Example], heldout: list[Example] | None = None
    ) -> tuple[float, StepReport]:
        """One training step on `batch`; returns its loss and what the optimizer did.
        `last_timing` keeps how long the forward, backward and optimizer phases took."""
        started = time.perf_counter()
        calls_before = self._calls()
        report = await self.forward(batch)
        forwarded = time.perf_counter()
        calls = {"forward": self._calls() - calls_before}
        graph, run = report.graph, report.run
        trace = TracePolicy()
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
        if heldout:

            async def gate(experience: dict[str, Experience]) -> float:
                spent = self._calls()
                loss = (await self.evaluate(heldout, experience)).loss
                calls["gate"] = calls.get("gate", 0) + self._calls() - spent
                return loss

        backwarded = time.perf_counter()
        key = tuple(id(example) for example in heldout) if heldout else None
        result = await self.optimizer.step(grads, gate, {"kernel_calls": calls}, gate_key=key)
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
        heldout: list[Example] | None = None,
        progress: Callable[[str], None] = print,
    ) -> list[dict[str, float]]:
        history = []
        for epoch in range(1, epochs + 1):
            losses, accepted = [], 0
            for start in range(0, len(train), batch_size):
                loss, report = await self.step(train[start : start + batch_size], heldout)
                losses.append(loss)
                accepted += report.accepted
                progress(
                    f"  epoch {epoch} batch {start // batch_size + 1}: loss {loss:.3f}, "
                    f"{report.reason}"
                )
            metrics = {
                "epoch": epoch,
                "train_loss": sum(losses) / len(losses),
                "steps_accepted": accepted,
            }
            if heldout:
                evaluation = await self.evaluate(heldout)
                metrics.update(heldout_loss=evaluation.loss, heldout_success=evaluation.success)
            history.append(metrics)
            progress(
                f"epoch {epoch}: "
                + ", ".join(
                    f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in metrics.items()
                    if k != "epoch"
                )
            )
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
