"""`training.png`: train / val loss and val success per epoch of a training run.

matplotlib is imported only here, when a plot is drawn (it is slow to import), and only its
Agg canvas is used: no pyplot, no display, no global backend switch.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError


def _points(entries: list[tuple[int, dict[str, Any]]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(e, float(m[key])) for e, m in entries if isinstance(m.get(key), int | float)]
    return [e for e, _ in pairs], [v for _, v in pairs]


def plot_history(history: dict[str, Any], path: Path) -> Path:
    """Draw `history` (see `checkpoints`) to the PNG `path`, atomically; returns `path`."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise HarnessError(
            "matplotlib is not installed: no training plot (pip install 'mcp-harness[plot]')",
            "pip install 'mcp-harness[plot]'",
        ) from None
    entries = [(0, history["before"])] if history.get("before") else []
    entries += [(int(m["epoch"]), m) for m in history.get("epochs", [])]
    figure = Figure(figsize=(8, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    loss_ax, success_ax = figure.subplots(1, 2)
    for key, label, style in (
        ("train_loss", "train loss", "o-"),
        ("val_loss", "val loss", "s--"),
    ):
        xs, ys = _points(entries, key)
        if xs:
            loss_ax.plot(xs, ys, style, label=label)
    loss_ax.set_title("loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylim(bottom=0)
    xs, ys = _points(entries, "val_success")
    if xs:
        success_ax.plot(xs, [100 * y for y in ys], "o-", color="tab:green", label="val")
    else:
        success_ax.text(0.5, 0.5, "no val set", ha="center", va="center")
    success_ax.set_title("val success (%)")
    success_ax.set_xlabel("epoch")
    success_ax.set_ylim(-5, 105)
    for ax in (loss_ax, success_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize="small")
    figure.suptitle(f"training {history.get('module', '')}".strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            figure.savefig(handle, format="png")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
