"""The files of a training run (`mcp-harness train`), written so that a crash never leaves a
half-written one and a run can be resumed from its last checkpoint.

```
<out>/
  train.json               module path, experience paths, data paths and options (for --resume)
  history.json             {"module", "status", "before": val metrics, "epochs": [entry, …]}
  steps.jsonl              the optimizer's step log (one line per step, accepted or not)
  training.png             loss and val success per epoch
  epoch-<n>/
    checkpoint.json        that epoch's history entry (`complete`, `examples_done`, metrics)
    experience/<name>/     a copy of every experience tensor after epoch <n> (of a pool
                           experience too: a file copy of its rows)
```
`epoch-0` is the experience before training. A checkpoint is copied into a hidden temp dir in
`<out>` and renamed into place; `history.json` and `train.json` are written atomically. An
epoch stopped early (budget) is checkpointed with `complete: false` and the number of examples
it trained on; resuming continues it at the next example. The checkpoint's own `checkpoint.json`
holds the entry too, so the history can be rebuilt even if a crash came between the two writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.experience.transfer import snapshot
from mcp_harness.storage.atomic import atomic_write, fsync_dir

TRAIN_FILE = "train.json"
HISTORY_FILE = "history.json"
STEPS_FILE = "steps.jsonl"
PLOT_FILE = "training.png"
CHECKPOINT_FILE = "checkpoint.json"
EXPERIENCE_DIR = "experience"
_SKIP = shutil.ignore_patterns(".lock", ".txn")
_EPOCH = re.compile(r"epoch-(\d+)")


def epoch_dir(out: Path, epoch: int) -> Path:
    return out / f"epoch-{epoch}"


def _write_json(path: Path, value: Any) -> None:
    atomic_write(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(
            f"{path}: unreadable ({exc})", "restore it from a backup or start a new run"
        ) from None


# ---- train.json and history.json --------------------------------------------------------------
def write_config(out: Path, config: dict[str, Any]) -> None:
    _write_json(out / TRAIN_FILE, config)


def read_config(out: Path) -> dict[str, Any]:
    """The run's train.json; a clear HarnessError when `out` is not a training run."""
    config = _read_json(out / TRAIN_FILE)
    if not isinstance(config, dict) or "module" not in config:
        raise HarnessError(
            f"{out}: not a training run (no {TRAIN_FILE})",
            "give --resume the --out directory of an earlier `mcp-harness train`",
        )
    return config


def write_history(out: Path, history: dict[str, Any]) -> None:
    _write_json(out / HISTORY_FILE, history)


def read_history(out: Path) -> dict[str, Any] | None:
    history = _read_json(out / HISTORY_FILE)
    return history if isinstance(history, dict) else None


# ---- checkpoints --------------------------------------------------------------------------------
def save(out: Path, epoch: int, experiences: dict[str, Any], entry: dict[str, Any]) -> Path:
    """Copy every experience (`transfer.snapshot`: a file one under its writer lock, a pool
    one as a file copy of its rows) into `<out>/epoch-<epoch>`,
    replacing an earlier checkpoint of that epoch (a partial one) only once the copy is whole."""
    out.mkdir(parents=True, exist_ok=True)
    target = epoch_dir(out, epoch)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=out))
    try:
        for name, experience in experiences.items():
            snapshot(experience, scratch / EXPERIENCE_DIR / name)
        _write_json(scratch / CHECKPOINT_FILE, {**entry, "epoch": epoch})
        fsync_dir(scratch)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=out))
            os.replace(target, old / target.name)
            os.replace(scratch, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(scratch, target)
        fsync_dir(out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return target


def checkpoints(out: Path) -> list[int]:
    """Epochs with a whole checkpoint in `out`, ascending (hidden temp dirs are not counted)."""
    found = []
    for path in out.glob("epoch-*"):
        match = _EPOCH.fullmatch(path.name)
        if match and (path / CHECKPOINT_FILE).is_file():
            found.append(int(match.group(1)))
    return sorted(found)


def read_checkpoint(out: Path, epoch: int) -> dict[str, Any]:
    entry = _read_json(epoch_dir(out, epoch) / CHECKPOINT_FILE)
    if not isinstance(entry, dict):
        raise HarnessError(
            f"{epoch_dir(out, epoch)}: checkpoint without {CHECKPOINT_FILE}",
            "remove that directory to resume from the checkpoint before it",
        )
    return entry


def clean_scratch(out: Path) -> None:
    """Remove temp dirs a crash left behind while writing a checkpoint."""
    for path in out.glob(".epoch-*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def restore(out: Path, epoch: int, targets: dict[str, Path]) -> None:
    """Put checkpoint `epoch`'s copy of each file experience back at its path in `targets`
    (a pool experience is shared and never rewound: a resumed run goes on with it as it is).

    Each tensor is copied next to its live directory first and then swapped in with two renames,
    so a crash leaves either the old or the restored tensor (plus a hidden `.…old-` dir at worst).
    Nothing may have the tensors open for writing meanwhile; load the module afterwards.
    """
    source = epoch_dir(out, epoch) / EXPERIENCE_DIR
    missing = [name for name in targets if not (source / name / "shape").is_file()]
    if missing:
        raise HarnessError(
            f"{epoch_dir(out, epoch)}: checkpoint has no experience {', '.join(missing)}",
            "the module's experience changed since this run started; start a new run",
        )
    for name, live in targets.items():
        live = Path(live)
        live.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{live.name}.restore-", dir=live.parent))
        try:
            shutil.copytree(source / name, staged / "tensor", ignore=_SKIP)
            old = staged / "old"
            if live.exists():
                os.replace(live, old)
            os.replace(staged / "tensor", live)
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(staged)
        fsync_dir(live.parent)
