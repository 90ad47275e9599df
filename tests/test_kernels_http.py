"""The anthropic and openai kernels through KernelRunner, with the real SDKs against loopback
stubs: accounting, retries on 429 / 5xx / lost connections, no retry on 400, timeouts, budget,
and the concurrency limit."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mcp_harness.errors import HarnessError
from mcp_harness.kernels.anthropic_api import AnthropicKernel
from mcp_harness.kernels.base import Example, Kernel, KernelRequest
from mcp_harness.kernels.openai_api import OpenAIKernel
from mcp_harness.kernels.prompt import SYSTEM_PROMPT, split_candidates
from mcp_harness.kernels.runner import Budget, BudgetExceeded, KernelRunner, estimate_usage
from tests.kernel_stubs import ApiStub, Flavor, last_user_text

FLAVORS: list[Flavor] = ["anthropic", "openai"]
PRICED = {"anthropic": ("claude-sonnet-4-6", 3.0, 15.0), "openai": ("gpt-4o-mini", 0.15, 0.6)}
REQUEST = KernelRequest(
    "Translate English to French.",
    "good evening",
    (Example("good morning", "bonjour", 0.9),),
    max_tokens=64,
)


@pytest.fixture
def stubs() -> Iterator[Callable[..., ApiStub]]:
    """Start stubs on demand; teardown releases held requests and stops every stub."""
    started: list[ApiStub] = []

    def start(flavor: Flavor, **kwargs: Any) -> ApiStub:
        stub = ApiStub(flavor, **kwargs).start()
        started.append(stub)
        return stub

    yield start
    for stub in started:
        stub.stop()


def kernel_for(flavor: Flavor, base_url: str, model: str | None = None) -> Kernel:
    if flavor == "anthropic":
        return AnthropicKernel(
            api_key="sk-ant-test", base_url=base_url, model=model or PRICED[flavor][0]
        )
    return OpenAIKernel(api_key="sk-test", base_url=base_url, model=model or PRICED[flavor][0])


def runner_for(flavor: Flavor, stub: ApiStub, **kwargs: Any) -> KernelRunner:
    kwargs.setdefault("backoff_s", 0.001)
    return KernelRunner(kernel_for(flavor, stub.base_url, kwargs.pop("model", None)), **kwargs)


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_happy_path_sends_the_prompt_and_accounts_usage(flavor: Flavor, stubs) -> None:
    stub = stubs(flavor, text="bonsoir", usage=(100, 20))
    runner = runner_for(flavor, stub)
    replies = [await runner.complete(REQUEST) for _ in range(2)]
    assert [r.text for r in replies] == ["bonsoir", "bonsoir"] and replies[0].ok
    _, price_in, price_out = PRICED[flavor]
    one_call = (100 * price_in + 20 * price_out) / 1e6
    assert replies[0].usage.cost_usd == pytest.approx(one_call)
    usage = runner.usage
    assert (usage.input_tokens, usage.output_tokens, usage.calls) == (200, 40, 2)
    assert usage.cost_usd == pytest.approx(2 * one_call) and runner.notes == []
    body = stub.bodies[0]
    assert "INPUT:\ngood evening" in last_user_text(body)
    assert body["max_tokens"] == 64
    assert body.get("temperature") == (0 if flavor == "openai" else None)
    system = body["system"] if flavor == "anthropic" else body["messages"][0]["content"]
    assert system == SYSTEM_PROMPT


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_several_candidates_come_from_one_call(flavor: Flavor, stubs) -> None:
    stub = stubs(flavor, text="bonsoir\n---\nbonne soirée\n---\nbonsoir\n---\nsalut")
    request = dataclasses.replace(REQUEST, candidates=3)
    reply = await runner_for(flavor, stub).complete(request)
    assert [reply.text, *(a.text for a in reply.alternatives)] == [
        "bonsoir", "bonne soirée", "salut"
    ]  # fmt: skip
    assert stub.count == 1 and all(a.ok for a in reply.alternatives)
    assert "up to 2 of them after it, best first, each after a line holding only ---" in (
        last_user_text(stub.bodies[0])
    )
    single = await runner_for(flavor, stub).complete(REQUEST)  # one asked for: text as is
    assert single.alternatives == () and "---" in single.text


def test_split_candidates_drops_a_cut_off_last_one() -> None:
    request = KernelRequest("t", "i", candidates=4)
    assert split_candidates("a\n--- \nb\n---\nc", request, truncated=True)[1][0].text == "b"
    assert len(split_candidates("a\n---\nb\n---\nc", request, truncated=True)[1]) == 1
    assert split_candidates("  ---  ", request) == ("  ---  ", ())
    assert split_candidates("ls -la\nwc -l", request) == ("ls -la\nwc -l", ())


async def test_unknown_model_costs_nothing_and_says_so(stubs) -> None:
    stub = stubs("openai")
    runner = runner_for("openai", stub, model="my-local-llama")
    await runner.complete(REQUEST)
    assert runner.usage.cost_usd == 0 and runner.usage.input_tokens == 10
    assert len(runner.notes) == 1 and "'my-local-llama'" in runner.notes[0]
    priced = runner_for("openai", stub, model="my-local-llama", prices={"my-local-llama": (1, 2)})
    await priced.complete(REQUEST)
    assert priced.usage.cost_usd == pytest.approx((10 * 1 + 5 * 2) / 1e6)


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("failures", [[429], [500, 500], [529]], ids=str)
async def test_retryable_failures_are_retried(flavor: Flavor, failures, stubs) -> None:
    stub = stubs(flavor, failures=failures, text="bonsoir")
    runner = runner_for(flavor, stub)
    reply = await runner.complete(REQUEST)
    assert reply.text == "bonsoir"
    assert stub.statuses == [*failures, 200] and runner.retried == len(failures)
    assert runner.usage.calls == 1  # failed attempts spent nothing


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_bad_request_is_not_retried(flavor: Flavor, stubs) -> None:
    stub = stubs(flavor, failures=[400])
    runner = runner_for(flavor, stub)
    with pytest.raises(HarnessError) as caught:
        await runner.complete(REQUEST)
    assert stub.count == 1 and runner.retried == 0
    error = caught.value
    assert f"{flavor} kernel" in error.message and "HTTP 400" in error.message
    assert "stub failure 400" in error.message and "model name" in (error.fix or "")


async def test_retries_give_up_with_the_last_error(stubs) -> None:
    stub = stubs("anthropic", failures=[503, 503, 503])
    runner = runner_for("anthropic", stub, retries=2)
    with pytest.raises(HarnessError, match=r"HTTP 503.*after 3 attempts"):
        await runner.complete(REQUEST)
    assert stub.count == 3


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_connection_errors_are_retried_then_reported(flavor: Flavor) -> None:
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = f"http://127.0.0.1:{port}"
    url = f"{root}/v1" if flavor == "openai" else root
    runner = KernelRunner(kernel_for(flavor, url), retries=2, backoff_s=0.001)
    with pytest.raises(HarnessError, match="cannot reach") as caught:
        await runner.complete(REQUEST)
    assert runner.retried == 2 and str(port) in caught.value.message


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_timeout_names_the_kernel_and_is_not_retried(flavor: Flavor, stubs) -> None:
    stub = stubs(flavor, hold=True)  # answers only when the fixture releases it at teardown
    runner = runner_for(flavor, stub, timeout_s=0.3)
    with pytest.raises(HarnessError) as caught:
        await runner.complete(REQUEST)
    assert caught.value.message == f"{flavor} kernel gave no answer within 0.3 s"
    assert "timeout_s" in (caught.value.fix or "")
    assert stub.count == 1 and runner.usage.calls == 0


async def test_budget_on_calls_stops_before_the_call_and_reports_spent(stubs) -> None:
    stub = stubs("anthropic", usage=(10, 5))
    budget = Budget(max_calls=2)
    runner = runner_for("anthropic", stub, budget=budget)
    await runner.complete(REQUEST)
    await runner.complete(REQUEST)
    with pytest.raises(BudgetExceeded) as caught:
        await runner.complete(REQUEST)
    assert stub.count == 2  # the third call was never sent
    message = caught.value.message
    assert "spent 2 calls, 30 tokens (20 in / 10 out), $0.0002" in message
    assert "max_calls = 2" in message and caught.value.spent.calls == 2
    assert isinstance(caught.value, HarnessError)


async def test_budget_on_tokens_counts_the_worst_case_of_the_next_call(stubs) -> None:
    stub = stubs("openai", usage=(10, 5))
    worst = estimate_usage(REQUEST)
    limit = 15 + worst.input_tokens + worst.output_tokens - 1  # one call fits, two may not
    runner = runner_for("openai", stub, budget=Budget(max_tokens=limit))
    await runner.complete(REQUEST)
    with pytest.raises(BudgetExceeded, match="spent 1 call, 15 tokens"):
        await runner.complete(REQUEST)
    assert stub.count == 1


async def test_budget_on_cost_is_shared_by_runners(stubs) -> None:
    stub = stubs("anthropic", usage=(1000, 1000))  # $0.018 a call at sonnet prices
    budget = Budget(max_cost_usd=0.037)  # room for two calls and a bit
    first, second = runner_for("anthropic", stub, budget=budget), runner_for("anthropic", stub)
    second.budget = budget
    await first.complete(REQUEST)
    await second.complete(REQUEST)
    assert budget.spent.cost_usd == pytest.approx(0.036)
    with pytest.raises(BudgetExceeded, match=r"\$0\.0360.*max_cost_usd = 0\.037"):
        await first.complete(REQUEST)
    assert stub.count == 2


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_concurrency_limit_is_respected(flavor: Flavor, stubs) -> None:
    stub = stubs(flavor, hold=True)
    runner = runner_for(flavor, stub, concurrency=3)
    calls = [asyncio.create_task(runner.complete(REQUEST)) for _ in range(10)]
    try:
        assert await asyncio.to_thread(stub.wait_in_flight, 3, 20.0)
        assert stub.count == 3  # the other seven wait in the runner, not at the server
    finally:
        stub.release.set()
    replies = await asyncio.gather(*calls)
    assert len(replies) == 10 and stub.count == 10
    assert stub.max_in_flight == 3 and runner.usage.calls == 10
