"""A training run as `mcp-harness train` and the MCP `module_train_start` job make it: options,
the run directory (`training.checkpoints`), resume, and `train`, which drives the one training
loop (`Trainer.fit`) and checkpoints every epoch and every stop.

`start` and `resume` check everything (options, kernel, module, task sets, the right to edit
a pool experience) before anything changes; the caller then runs `await train(run, progress)`
and reads `result(run)`.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_harness.errors import HarnessError
from mcp_harness.experience.backend import is_pool_address
from mcp_harness.training import checkpoints

if TYPE_CHECKING:
    from mcp_harness.training.trainer import Progress

DEFAULTS: dict[str, Any] = {
    "epochs": 3,
    "batch": 4,
    "lr": 0.2,
    "kernel": None,
    "dims": {},
    "max_calls": None,
    "max_tokens": None,
    "max_cost": None,
    "gate": True,
    "second_order": False,
}
RESUME_HINT = "mcp-harness train --resume {out}"


@dataclass
class TrainingRun:
    out: Path
    config: dict[str, Any]  # train.json
    options: dict[str, Any]  # DEFAULTS, filled in
    history: dict[str, Any]  # history.json (`Trainer.fit`'s)
    module: Any
    train: list[Any]
    val: list[Any] | None
    kernel: Any
    resumed_from: int | None = None  # the checkpoint a resumed run started from
    stopped: str | None = None  # "budget" or "interrupted"
    spent: Any = None  # what the budget stop had spent
    where: str = ""  # where a budget stop came, e.g. " in epoch 2 after 3 of 8 tasks"
    work: Path | None = None  # the task workspaces, when kept
    notes: list[str] = field(default_factory=list)  # the budget message first, if it stopped


def check_options(options: dict[str, Any]) -> None:
    for key, low in (("epochs", 1), ("batch", 1)):
        if options[key] < low:
            raise HarnessError(f"--{key} is {options[key]}", f"give --{key} {low} or more")
    if not options["lr"] > 0:
        raise HarnessError(f"--lr is {options['lr']}", "give a learning rate > 0, e.g. --lr 0.2")


def check_trainable(loaded: Any) -> None:
    """Refuse a module whose pool experience this database role may not edit."""
    from mcp_harness.experience.store import Experience

    for store in loaded.experience.values():
        if not isinstance(store, Experience):
            store.check_trainable()


def _kernel(options: dict[str, Any]) -> Any:
    from mcp_harness.kernels.config import make_kernel
    from mcp_harness.kernels.runner import Budget

    limits = [options["max_calls"], options["max_tokens"], options["max_cost"]]
    budget = None if all(v is None for v in limits) else Budget(*limits)
    return make_kernel(options["kernel"], budget=budget)


def _task_sets(config: dict[str, Any], module: Any, dims: dict[str, int]):
    from mcp_harness.training.dataset import load_task_sets

    val = Path(config["val"]) if config.get("val") else None
    return load_task_sets(module, Path(config["data"]), val, dims)


def _default_out(module_name: str) -> Path:
    from mcp_harness.paths import data_home

    base = data_home() / "runs" / f"train-{module_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def start(
    module: str,
    data: Path,
    val: Path | None = None,
    given: dict[str, Any] | None = None,
    out: Path | None = None,
) -> TrainingRun:
    """A new run of `module` (a name or directory; a built-in trains its copy under the data
    dir) on `data`, gated on `val`; `given` overrides DEFAULTS. Writes the run's config, history
    and the epoch-0 checkpoint into `out` (default `<home>/runs/train-…`) once all is checked."""
    from mcp_harness.runtime import module as modules

    options = {**DEFAULTS, **(given or {})}
    check_options(options)
    kernel = _kernel(options)
    loaded = modules.load(module)
    try:
        return _started(loaded, data, val, options, kernel, out)
    except BaseException:
        loaded.close()
        raise


def _started(
    loaded: Any,
    data: Path,
    val: Path | None,
    options: dict[str, Any],
    kernel: Any,
    out: Path | None,
) -> TrainingRun:
    from mcp_harness.training.trainer import new_history

    config = {
        "version": 1,
        "module": str(loaded.path),
        "module_name": loaded.name,
        "experience": {name: str(e.path) for name, e in loaded.experience.items()},
        "data": str(data.expanduser().absolute()),
        "val": str(val.expanduser().absolute()) if val else None,
        "options": options,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    train, val_set = _task_sets(config, loaded, options["dims"])
    check_trainable(loaded)
    out = (out.expanduser() if out else _default_out(loaded.name)).absolute()
    if (out / checkpoints.TRAIN_FILE).exists():
        raise HarnessError(
            f"{out}: already a training run", f"continue it: {RESUME_HINT.format(out=out)}"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HarnessError(f"{out}: exists and is not empty", "give --out a new or empty directory")
    out.mkdir(parents=True, exist_ok=True)
    checkpoints.write_config(out, config)
    history = new_history(loaded.name)
    checkpoints.save(out, 0, loaded.experience, {"complete": True, "examples_done": 0})
    checkpoints.write_history(out, history)
    return TrainingRun(out, config, options, history, loaded, train, val_set, kernel)


def resume(
    out: Path,
    given: dict[str, Any] | None = None,
    module: str | None = None,
    data: Path | None = None,
    val: Path | None = None,
) -> TrainingRun:
    """The run in `out`, its experience restored from its last checkpoint, to go on with `train`
    (`given`, `data` and `val` override the run's; `module`, if given, must be the run's)."""
    from mcp_harness.runtime import module as modules

    out = out.expanduser().absolute()
    if not out.is_dir():
        raise HarnessError(f"{out}: no such directory", "give --resume a training run's --out")
    config = checkpoints.read_config(out)
    if module and modules.resolve(module) != Path(config["module"]):
        raise HarnessError(
            f"{out} trained module {config['module']}, not {module!r}",
            f"resume it without a module argument: {RESUME_HINT.format(out=out)}",
        )
    options = {**DEFAULTS, **config.get("options", {}), **(given or {})}
    check_options(options)
    kernel = _kernel(options)
    if data is not None:
        config["data"] = str(data.expanduser().absolute())
    if val is not None:
        config["val"] = str(val.expanduser().absolute())
    checkpoints.clean_scratch(out)
    saved = checkpoints.checkpoints(out)
    if not saved:
        raise HarnessError(f"{out}: no checkpoint to resume from", "start a new run")
    last = saved[-1]
    entry = checkpoints.read_checkpoint(out, last)
    if entry.get("complete") and last >= options["epochs"]:
        raise HarnessError(
            f"{out}: already trained {last} epoch{'s' if last != 1 else ''}",
            f"give the new total, e.g. --epochs {last + 2}, to train more",
        )
    history = checkpoints.read_history(out) or {"module": config.get("module_name"), "before": None}
    history["epochs"] = [e for e in history.get("epochs", []) if e.get("epoch", 0) < last]
    if last > 0:
        history["epochs"].append(entry)  # `Trainer.fit` goes on after it, or inside it
    history["status"] = "running"
    trained = config["experience"]
    targets = {  # the file experiences: a pool one goes on as it is (`checkpoints.restore`)
        name: Path(where) for name, where in trained.items() if not is_pool_address(where)
    }
    if not all((path / "shape").is_file() for path in targets.values()):
        checkpoints.restore(out, last, targets)  # a tensor was deleted: bring it back first
    loaded = modules.load(config["module"])
    try:
        if set(loaded.experience) != set(trained):
            raise HarnessError(
                f"module {config['module']} now has experience {sorted(loaded.experience)}, "
                f"the run trained {sorted(trained)}",
                "start a new run",
            )
        train, val_set = _task_sets(config, loaded, options["dims"])  # before anything changes
        check_trainable(loaded)
    finally:
        loaded.close()
    checkpoints.restore(out, last, targets)
    loaded = modules.load(config["module"])  # the restored experience
    config["options"] = options
    checkpoints.write_config(out, config)
    checkpoints.write_history(out, history)
    return TrainingRun(
        out, config, options, history, loaded, train, val_set, kernel, resumed_from=last
    )


def describe(run: TrainingRun) -> str:
    """One line: what is trained on what, how, and where its files go."""
    options = run.options
    return (
        f"training {run.module.name} on {len(run.train)} tasks"
        + (f", {len(run.val)} in the val set" if run.val else "")
        + f" ({run.kernel.name} kernel, batch {options['batch']}, lr {options['lr']:g}"
        + (", no gate" if run.val and not options["gate"] else "")
        + (", second-order reflection" if options["second_order"] else "")
        + f"); run files: {run.out}"
    )


async def train(run: TrainingRun, progress: Progress, keep_work: bool = False) -> None:
    """Run `Trainer.fit` on the run, checkpointing every epoch and every stop. A budget stop
    returns (`run.stopped == "budget"`, the message in `run.notes[0]`); a cancellation is saved
    as "interrupted" and raised again. The task workspaces go afterwards unless `keep_work`."""
    from mcp_harness.kernels.runner import BudgetExceeded
    from mcp_harness.training.trainer import Trainer

    workroot = Path(tempfile.mkdtemp(prefix="work-", dir=run.out))
    log = run.out / checkpoints.STEPS_FILE
    trainer = Trainer(
        run.module, run.kernel, workroot, dims=run.options["dims"], lr=run.options["lr"], log=log
    )
    if log.exists():  # a resumed run numbers its steps on
        with log.open("rb") as handle:
            trainer.optimizer.steps = sum(1 for _ in handle)
    if run.resumed_from is not None:
        last = run.history["epochs"][-1] if run.history["epochs"] else None
        where = (
            f"epoch {last['epoch']} at task {last['examples_done'] + 1}"
            if last and not last.get("complete")
            else f"epoch {run.resumed_from + 1}"
        )
        progress.line(f"resuming {run.out} from checkpoint epoch-{run.resumed_from}: {where}")
    progress.line(describe(run))

    def save(entry: dict[str, Any] | None) -> None:
        if entry is not None:
            checkpoints.save(run.out, entry["epoch"], run.module.experience, entry)
        checkpoints.write_history(run.out, run.history)
        _plot(run)

    try:
        await trainer.fit(
            run.train,
            run.options["epochs"],
            run.options["batch"],
            run.val,
            gate=run.options["gate"],
            second_order=run.options["second_order"],
            history=run.history,
            progress=progress,
            save=save,
        )
    except BudgetExceeded as exc:
        run.stopped, run.spent = "budget", exc.spent
        last = run.history["epochs"][-1] if run.history["epochs"] else None
        if last and not last.get("complete"):
            run.where = f" in epoch {last['epoch']} after {last['examples_done']} of "
            run.where += f"{len(run.train)} tasks"
        run.notes.insert(0, exc.message)
    except asyncio.CancelledError:
        run.stopped = "interrupted"
        raise
    finally:
        run.module.close()  # its pool connections
        if keep_work:
            run.work = workroot
        else:
            shutil.rmtree(workroot, ignore_errors=True)


def _plot(run: TrainingRun) -> None:
    from mcp_harness.training.plot import plot_history

    try:
        plot_history(run.history, run.out / checkpoints.PLOT_FILE)
    except HarnessError as exc:
        if exc.message not in run.notes:
            run.notes.append(exc.message)


def result(run: TrainingRun) -> dict[str, Any]:
    """The run as JSON: status, per-epoch history, files, what the kernel spent, notes."""
    usage = run.kernel.usage
    return {
        "out": str(run.out),
        "module": run.config["module"],
        "status": run.history["status"],
        "stopped": run.notes[0] if run.stopped == "budget" else None,
        "before": run.history.get("before"),
        "epochs": run.history["epochs"],
        "checkpoints": [
            str(checkpoints.epoch_dir(run.out, n)) for n in checkpoints.checkpoints(run.out)
        ],
        "history": str(run.out / checkpoints.HISTORY_FILE),
        "steps": str(run.out / checkpoints.STEPS_FILE),
        "plot": str(run.out / checkpoints.PLOT_FILE),
        "work": str(run.work) if run.work else None,
        "spent": {
            "calls": usage.calls,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cost_usd": usage.cost_usd,
        },
        "notes": run.notes,
    }
