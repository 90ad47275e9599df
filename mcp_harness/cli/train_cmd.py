"""`mcp-harness train` (train a module's experience on a dataset of tasks) and
`mcp-harness dataset from-harvest` (a dataset from captured Claude Code work).

Training changes the module's own experience tensors (that is the point); every epoch is
checkpointed under the run directory (`training.checkpoints`), so `--resume DIR` can restore
the experience of the last checkpoint and go on, and any earlier state can be copied back.
The run itself is `training.job` (shared with the MCP training job), its loop `Trainer.fit`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from mcp_harness.errors import HarnessError

BUDGET_EXIT = 3


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train a module's experience on a dataset of tasks",
        description="Train a module in place (forward, loss, backward, StSGD step per batch) on "
        "a JSONL dataset of tasks, gated on --val; checkpoints, history, step log and a plot go "
        "to --out. Measure it on other tasks with `mcp-harness eval`. Exit status 2: bad "
        "input (nothing ran); 3: the budget stopped the run (after a checkpoint; continue "
        "with --resume).",
    )
    train.add_argument(
        "module",
        nargs="?",
        help="a module name (built-in or under the data dir) or directory "
        "(with --resume: optional, must be the run's module)",
    )
    train.add_argument("--data", type=Path, metavar="FILE", help="training tasks (JSON Lines)")
    train.add_argument(
        "--val",
        type=Path,
        metavar="FILE",
        help="the val set (other tasks, same format): measured before training and after "
        "every epoch, and the validation gate of every step (unless --no-gate)",
    )
    train.add_argument(
        "--no-gate",
        dest="gate",
        action="store_const",
        const=False,
        default=None,
        help="apply every step without checking it against the val set",
    )
    train.add_argument(
        "--second-order",
        dest="second_order",
        action="store_const",
        const=True,
        default=None,
        help="the kernel critiques and may revise every first-order reflection; the step's "
        "trace (mcp-harness trace show) holds both orders",
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
        "check is `true` (or --check CMD): edit each check to one that fails before the task "
        "is done (train and eval refuse checks that pass on the fresh workspace).",
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
def parse_dims(items: list[str]) -> dict[str, int]:
    """`--dim NAME=SIZE` options as a dict."""
    dims = {}
    for item in items:
        name, sep, size = item.partition("=")
        if not sep or not name or not size.isdigit():
            raise HarnessError(f"--dim {item!r} is not NAME=SIZE", "write e.g. --dim steps=4")
        dims[name] = int(size)
    return dims


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on this command line (None = not given)."""
    from mcp_harness.training.job import DEFAULTS

    given = {k: getattr(args, k) for k in DEFAULTS if k != "dims" and getattr(args, k) is not None}
    if args.dim:
        given["dims"] = parse_dims(args.dim)
    return given


# ---- progress -----------------------------------------------------------------------------------
class Progress:
    """A `\\r`-updated bar on a terminal, one line per batch otherwise (`trainer.Progress`)."""

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
        """A transient note (a terminal only), e.g. while the val set runs."""
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
def _train(args: argparse.Namespace) -> int:
    import asyncio

    from mcp_harness.kernels.runner import describe
    from mcp_harness.training import checkpoints, job

    given = _given(args)
    if args.resume is not None:
        if args.out is not None:
            raise HarnessError(
                "--out and --resume together", "a resumed run stays in its directory"
            )
        run = job.resume(args.resume, given, args.module, args.data, args.val)
    elif not args.module or args.data is None:
        raise HarnessError(
            "train needs a module and --data (or --resume DIR)",
            "e.g. mcp-harness train coder --data tasks.jsonl --val val.jsonl",
        )
    else:
        run = job.start(args.module, args.data, args.val, given, args.out)
    progress = Progress(sys.stderr if args.json else sys.stdout)
    try:
        asyncio.run(job.train(run, progress, keep_work=args.keep_work))
    except KeyboardInterrupt:
        progress.line(f"interrupted; to continue: {job.RESUME_HINT.format(out=run.out)}")
        raise
    if args.json:
        print(json.dumps(job.result(run), indent=2, default=str))
        return BUDGET_EXIT if run.stopped == "budget" else 0
    if run.stopped == "budget":
        progress.line(f"budget stop{run.where}: {run.notes[0]}")
        progress.line(
            f"  spent {describe(run.spent)}; the experience is saved in checkpoint "
            f"epoch-{checkpoints.checkpoints(run.out)[-1]}"
        )
        progress.line(f"  resume with: {job.RESUME_HINT.format(out=run.out)} (and a larger budget)")
    else:
        before = run.history.get("before")
        last = run.history["epochs"][-1] if run.history["epochs"] else {}
        count = len(run.history["epochs"])
        summary = f"done: {count} epoch{'s' if count != 1 else ''}"
        if before and "val_success" in last:
            summary += (
                f"; val success {100 * before['val_success']:.0f}% -> "
                f"{100 * last['val_success']:.0f}%"
            )
        progress.line(summary)
    for note in run.notes[1:] if run.stopped == "budget" else run.notes:
        progress.line(f"note: {note}")
    progress.line(
        f"history {run.out / checkpoints.HISTORY_FILE}, steps "
        f"{run.out / checkpoints.STEPS_FILE}, plot {run.out / checkpoints.PLOT_FILE}, "
        f"checkpoints {', '.join(f'epoch-{n}' for n in checkpoints.checkpoints(run.out))}"
    )
    if run.work:
        progress.line(f"task workspaces and traces kept in {run.work}")
    progress.line(f"kernel {run.kernel.summary()}")
    return BUDGET_EXIT if run.stopped == "budget" else 0


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
