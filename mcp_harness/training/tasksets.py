"""Task sets for honest evaluation: families of terminal tasks split by instance.

A task set is a dataset (JSON Lines, `trainer.load_dataset`'s format) whose lines also say
`family`, `split` (`train`, `val` or `heldout`) and `wording` (`same`: every instance of the
family is worded alike and differs in its parameters; `varied`: the wording differs too). A
family with no train or val instance is *unseen*: its held-out tasks probe what training does
to tasks it never taught. The bundled set is `mcp_harness/data/tasks/shell-families.jsonl`;
the demo and `benchmarks/learning.py` both use it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mcp_harness.errors import HarnessError, broken_install
from mcp_harness.training.trainer import Example, load_dataset

SPLITS = ("train", "val", "heldout")
BUNDLED = "tasks/shell-families.jsonl"


@dataclass(frozen=True)
class Task:
    family: str
    kind: str  # "same", "varied" or "unseen"
    split: str
    example: Example


def bundled() -> Path:
    path = resources.files("mcp_harness.data").joinpath(BUNDLED)
    if not path.is_file():
        raise broken_install(f"the bundled task set ({path})")
    return Path(str(path))


def load_task_set(path: Path | None = None) -> list[Task]:
    """Every task of the set at `path` (default: the bundled one), in file order."""
    path = path or bundled()
    examples = load_dataset(path)
    text = path.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    trained = {line.get("family") for line in lines if line.get("split") in ("train", "val")}
    tasks = []
    for example, line in zip(examples, lines, strict=True):
        family, split = line.get("family"), line.get("split")
        if not isinstance(family, str) or split not in SPLITS:
            raise HarnessError(
                f"{path}:{example.line}: a task set line needs 'family' and 'split' "
                f"({', '.join(SPLITS)})",
                'add e.g. "family": "mkdir", "split": "train"',
            )
        kind = line.get("wording", "same") if family in trained else "unseen"
        tasks.append(Task(family, kind, split, example))
    return tasks
