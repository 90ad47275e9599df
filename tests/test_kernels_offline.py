"""The prompt every kernel sends, and the offline kernel (threshold, confidence, determinism)."""

from __future__ import annotations

from mcp_harness.kernels.base import Example, KernelRequest
from mcp_harness.kernels.offline import OfflineKernel
from mcp_harness.kernels.prompt import SYSTEM_PROMPT, clean_reply, render_prompt
from mcp_harness.kernels.runner import Budget, KernelRunner

EXAMPLES = (
    Example("good morning", "bonjour", 0.9, row=4),
    Example("good night", "bonne nuit", 0.5, row=7),
)


def request(*examples: Example, trajectory: str = "") -> KernelRequest:
    return KernelRequest("Translate English to French.", "good evening", examples, trajectory)


def test_prompt_orders_task_examples_trajectory_input_instruction() -> None:
    text = render_prompt(request(*EXAMPLES, trajectory="attempt 1: 'bonsoir!!' was rejected"))
    positions = [
        text.index("Translate English to French."),
        text.index("INPUT:\ngood morning\nOUTPUT:\nbonjour"),
        text.index("INPUT:\ngood night\nOUTPUT:\nbonne nuit"),
        text.index("attempt 1: 'bonsoir!!' was rejected"),
        text.index("INPUT:\ngood evening"),
        text.index("Reply with only the OUTPUT"),
    ]
    assert positions == sorted(positions)
    assert render_prompt(request(*EXAMPLES)) == render_prompt(request(*EXAMPLES))


def test_prompt_is_task_neutral_and_omits_empty_sections() -> None:
    text = render_prompt(request())
    for word in ("TODO", "code", "source", "placeholder", "file"):  # C19
        assert word.lower() not in (text + SYSTEM_PROMPT).lower()
    assert "EXAMPLES" not in text and "EARLIER ATTEMPTS" not in text


def test_clean_reply_drops_a_leading_think_block_only() -> None:
    assert clean_reply("<think>hmm\nmaybe</think>\nbonsoir") == "bonsoir"
    assert clean_reply("bonsoir <think>x</think>") == "bonsoir <think>x</think>"


async def test_offline_returns_best_row_value_with_its_score_as_confidence() -> None:
    reply = await OfflineKernel().complete(request(*EXAMPLES))
    assert (reply.text, reply.ok, reply.confidence) == ("bonjour", True, 0.9)
    assert reply.usage.calls == 0 and reply.usage.cost_usd == 0
    capped = await OfflineKernel().complete(request(Example("a", "b", 3.5)))
    assert capped.confidence == 1.0


async def test_offline_below_threshold_fails_with_best_score() -> None:
    low = request(Example("x", "y", 0.15, row=2), Example("z", "w", 0.1))
    reply = await OfflineKernel().complete(low)
    assert not reply.ok and reply.text == "" and reply.confidence == 0.15
    assert "no experience row scored ≥ 0.2" in reply.reason
    assert "best fit 0.150 (row 2)" in reply.reason
    assert (await OfflineKernel(threshold=0.1).complete(low)).text == "y"
    empty = await OfflineKernel().complete(request())
    assert (empty.ok, empty.confidence) == (False, 0.0) and "no experience row" in empty.reason


async def test_offline_is_deterministic_and_ties_keep_the_first_row() -> None:
    tied = request(Example("a", "first", 0.5), Example("b", "second", 0.5))
    replies = [await OfflineKernel().complete(tied) for _ in range(5)]
    assert all(r == replies[0] for r in replies) and replies[0].text == "first"


async def test_offline_through_runner_is_free_and_ignores_the_budget() -> None:
    runner = KernelRunner(OfflineKernel(), budget=Budget(max_calls=0, max_cost_usd=0))
    for _ in range(3):
        assert (await runner.complete(request(*EXAMPLES))).text == "bonjour"
    assert runner.usage.calls == 0 and runner.notes == []


def test_backoff_is_exponential_with_seeded_jitter() -> None:
    first, again = KernelRunner(OfflineKernel(), seed=7), KernelRunner(OfflineKernel(), seed=7)
    delays = [first.backoff_delay(attempt) for attempt in range(4)]
    assert delays == [again.backoff_delay(attempt) for attempt in range(4)]
    for attempt, delay in enumerate(delays):
        assert 0.5 * 0.5 * 2**attempt <= delay < 1.5 * 0.5 * 2**attempt
    assert first.backoff_delay(0, retry_after_s=2.0) == 2.0  # the server's retry-after wins
