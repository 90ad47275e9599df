"""`mcp-harness train`, `mcp-harness eval` and `mcp-harness dataset from-harvest` as users run
them: the installed script on the built-in `coder` module, a private data home and a private
tmux server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from mcp_harness.capture.join import Call
from mcp_harness.cli.eval_cmd import scratch_module
from mcp_harness.experience.store import Row
from mcp_harness.runtime.module import resolve
from mcp_harness.training.dataset import dataset_from_calls
from mcp_harness.training.trainer import load_dataset
from tests.kernel_stubs import ApiStub

SCRIPT = str(Path(sys.executable).parent / "mcp-harness")
PNG = b"\x89PNG\r\n\x1a\n"
XZ = {
    "inputs": {"task": "Use xz to compress the data.csv file", "check": "test -f data.csv.xz"},
    "files": {"data.csv": "a,b\n"},
    "targets": {"decision": "Compress data.csv with xz", "command": "xz -k data.csv"},
}
DIST = {
    "inputs": {"task": "Make a directory named dist", "check": "test -d dist"},
    "targets": {"decision": "Create the dist directory", "command": "mkdir -p dist"},
}
VAL = {
    "inputs": {"task": "Compress data.csv with xz", "check": "test -f data.csv.xz"},
    "files": {"data.csv": "a,b\n"},
}
CHMOD = {  # the coder's seed experience does this at its first step
    "inputs": {"task": "Make a script executable", "check": "test -x script.sh"},
    "files": {"script.sh": "echo hi\n"},
}


def cli(*args: str, home: Path, runtime: Path | None = None, env: dict | None = None):
    environ = {**os.environ, "MCP_HARNESS_HOME": str(home), **(env or {})}
    for name in ("ANTHROPIC_API_KEY", "MCP_HARNESS_KERNEL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        if name not in (env or {}):
            environ.pop(name, None)
    if runtime is not None:
        environ["MCP_HARNESS_RUNTIME_DIR"] = str(runtime)
    return subprocess.run([SCRIPT, *args], env=environ, capture_output=True, text=True, timeout=120)


def jsonl(path: Path, *lines: dict) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_training_improves_val_and_resumes(
    harness_home: Path, runtime: Path, tmp_path: Path
) -> None:
    data = jsonl(tmp_path / "train.jsonl", XZ, DIST)
    val = jsonl(tmp_path / "val.jsonl", VAL)
    out = tmp_path / "run"
    done = cli(
        "train", "coder", "--data", str(data), "--val", str(val), "--epochs", "2",
        "--batch", "1", "--out", str(out), "--json", home=harness_home, runtime=runtime,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # progress went to stderr, one line per batch (no tty)
    assert "epoch 1/2 [############............] 1/2 batches, loss" in done.stderr
    assert result["status"] == "complete"
    assert result["before"]["val_success"] == 0.0
    assert [e["val_success"] for e in result["epochs"]] == [1.0, 1.0]
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    first = history["epochs"][0]
    assert first["complete"] and first["steps_accepted"] >= 1 and first["steps_rejected"] == 0
    assert first["batch_losses"][1] > 0  # `dist` failed before it was learnt
    assert (out / "training.png").read_bytes().startswith(PNG)
    for epoch in (0, 1, 2):
        for name in ("decision", "command"):
            assert (out / f"epoch-{epoch}" / "experience" / name / "shape").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no half checkpoint
    config = json.loads((out / "train.json").read_text())
    assert config["module"] == str(harness_home / "modules" / "coder")
    assert config["data"] == str(data) and config["val"] == str(val)
    assert len((out / "steps.jsonl").read_text().splitlines()) == 4

    # Undo the training by hand; --resume restores the last checkpoint, then goes on.
    live = harness_home / "modules" / "coder" / "experience"
    shutil.rmtree(live)
    shutil.copytree(out / "epoch-0" / "experience", live)
    done = cli("train", "--resume", str(out), "--epochs", "3", home=harness_home, runtime=runtime)
    assert done.returncode == 0, done.stderr
    assert "from checkpoint epoch-2: epoch 3" in done.stdout
    assert "epoch 3/3: train loss 0.000" in done.stdout and "done: 3 epochs" in done.stdout
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    assert history["epochs"][2]["batch_losses"] == [0.0, 0.0]  # restored: both pass at once
    assert history["epochs"][2]["val_success"] == 1.0
    assert (out / "epoch-3" / "experience" / "command" / "shape").is_file()
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5, 6]  # appended, numbered on

    again = cli("train", "--resume", str(out), home=harness_home, runtime=runtime)
    assert again.returncode == 2 and "already trained 3 epochs" in again.stderr


def test_second_order_training_records_both_orders_for_trace_show(
    harness_home: Path, runtime: Path, tmp_path: Path
) -> None:
    data = jsonl(tmp_path / "train.jsonl", XZ)
    out = tmp_path / "run"
    done = cli(
        "train", "coder", "--data", str(data), "--epochs", "1", "--batch", "1",
        "--second-order", "--out", str(out), home=harness_home, runtime=runtime,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "second-order reflection" in done.stdout
    assert json.loads((out / "train.json").read_text())["options"]["second_order"] is True
    [step] = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert step["second_order_records"] >= 2  # one critique per expert's reflection
    shown = cli("trace", "show", str(out), home=harness_home)
    assert shown.returncode == 0, shown.stderr
    assert f"({step['second_order_records']} of them second order)" in shown.stdout
    for node in ("command", "decision"):
        assert f"- order 1: ft_expert.symbolic_backward on {node}" in shown.stdout
        assert f"- order 2: ft_expert.symbolic_backward.critique on {node}" in shown.stdout
    assert "reviewed the reflection: kept" in shown.stdout  # the offline kernel keeps them


def test_budget_stop_checkpoints_and_resume_finishes_the_epoch(
    harness_home: Path, runtime: Path, tmp_path: Path
) -> None:
    """A billing kernel (OpenAI-compatible, served by a loopback stub: no network) whose every
    answer, `touch ok`, does both tasks at their first step."""
    lax = [{**line, "inputs": {**line["inputs"], "check": "test -f ok"}} for line in (XZ, DIST)]
    data = jsonl(tmp_path / "train.jsonl", *lax)
    out = tmp_path / "run"
    with ApiStub("openai", text="touch ok") as stub:
        env = {"OPENAI_BASE_URL": stub.base_url, "OPENAI_API_KEY": "sk-test"}
        done = cli(
            "train", "coder", "--data", str(data), "--kernel", "openai", "--batch", "1",
            "--epochs", "1", "--max-calls", "5", "--out", str(out),
            home=harness_home, runtime=runtime, env=env,
        )  # fmt: skip
        assert done.returncode == 3, done.stdout + done.stderr
        assert "budget stop in epoch 1 after 1 of 2 tasks" in done.stdout
        assert "spent 5 calls" in done.stdout and "Traceback" not in done.stderr
        assert stub.count == 5
        checkpoint = json.loads((out / "epoch-1" / "checkpoint.json").read_text())
        assert checkpoint["complete"] is False and checkpoint["examples_done"] == 1
        assert json.loads((out / "history.json").read_text())["status"] == "budget"
        assert (out / "training.png").read_bytes().startswith(PNG)

        done = cli(
            "train", "--resume", str(out), "--max-calls", "50",
            home=harness_home, runtime=runtime, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "epoch 1 at task 2" in done.stdout
    history = json.loads((out / "history.json").read_text())
    assert history["status"] == "complete"
    (epoch,) = history["epochs"]
    assert epoch["complete"] and epoch["examples_done"] == 2 and len(epoch["batch_losses"]) == 2
    assert json.loads((out / "epoch-1" / "checkpoint.json").read_text())["complete"] is True
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # old copy swapped out


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("empty", "the dataset is empty"),
        ("malformed", "train.jsonl:2: not valid JSON"),
        ("unknown-module", "unknown module 'nosuch'"),
        ("unknown-node", "train.jsonl:1: target for unknown node 'nope'"),
        ("missing-input", "train.jsonl:1: the task has no input 'check'"),
        ("resume-not-a-run", "not a training run (no train.json)"),
        ("no-data", "train needs a module and --data"),
        ("bad-epochs", "--epochs is 0"),
        ("always-passes", "train.jsonl:2: the check 'true' already passes on the task's fresh"),
        ("passes-with-its-files", "train.jsonl:1: the check 'test -f data.csv' already passes"),
        ("eval-always-passes", "train.jsonl:2: the check 'true' already passes"),
        ("val-always-passes", "val.jsonl:1: the check 'true' already passes"),
        ("val-is-data", "the val set {data} is the training set {data}"),
        ("val-same-tasks", "the val set {val} is the training set {data} (the same tasks)"),
    ],
)
def test_bad_input_is_named(harness_home: Path, tmp_path: Path, case: str, message: str) -> None:
    data = tmp_path / "train.jsonl"
    lines = {
        "empty": "",
        "malformed": json.dumps(XZ) + "\n{oops\n",
        "unknown-node": json.dumps({**XZ, "targets": {"nope": "x"}}) + "\n",
        "missing-input": json.dumps({"inputs": {"task": "x"}}) + "\n",
        "always-passes": "\n" + json.dumps({**XZ, "inputs": {**XZ["inputs"], "check": "true"}}),
        "passes-with-its-files": json.dumps(
            {**XZ, "inputs": {**XZ["inputs"], "check": "test -f data.csv"}}
        ),
    }
    lines["eval-always-passes"] = lines["always-passes"]
    data.write_text(lines.get(case, json.dumps(XZ) + "\n"))
    val = tmp_path / "val.jsonl"
    val.write_text(
        {"val-same-tasks": data.read_text(), "val-always-passes": json.dumps(CHMOD | {
            "inputs": {**CHMOD["inputs"], "check": "true"}})}.get(case, json.dumps(VAL))
    )  # fmt: skip
    run = ["--out", str(tmp_path / "run")]
    args = {
        "unknown-module": ["train", "nosuch", "--data", str(data)],
        "resume-not-a-run": ["train", "--resume", str(tmp_path)],
        "no-data": ["train", "coder"],
        "bad-epochs": ["train", "coder", "--data", str(data), "--epochs", "0"],
        "eval-always-passes": ["eval", "coder", "--data", str(data)],
        "val-is-data": ["train", "coder", "--data", str(data), "--val", str(data), *run],
    }.get(case, ["train", "coder", "--data", str(data), "--val", str(val), *run])
    done = cli(*args, home=harness_home)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message.format(data=data, val=val) in done.stderr and "Traceback" not in done.stderr
    if "already passes" in message:
        assert "this check cannot tell success from failure" in done.stderr
    assert not (tmp_path / "run").exists()  # nothing was started
    assert not (harness_home / "runs").exists()


def test_eval_reports_every_task_and_leaves_the_module_unchanged(
    harness_home: Path, runtime: Path, tmp_path: Path
) -> None:
    data = jsonl(tmp_path / "tasks.jsonl", CHMOD, VAL)
    module = resolve("coder")  # the data dir's copy of the built-in, as eval will find it
    before = {p: p.read_bytes() for p in sorted(module.rglob("*")) if p.is_file()}
    done = cli(
        "eval", "coder", "--data", str(data), "--dim", "steps=2", "--json",
        home=harness_home, runtime=runtime,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"passed", "total", "tasks"}
    assert (result["passed"], result["total"]) == (1, 2)
    solved, unsolved = result["tasks"]
    assert solved["index"] == 0 and solved["task"] == "Make a script executable"
    assert solved["passed"] is True and solved["commands"] == ["chmod +x script.sh"]
    assert "reason" not in solved
    assert unsolved["index"] == 1 and unsolved["passed"] is False
    assert len(unsolved["commands"]) == 2  # one per step, both without a matching row
    assert all(c.startswith("(none: ") for c in unsolved["commands"])
    assert unsolved["reason"] == "the check 'test -f data.csv.xz' still failed after 2 steps"
    after = {p: p.read_bytes() for p in sorted(module.rglob("*")) if p.is_file()}
    assert after == before  # not a byte of the module changed

    text = cli("eval", "coder", "--data", str(data), "--dim", "steps=1", home=harness_home,
               runtime=runtime)  # fmt: skip
    assert text.returncode == 0, text.stderr  # tasks failed, but the evaluation ran
    assert "[PASS] Make a script executable\n   commands: chmod +x script.sh" in text.stdout
    assert "[FAIL] Compress data.csv with xz" in text.stdout
    assert "passed 1/2 tasks" in text.stdout and "the module is unchanged" in text.stdout

    # eval runs on copies: even a write to the module it runs lands in the scratch dir
    scratch = scratch_module("coder", tmp_path / "scratch")
    assert scratch.path == module and set(scratch.experience) == {"decision", "command"}
    for experience in scratch.experience.values():
        assert experience.path.is_relative_to(tmp_path / "scratch")
        experience.append([Row("x", "a new row", "echo x")])
    assert {p: p.read_bytes() for p in sorted(module.rglob("*")) if p.is_file()} == before


def test_dataset_from_calls_keeps_successful_described_calls() -> None:
    when = datetime(2024, 6, 1, tzinfo=UTC)
    good = Call(
        "c1", "s", task="Ship it", description="Build", command="make", exit_code=0, ts=when
    )
    calls = [
        good,
        Call("c2", "s", task="Ship it", description="Build", command="make", exit_code=0),
        Call("c3", "s", task="Ship it", description="Test", command="make test", exit_code=2),
        Call("c4", "s", task="Ship it", command="ls", exit_code=0),  # no description
        Call("c5", "s", description="Look", command="ls", exit_code=0),  # no task
        Call("c6", "s", task="Log in", description="Auth", command="login --password hunter2x"),
    ]
    lines = dataset_from_calls(calls)
    assert len(lines) == 2  # the repeat, the failure and the incomplete calls are gone
    assert lines[0] == {
        "inputs": {"task": "Ship it", "check": "true"},
        "targets": {"decision": "Build", "command": "make"},
        "source": {"call_id": "c1", "session_id": "s", "ts": when.isoformat()},
    }
    assert "hunter2x" not in json.dumps(lines)  # redacted
    assert dataset_from_calls([good], check="test -f out")[0]["inputs"]["check"] == "test -f out"


def test_dataset_from_harvest_writes_a_trainable_dataset(
    harness_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "harvested.jsonl"
    sample = resources.files("mcp_harness.data").joinpath("sample_projects")
    with resources.as_file(sample) as projects:
        done = cli(
            "dataset", "from-harvest", str(out), "--transcripts", str(projects), "--json",
            home=harness_home,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    examples = load_dataset(out)
    assert result["tasks"] == len(examples) > 0 and result["calls"] >= len(examples)
    assert all(e.inputs["check"] == "true" and set(e.targets) == {"decision", "command"}
               for e in examples)  # fmt: skip
    again = cli("dataset", "from-harvest", str(out), "--no-transcripts", home=harness_home)
    assert again.returncode == 2 and "already exists" in again.stderr
