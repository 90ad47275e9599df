"""What a forward pass did for each task: the command of each step and the final screen.

One reading of a run for everyone who reports on tasks (`mcp-harness eval`, the demo, the
learning benchmark): the command of a step is the element fed to the module's `ft_tmux_run`
(or `ft_tmux_send_keys`), the screen is its `ft_tmux_capture_pane` node, and the number of
steps is what the loop ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    text: str  # the command, or why there was none
    ok: bool  # False: the expert had no confident answer, nothing of it ran


@dataclass(frozen=True)
class TaskRun:
    passed: bool
    steps: list[Step]
    screen: str  # the final screen (the output's text when the task passed)
    element: Any  # the output element, for its meta (reason, check, check output)


def task_run(report: Any, index: int) -> TaskRun:
    """Task `index` of a forward `report` (a `module.RunReport`)."""
    graph, run, element = report.graph, report.run, report.elements[index]
    command = _node_fed_to(graph, ("ft_tmux_run", "ft_tmux_send_keys"))
    screen = next((n for n in graph.nodes.values() if n.op.name == "ft_tmux_capture_pane"), None)
    count = max(1, int(element.meta.get("iterations", 1)))
    steps: list[Step] = []
    if command is not None:
        for step in range(count if len(command.shape) > 1 else 1):
            found = run.element(command, (index, step)[: len(command.shape)])
            if found is not None:
                steps.append(Step(found.text, found.status.ok))
    last = None
    if screen is not None:
        last = run.element(screen, (index, count - 1)[: len(screen.shape)])
    passed = element.status.ok
    final = element.text if passed or last is None else last.text
    return TaskRun(passed, steps, final, element)


def _node_fed_to(graph: Any, ops: tuple[str, ...]) -> Any:
    """The first input of the first node running one of `ops` (what the module types)."""
    for op in ops:
        for node in graph.nodes.values():
            if node.op.name == op and node.inputs:
                return node.inputs[0]
    return None
