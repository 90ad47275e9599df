"""The replay kernel: record through the real openai SDK and a loopback stub, stop the stub,
and replay the same replies from the cassette alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_harness.errors import HarnessError
from mcp_harness.kernels.base import Example, KernelReply, KernelRequest
from mcp_harness.kernels.config import make_kernel
from mcp_harness.kernels.openai_api import OpenAIKernel
from mcp_harness.kernels.replay import ReplayKernel, load_cassette, request_hash
from mcp_harness.kernels.runner import KernelRunner
from tests.kernel_stubs import ApiStub, last_user_text

REQUESTS = [
    KernelRequest("Translate English to French.", word, (Example("good morning", "bonjour", 0.9),))
    for word in ("good evening", "good night", "thank you")
]


def echo(body: dict) -> str:
    """A reply that depends on the request, so a mixed-up cassette would show."""
    return "fr:" + last_user_text(body).split("INPUT:\n")[-1].split("\n")[0]


async def record(cassette: Path) -> tuple[list[KernelReply], ApiStub]:
    stub = ApiStub("openai", text=echo).start()
    try:
        inner = OpenAIKernel(api_key="sk-test", base_url=stub.base_url, model="gpt-4o-mini")
        runner = KernelRunner(ReplayKernel(cassette, mode="record", inner=inner))
        replies = [await runner.complete(r) for r in REQUESTS]
        assert runner.usage.calls == 3 and runner.usage.cost_usd > 0  # recording spends
    finally:
        stub.stop()
    return replies, stub


async def test_replay_gives_the_recorded_replies_without_network(tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    recorded, stub = await record(cassette)
    assert [r.text for r in recorded] == ["fr:good evening", "fr:good night", "fr:thank you"]
    runner = KernelRunner(ReplayKernel(cassette))  # the stub is stopped: no endpoint exists
    replayed = [await runner.complete(r) for r in reversed(REQUESTS)]
    assert [r.text for r in replayed] == [r.text for r in reversed(recorded)]
    assert all(r.ok and r.confidence == 1.0 for r in replayed)
    assert runner.usage.calls == 0 and runner.usage.cost_usd == 0 and stub.count == 3
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert [e["hash"] for e in lines] == [request_hash(r) for r in REQUESTS]
    assert lines[0]["kernel"] == "openai" and lines[0]["request"]["input"] == "good evening"


async def test_unrecorded_request_names_its_hash_and_the_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    await record(cassette)
    other = KernelRequest("Translate English to French.", "see you")
    with pytest.raises(HarnessError) as caught:
        await KernelRunner(ReplayKernel(cassette)).complete(other)
    assert request_hash(other) in caught.value.message and str(cassette) in caught.value.message
    assert "record" in (caught.value.fix or "")


async def test_make_kernel_records_and_replays_from_the_environment(tmp_path: Path) -> None:
    cassette = tmp_path / "env.jsonl"
    stub = ApiStub("openai", text=echo).start()
    env = {
        "MCP_HARNESS_HOME": str(tmp_path / "home"),
        "MCP_HARNESS_KERNEL": "replay",
        "MCP_HARNESS_CASSETTE": str(cassette),
        "MCP_HARNESS_REPLAY_MODE": "record",
        "MCP_HARNESS_REPLAY_INNER": "openai",
        "OPENAI_BASE_URL": stub.base_url,
        "MCP_HARNESS_MODEL": "gpt-4o-mini",
    }
    try:
        recorded = await make_kernel(env=env).complete(REQUESTS[0])
    finally:
        stub.stop()
    del env["MCP_HARNESS_REPLAY_MODE"]
    replayed = await make_kernel(env=env).complete(REQUESTS[0])
    assert replayed.text == recorded.text == "fr:good evening"


def test_hash_is_canonical_and_sensitive() -> None:
    request = REQUESTS[0]
    same = KernelRequest(request.task, request.input, tuple(request.examples))
    assert request_hash(request) == request_hash(same)
    assert request_hash(request) != request_hash(KernelRequest(request.task, request.input))
    changed = KernelRequest(request.task, request.input, (Example("good morning", "bonjour", 0.8),))
    assert request_hash(request) != request_hash(changed)
    # Pinned: a change here invalidates every recorded cassette (bump HASH_VERSION instead).
    assert request_hash(KernelRequest("t", "i")) == PINNED_HASH


def test_cassette_tolerates_a_cut_last_line_but_not_a_corrupt_middle(tmp_path: Path) -> None:
    good = json.dumps(
        {"hash": "h1", "reply": {"text": "a\u2028b", "ok": True, "confidence": 0.5}},
        ensure_ascii=False,
    )
    cassette = tmp_path / "c.jsonl"
    cassette.write_text(good + "\n" + '{"hash": "h2", "rep')
    assert load_cassette(cassette)["h1"].text == "a\u2028b"
    cassette.write_text('{"hash": "h2", "rep\n' + good + "\n")
    with pytest.raises(HarnessError, match="line 1"):
        load_cassette(cassette)
    with pytest.raises(HarnessError, match="does not exist"):
        ReplayKernel(tmp_path / "missing.jsonl")
    with pytest.raises(HarnessError, match="needs a kernel to record"):
        ReplayKernel(cassette, mode="record")


PINNED_HASH = "6e08a43cc5aacd83eaaa791ded3bc84cd7beaef6903d152451a1a7d97c012eb2"


async def test_candidates_are_recorded_and_replayed(tmp_path: Path) -> None:
    from mcp_harness.kernels.base import successive
    from mcp_harness.kernels.offline import OfflineKernel

    class Offering(OfflineKernel):
        async def complete(self, request: KernelRequest) -> KernelReply:
            return successive(self.answer, request)

    examples = tuple(Example(f"show notes {i}", f"cat n{i}", 1.0 - i / 10) for i in range(3))
    request = KernelRequest("t", "show notes", examples, candidates=3)
    cassette = tmp_path / "c.jsonl"
    recorded = await ReplayKernel(cassette, mode="record", inner=Offering()).complete(request)
    replayed = await ReplayKernel(cassette).complete(request)
    assert [a.text for a in replayed.alternatives] == [a.text for a in recorded.alternatives]
    assert [a.text for a in replayed.alternatives] == ["cat n1", "cat n2"]
    single = KernelRequest("t", "show notes", examples)
    assert request_hash(single) != request_hash(request)  # asking for more is another request
