"""`mcp-harness train` (train a module's experience on a dataset of tasks) and
`mcp-harness dataset from-harvest` (a dataset from captured Claude Code work).

Training changes the module's own experience tensors (that is the point); every epoch is
checkpointed under the run directory (`training.checkpoints`), so `--resume DIR` can restore
the experience of the last checkpoint and go on, and any earlier state can be copied back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mcp_harness.errors import HarnessError

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
}
BUDGET_EXIT = 3
RESUME_HINT = "mcp-harness train --resume {out}"


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train a module's experience on a dataset of tasks",
        description="Train a module (forward, loss, backward, StSGD step per batch) on a JSONL "
        "dataset of tasks; checkpoints, history, step log and a plot go to --out. Exit "
        "status 3: the budget stopped the run (after a checkpoint; continue with --resume).",
    )
    train.add_argument(
        "module",
        nargs="?",
        help="a module name (built-in or under the data dir) or directory "
        "(with --resume: optional, must be the run's module)",
    )
    train.add_argument("--data", type=Path, metavar="FILE", help="training tasks (JSON Lines)")
    train.add_argument(
        "--heldout",
        type=Path,
        metavar="FILE",
        help="held-out tasks: evaluated before training and after every epoch, and the "
        "validation gate of every step (unless --no-gate)",
    )
    train.add_argument(
        "--no-gate",
        dest="gate",
        action="store_const",
        const=False,
        default=None,
        help="apply every step without checking it against the held-out set",
    )
    train.add_argument("--epochs", type=int, default=None, help="total epochs (default 3)")
    train.add_argument("--batch", type=int, default=None, help="tasks per step (default 4)")
    train.add_argument("--lr", type=float, default=None, help="learning rate (default 0.2)")
    train.add_argument("--kernel", default=None, help="kernel name (default: configured/offline)")
    train.add_argument(
        "--dim", action="append", default=[], metavar="NAME=SIZE", help="override a dim (steps=4)"
    )
    train.add_argument("--max-calls", type=int, default=None, help="budget: kernel calls")
    train.add_argument("--max-tokens", type=int, default=None, help="budget: tokens")
    train.add_argument("--max-cost", type=float, default=None, metavar="USD", help="budget: USD")
    train.add_argument(
        "--out", type=Path, default=None, help="run directory (default <home>/runs/train-…)"
    )
    train.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue the training run in DIR from its last checkpoint (options given here "
        "override the run's; --epochs is the new total)",
    )
    train.add_argument(
        "--keep-work", action="store_true", help="keep the task workdirs and run traces"
    )
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    train.set_defaults(run=_train)

    dataset = commands.add_parser("dataset", help="make training datasets for `train`")
    sub = dataset.add_subparsers(dest="dataset_command", metavar="ACTION")
    sub.required = True
    harvested = sub.add_parser(
        "from-harvest",
        help="a dataset (task -> decision, command) from captured Bash calls",
        description="Write one training task per captured, successful Bash call that has a "
        "task, a description and a command. Harvested calls have no validator, so every "
        "check is `true` (or --check CMD): the dataset teaches decisions and commands; edit "
        "the checks of the tasks you want to measure.",
    )
    harvested.add_argument("out", type=Path, help="the dataset file to write (JSON Lines)")
    harvested.add_argument("--project", default=None, help="a project slug or directory")
    harvested.add_argument(
        "--check", default="exit0", help="check command for every task (default exit0: `true`)"
    )
    source = harvested.add_mutually_exclusive_group()
    source.add_argument(
        "--transcripts",
        type=Path,
        default=None,
        help="Claude Code projects dir to import first (default ~/.claude/projects)",
    )
    source.add_argument("--no-transcripts", action="store_true", help="skip transcript import")
    harvested.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    harvested.add_argument("--json", action="store_true")
    harvested.set_defaults(run=_from_harvest)


# ---- options ------------------------------------------------------------------------------------
def _dims(items: list[str]) -> dict[str, int]:
    dims = {}
    for item in items:
        name, sep, size = item.partition("=")
        if not sep or not name or not size.isdigit():
            raise HarnessError(f"--dim {item!r} is not NAME=SIZE", "write e.g. --dim steps=4")
        dims[name] = int(size)
    return dims


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on this command line (None = not given)."""
    given = {key: getattr(args, key) for key in DEFAULTS if key != "dims"}
    given = {k: v for k, v in given.items() if v is not None}
    if args.dim:
        given["dims"] = _dims(args.dim)
    return given


def _check_options(options: dict[str, Any]) -> None:
    for key, low in (("epochs", 1), ("batch", 1)):
        if options[key] < low:
            raise HarnessError(f"--{key} is {options[key]}", f"give --{key} {low} or more")
    if not options["lr"] > 0:
        raise HarnessError(f"--lr is {options['lr']}", "give a learning rate > 0, e.g. --lr 0.2")


def _budget(options: dict[str, Any]):
    from mcp_harness.kernels.runner import Budget

    limits = [options["max_calls"], options["max_tokens"], options["max_cost"]]
    return None if all(v is None for v in limits) else Budget(*limits)


# ---- the dataset against the module -------------------------------------------------------------
def _check_dataset(path: Path, examples: list[Any], module: Any, dims: dict[str, int]) -> None:
    graph = module.graph(dims)
    needed = set(module.spec.get("inputs", {})) - {"workdir"}
    for number, example in enumerate(examples, start=1):
        missing = sorted(needed - set(example.inputs))
        if missing:
            raise HarnessError(
                f"{path}: task {number} has no input {missing[0]!r}",
                f"give every task the inputs {sorted(needed)} (workdir is made by the trainer)",
            )
        for name in example.targets:
            if name not in graph.nodes:
                raise HarnessError(
                    f"{path}: task {number}: target for unknown node {name!r}",
                    f"name nodes of module {module.name!r}: {', '.join(graph.nodes)}",
                )


def _load_data(config: dict[str, Any], module: Any, dims: dict[str, int]):
    from mcp_harness.training.trainer import load_dataset

    train = load_dataset(Path(config["data"]))
    _check_dataset(Path(config["data"]), train, module, dims)
    heldout = None
    if config.get("heldout"):
        heldout = load_dataset(Path(config["heldout"]))
        _check_dataset(Path(config["heldout"]), heldout, module, dims)
    return train, heldout


# ---- progress -----------------------------------------------------------------------------------
class Progress:
    """A `\\r`-updated bar on a terminal, one line per batch otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.open = 0  # length of the bar line being updated in place

    def bar(self, prefix: str, done: int, total: int, suffix: str) -> None:
        width = 24
        filled = round(width * done / total) if total else width
        line = f"{prefix} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {suffix}"
        if self.tty:
            self.stream.write("\r" + line.ljust(self.open))
            self.open = max(self.open, len(line))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        """A transient note (a terminal only), e.g. while the held-out set runs."""
        if self.tty:
            self.stream.write("\r" + text.ljust(self.open))
            self.open = max(self.open, len(text))
            self.stream.flush()

    def line(self, text: str) -> None:
        if self.open:
            self.stream.write("\r" + " " * self.open + "\r")
            self.open = 0
        self.stream.write(text + "\n")
        self.stream.flush()


# ---- a run --------------------------------------------------------------------------------------
@dataclass
class Run:
    out: Path
    config: dict[str, Any]
    options: dict[str, Any]
    history: dict[str, Any]
    start_epoch: int
    carried: dict[str, Any] | None = None  # the partial entry of the epoch to continue
    resumed_from: int | None = None
    spent: Any = None
    where: str = ""  # where a stop came, e.g. " in epoch 2 after 3 of 8 tasks"
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)


def _new_entry(epoch: int, total: int) -> dict[str, Any]:
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


def _default_out(module_name: str) -> Path:
    from mcp_harness.paths import data_home

    base = data_home() / "runs" / f"train-{module_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _fresh(args: argparse.Namespace, given: dict[str, Any]):
    from mcp_harness.runtime import module as modules
    from mcp_harness.training import checkpoints

    if not args.module or args.data is None:
        raise HarnessError(
            "train needs a module and --data (or --resume DIR)",
            "e.g. mcp-harness train coder --data tasks.jsonl --heldout heldout.jsonl",
        )
    options = {**DEFAULTS, **given}
    _check_options(options)
    module = modules.load(args.module)
    config = {
        "version": 1,
        "module": str(module.path),
        "module_name": module.name,
        "experience": {name: str(e.path) for name, e in module.experience.items()},
        "data": str(args.data.expanduser().absolute()),
        "heldout": str(args.heldout.expanduser().absolute()) if args.heldout else None,
        "options": options,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    data = _load_data(config, module, options["dims"])
    out = (args.out.expanduser().absolute() if args.out else _default_out(module.name)).absolute()
    if (out / checkpoints.TRAIN_FILE).exists():
        raise HarnessError(
            f"{out}: already a training run", f"continue it: {RESUME_HINT.format(out=out)}"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HarnessError(f"{out}: exists and is not empty", "give --out a new or empty directory")
    out.mkdir(parents=True, exist_ok=True)
    checkpoints.write_config(out, config)
    history = {"module": module.name, "status": "running", "before": None, "epochs": []}
    checkpoints.save(out, 0, module.experience, {"complete": True, "examples_done": 0})
    checkpoints.write_history(out, history)
    return Run(out, config, options, history, start_epoch=1), module, data


def _resumed(args: argparse.Namespace, given: dict[str, Any]):
    from mcp_harness.runtime import module as modules
    from mcp_harness.training import checkpoints

    out = args.resume.expanduser().absolute()
    if not out.is_dir():
        raise HarnessError(f"{out}: no such directory", "give --resume a training run's --out")
    config = checkpoints.read_config(out)
    if args.module and modules.resolve(args.module) != Path(config["module"]):
        raise HarnessError(
            f"{out} trained module {config['module']}, not {args.module!r}",
            f"resume it without a module argument: {RESUME_HINT.format(out=out)}",
        )
    if args.out is not None:
        raise HarnessError("--out and --resume together", "a resumed run stays in its directory")
    options = {**DEFAULTS, **config.get("options", {}), **given}
    _check_options(options)
    if args.data is not None:
        config["data"] = str(args.data.expanduser().absolute())
    if args.heldout is not None:
        config["heldout"] = str(args.heldout.expanduser().absolute())
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
        history["epochs"].append(entry)
    history["status"] = "running"
    targets = {name: Path(path) for name, path in config["experience"].items()}
    if not all((path / "shape").is_file() for path in targets.values()):
        checkpoints.restore(out, last, targets)  # a tensor was deleted: bring it back first
    module = modules.load(config["module"])
    if set(module.experience) != set(targets):
        raise HarnessError(
            f"module {config['module']} now has experience {sorted(module.experience)}, the run "
            f"trained {sorted(targets)}",
            "start a new run",
        )
    data = _load_data(config, module, options["dims"])  # checked before anything changes
    checkpoints.restore(out, last, targets)
    module = modules.load(config["module"])  # the restored experience
    config["options"] = options
    checkpoints.write_config(out, config)
    checkpoints.write_history(out, history)
    if entry.get("complete"):
        run = Run(out, config, options, history, start_epoch=last + 1, resumed_from=last)
    else:
        run = Run(out, config, options, history, last, carried=entry, resumed_from=last)
    return run, module, data


def _trainer(module: Any, kernel: Any, workroot: Path, run: Run):
    from mcp_harness.training.checkpoints import STEPS_FILE
    from mcp_harness.training.trainer import Trainer

    log = run.out / STEPS_FILE
    trainer = Trainer(
        module, kernel, workroot, dims=run.options["dims"], lr=run.options["lr"], log=log
    )
    if log.exists():  # a resumed run numbers its steps on
        with log.open("rb") as handle:
            trainer.optimizer.steps = sum(1 for _ in handle)
    return trainer


def _metrics(evaluation: Any) -> dict[str, Any]:
    return {
        "heldout_loss": evaluation.loss,
        "heldout_success": evaluation.success,
        "heldout_passed": sum(evaluation.passed),
        "heldout_total": len(evaluation.passed),
    }


def _heldout_text(metrics: dict[str, Any]) -> str:
    return (
        f"held-out loss {metrics['heldout_loss']:.3f}, success {metrics['heldout_passed']}/"
        f"{metrics['heldout_total']} ({100 * metrics['heldout_success']:.0f}%)"
    )


def _epoch_text(entry: dict[str, Any], epochs: int) -> str:
    loss = entry["train_loss"]
    parts = [
        f"epoch {entry['epoch']}/{epochs}: train loss " + ("-" if loss is None else f"{loss:.3f}"),
        f"steps {entry['steps_accepted']} accepted / {entry['steps_rejected']} rejected / "
        f"{entry['steps_unchanged']} unchanged",
    ]
    if "heldout_loss" in entry:
        parts.append(_heldout_text(entry))
    return ", ".join(parts) + f" [{entry['seconds']:.1f} s]"


def _save(run: Run, module: Any, epoch: int, entry: dict[str, Any]) -> None:
    from mcp_harness.training import checkpoints

    checkpoints.save(run.out, epoch, module.experience, entry)
    epochs = [e for e in run.history["epochs"] if e["epoch"] != epoch]
    run.history["epochs"] = sorted([*epochs, entry], key=lambda e: e["epoch"])
    checkpoints.write_history(run.out, run.history)
    _plot(run)


def _plot(run: Run) -> None:
    from mcp_harness.training.checkpoints import PLOT_FILE
    from mcp_harness.training.plot import plot_history

    try:
        plot_history(run.history, run.out / PLOT_FILE)
    except HarnessError as exc:
        if exc.message not in run.notes:
            run.notes.append(exc.message)


async def _loop(run: Run, module: Any, trainer: Any, data: Any, progress: Progress) -> None:
    from mcp_harness.kernels.runner import BudgetExceeded
    from mcp_harness.training import checkpoints

    train, heldout = data
    epochs, size = run.options["epochs"], run.options["batch"]
    gate = heldout if run.options["gate"] else None
    entry: dict[str, Any] | None = None
    epoch = run.start_epoch
    try:
        if heldout and run.history.get("before") is None and run.start_epoch == 1:
            progress.status("held-out before training…")
            run.history["before"] = _metrics(await trainer.evaluate(heldout))
            checkpoints.write_history(run.out, run.history)
            progress.line("before training: " + _heldout_text(run.history["before"]))
        for epoch in range(run.start_epoch, epochs + 1):
            entry = run.carried or _new_entry(epoch, len(train))
            run.carried = None
            entry["examples"] = len(train)
            started = time.perf_counter()
            base_seconds = entry["seconds"]
            batches = -(-len(train) // size)
            for start in range(entry["examples_done"], len(train), size):
                loss, report = await trainer.step(train[start : start + size], gate)
                entry["batch_losses"].append(loss)
                if report.accepted:
                    entry["steps_accepted"] += 1
                elif report.plan.empty():
                    entry["steps_unchanged"] += 1
                else:
                    entry["steps_rejected"] += 1
                entry["examples_done"] = min(len(train), start + size)
                entry["train_loss"] = sum(entry["batch_losses"]) / len(entry["batch_losses"])
                entry["seconds"] = base_seconds + time.perf_counter() - started
                progress.bar(
                    f"epoch {epoch}/{epochs}",
                    -(-entry["examples_done"] // size),
                    batches,
                    f"batches, loss {entry['train_loss']:.3f}, steps "
                    f"{entry['steps_accepted']} accepted / {entry['steps_rejected']} rejected",
                )
            if heldout:
                progress.status(f"epoch {epoch}/{epochs}: held-out…")
                entry.update(_metrics(await trainer.evaluate(heldout)))
            entry["complete"] = True
            entry["seconds"] = base_seconds + time.perf_counter() - started
            entry.pop("stopped", None)
            _save(run, module, epoch, entry)
            progress.line(_epoch_text(entry, epochs))
            entry = None
        run.history["status"] = "complete"
        checkpoints.write_history(run.out, run.history)
    except (BudgetExceeded, asyncio.CancelledError) as exc:
        budget = isinstance(exc, BudgetExceeded)
        run.stopped = "budget" if budget else "interrupted"
        run.spent = exc.spent if budget else None
        run.history["status"] = run.stopped
        if entry is not None:  # the epoch stops here; resuming goes on from this example
            run.where = f" in epoch {epoch} after {entry['examples_done']} of {len(train)} tasks"
            entry["stopped"] = exc.message if budget else "interrupted"
            _save(run, module, epoch, entry)
        else:
            checkpoints.write_history(run.out, run.history)
            _plot(run)
        if not budget:
            raise
        run.notes.insert(0, exc.message)


def _train(args: argparse.Namespace) -> int:
    from mcp_harness.kernels.config import make_kernel
    from mcp_harness.kernels.runner import describe
    from mcp_harness.training import checkpoints

    given = _given(args)
    if args.resume is not None:
        run, module, data = _resumed(args, given)
    else:
        _check_options({**DEFAULTS, **given})
        make_kernel(given.get("kernel"), budget=_budget({**DEFAULTS, **given}))  # fail early
        run, module, data = _fresh(args, given)
    kernel = make_kernel(run.options["kernel"], budget=_budget(run.options))
    progress = Progress(sys.stderr if args.json else sys.stdout)
    if run.resumed_from is not None:
        where = (
            f"epoch {run.start_epoch} at task {run.carried['examples_done'] + 1}"
            if run.carried
            else f"epoch {run.start_epoch}"
        )
        progress.line(f"resuming {run.out} from checkpoint epoch-{run.resumed_from}: {where}")
    progress.line(
        f"training {module.name} on {len(data[0])} tasks"
        + (f", {len(data[1])} held out" if data[1] else "")
        + f" ({kernel.name} kernel, batch {run.options['batch']}, lr {run.options['lr']:g}"
        + (", no gate" if data[1] and not run.options["gate"] else "")
        + f"); run files: {run.out}"
    )
    workroot = Path(tempfile.mkdtemp(prefix="work-", dir=run.out))
    trainer = _trainer(module, kernel, workroot, run)
    try:
        asyncio.run(_loop(run, module, trainer, data, progress))
    except KeyboardInterrupt:
        progress.line(f"interrupted; to continue: {RESUME_HINT.format(out=run.out)}")
        raise
    finally:
        if not args.keep_work:
            shutil.rmtree(workroot, ignore_errors=True)
    result = _result(run, kernel, workroot if args.keep_work else None)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        if run.stopped == "budget":
            progress.line(f"budget stop{run.where}: {run.notes[0]}")
            progress.line(
                f"  spent {describe(run.spent)}; the experience is saved in checkpoint "
                f"epoch-{checkpoints.checkpoints(run.out)[-1]}"
            )
            progress.line(f"  resume with: {RESUME_HINT.format(out=run.out)} (and a larger budget)")
        else:
            before = run.history.get("before")
            last = run.history["epochs"][-1] if run.history["epochs"] else {}
            count = len(run.history["epochs"])
            summary = f"done: {count} epoch{'s' if count != 1 else ''}"
            if before and "heldout_success" in last:
                summary += (
                    f"; held-out success {100 * before['heldout_success']:.0f}% -> "
                    f"{100 * last['heldout_success']:.0f}%"
                )
            progress.line(summary)
        for note in run.notes[1:] if run.stopped == "budget" else run.notes:
            progress.line(f"note: {note}")
        progress.line(
            f"history {run.out / checkpoints.HISTORY_FILE}, steps "
            f"{run.out / checkpoints.STEPS_FILE}, plot {run.out / checkpoints.PLOT_FILE}, "
            f"checkpoints {', '.join(f'epoch-{n}' for n in checkpoints.checkpoints(run.out))}"
        )
        progress.line(f"kernel {kernel.summary()}")
    return BUDGET_EXIT if run.stopped == "budget" else 0


def _result(run: Run, kernel: Any, workroot: Path | None) -> dict[str, Any]:
    from mcp_harness.training import checkpoints

    usage = kernel.usage
    return {
        "out": str(run.out),
        "module": run.config["module"],
        "status": run.history["status"],
        "stopped": run.notes[0] if run.stopped else None,
        "before": run.history.get("before"),
        "epochs": run.history["epochs"],
        "checkpoints": [
            str(checkpoints.epoch_dir(run.out, n)) for n in checkpoints.checkpoints(run.out)
        ],
        "history": str(run.out / checkpoints.HISTORY_FILE),
        "steps": str(run.out / checkpoints.STEPS_FILE),
        "plot": str(run.out / checkpoints.PLOT_FILE),
        "work": str(workroot) if workroot else None,
        "spent": {
            "calls": usage.calls,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cost_usd": usage.cost_usd,
        },
        "notes": run.notes,
    }


# ---- dataset from-harvest ----------------------------------------------------------------------
def _from_harvest(args: argparse.Namespace) -> int:
    from mcp_harness.capture.transcripts import default_projects_root
    from mcp_harness.training.dataset import harvested_dataset, write_dataset

    out = args.out.expanduser().absolute()
    if out.exists() and not args.force:
        raise HarnessError(f"{out}: already exists", "choose another file or pass --force")
    root = args.transcripts
    if root is not None and not root.is_dir():
        raise HarnessError(f"{root}: no such directory", "pass the Claude Code projects dir")
    use_transcripts = not args.no_transcripts and (
        root is not None or default_projects_root().is_dir()
    )
    lines, seen = harvested_dataset(
        project=args.project,
        import_transcripts=use_transcripts,
        projects_root=root,
        check=args.check,
    )
    if not lines:
        raise HarnessError(
            f"none of the {seen} captured calls has a task, a description and a command and "
            "succeeded",
            "capture some work first (mcp-harness capture install), or check --project",
        )
    write_dataset(out, lines)
    if args.json:
        print(json.dumps({"out": str(out), "tasks": len(lines), "calls": seen}, indent=2))
    else:
        print(f"wrote {len(lines)} tasks to {out} (from {seen} captured calls)")
        check = "true" if args.check == "exit0" else args.check
        print(
            f"  every check is `{check}`: the dataset teaches decisions and commands; "
            "edit the checks (and add files) of tasks you want to measure"
        )
    return 0
