"""`mcp-harness demo` with ANTHROPIC_API_KEY set runs the same graph on the anthropic kernel
(the real SDK, against a loopback stub of the Messages API)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.kernel_stubs import ApiStub, last_user_text

SCRIPT = str(Path(sys.executable).parent / "mcp-harness")


def stub_model(body: dict) -> str:
    """A stand-in LLM: follows the best example (adapted to the input, where the prompt gives
    that hint), and knows one thing the experience does not."""
    prompt = last_user_text(body)
    subject = prompt.rsplit("INPUT:\n", 1)[1].split("\n\nReply with only the OUTPUT")[0]
    if "metrics.tsv" in subject:
        return (
            "xz -k metrics.tsv"
            if "Compress" in subject and "\n" not in subject.strip()
            else "Compress metrics.tsv with xz"
        )
    adapted = re.search(r"WITH THIS INPUT'S PARAMETERS:\n(.*?)(?:\n\n|$)", prompt, re.DOTALL)
    example = adapted or re.search(r"OUTPUT:\n(.*?)(?:\n\n|$)", prompt, re.DOTALL)
    return example.group(1) if example else "true"


def test_demo_runs_on_the_anthropic_kernel(tmp_path: Path) -> None:
    with ApiStub("anthropic", text=stub_model) as stub:
        env = {
            **os.environ,
            "MCP_HARNESS_HOME": str(tmp_path / "home"),
            "MCP_HARNESS_RUNTIME_DIR": str(tmp_path / "rt"),
            "ANTHROPIC_API_KEY": "sk-ant-test-0000",
            "ANTHROPIC_BASE_URL": stub.base_url,
        }
        done = subprocess.run(
            [SCRIPT, "demo"], env=env, capture_output=True, text=True, timeout=300
        )
        calls = stub.count
    from mcp_harness.terminal.pool import shutdown

    shutdown(tmp_path / "rt")
    assert done.returncode == 0, done.stderr
    assert "kernel: anthropic" in done.stdout
    before = done.stdout.split("4. Training")[0]
    # beyond the offline kernel, which has no experience for it before training
    assert "[PASS] Compress metrics.tsv with xz and keep the original file" in before
    assert "steps 1: xz -k metrics.tsv" in before
    reported = int(re.search(r"\((\d+) LLM calls", done.stdout).group(1))
    assert 0 < reported <= calls  # the first report counts calls up to then; training adds more
